//! What the SDK tells plugin authors about the host's checks must be what the host checks:
//! the parameters an OAuth profile may not name are the host's own lists.

use portcullis_sdk::provider::{
    OAuthProfile, RESERVED_AUTHORIZATION_PARAMS, RESERVED_TOKEN_PARAMS, standard_profile,
};
use portcullis_sdk::testing::assert_profile_accepted;

#[test]
fn the_reserved_parameters_are_the_hosts() {
    assert_eq!(
        RESERVED_AUTHORIZATION_PARAMS,
        portcullis_model::RESERVED_AUTHORIZATION_PARAMS
    );
    assert_eq!(
        RESERVED_TOKEN_PARAMS,
        portcullis_model::RESERVED_TOKEN_PARAMS
    );
}

#[test]
fn profile_assertions_accept_the_standard_flow_and_refuse_what_the_host_refuses() {
    assert_profile_accepted(&standard_profile());
    let refused = |profile: OAuthProfile| {
        std::panic::catch_unwind(|| assert_profile_accepted(&profile)).is_err()
    };
    for name in RESERVED_AUTHORIZATION_PARAMS {
        assert!(refused(OAuthProfile {
            authorization_params: vec![(name.to_owned(), "x".to_owned())],
            ..standard_profile()
        }));
    }
    for name in RESERVED_TOKEN_PARAMS {
        assert!(refused(OAuthProfile {
            token_params: vec![(name.to_owned(), "x".to_owned())],
            ..standard_profile()
        }));
    }
    assert!(refused(OAuthProfile {
        scopes: Some(vec!["a b".to_owned()]),
        ..standard_profile()
    }));
    assert!(refused(OAuthProfile {
        token_params: vec![("audience".to_owned(), "x\r\ny".to_owned())],
        ..standard_profile()
    }));
    assert!(refused(OAuthProfile {
        access_token_pointer: Some("access_token".to_owned()),
        ..standard_profile()
    }));
}
