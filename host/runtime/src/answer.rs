//! What a plugin answers, and the checks on it before the host acts on it.
//!
//! A [`Decider`](crate::Decider) hands back answers as the plugin gave them: a decision, a
//! [`RawToolSet`], a [`RawPlan`] or a refusal, and `describe`'s [`Description`]. The chain
//! checks every one of them here, whichever decider answered. The canonical ABI already
//! guarantees an answer has the right shape; these checks are about content the host
//! would otherwise trust: sizes that could bloat logs and audit records, reason codes that
//! end up as metric labels, and injection plans whose header names or values could
//! smuggle a second header or override the transport's own. Any failure makes the answer
//! [`Malformed`], which the chain turns into a deny.

use portcullis_model::{
    Decision, InjectionPlan, OAuthProfile, RESERVED_AUTHORIZATION_PARAMS, RESERVED_TOKEN_PARAMS,
    Template, TemplateError, ToolSet,
};

const MAX_REASON: usize = 64;
const MAX_MESSAGE: usize = 4096;
const MAX_TOOL_NAMES: usize = 100_000;
const MAX_TOOL_NAME: usize = 256;
const MAX_PLAN_ENTRIES: usize = 32;
const MAX_PLAN_VALUE: usize = 8192;
const MAX_INFO_FIELD: usize = 128;
const MAX_REFUSAL: usize = 4096;
const MAX_SCOPES: usize = 64;
const MAX_SCOPE: usize = 256;
const MAX_PARAMS: usize = 32;
const MAX_PARAM_NAME: usize = 128;

/// Headers a provider plan may not set: the transport's own, the proxy's session and
/// protocol headers, and those that only make sense between client and proxy.
const RESERVED_HEADERS: [&str; 20] = [
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-authorization",
    "proxy-connection",
    "accept",
    "accept-encoding",
    "cookie",
    "mcp-session-id",
    "mcp-protocol-version",
    "mcp-method",
    "mcp-name",
    "last-event-id",
    "forwarded",
];

/// A tool set as a policy answered it: names unchecked, duplicates kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RawToolSet {
    All,
    Only(Vec<String>),
}

/// An injection plan as a provider answered it: names unchecked, templates unparsed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawPlan {
    pub headers: Vec<(String, String)>,
    pub query: Vec<(String, String)>,
}

/// What a plugin says about itself at admission.
pub(crate) struct Description {
    pub name: String,
    pub version: String,
    /// Whether `request` needs tool arguments (policy plugins only).
    pub reads_arguments: bool,
}

/// Why an answer is not acted on.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Malformed {
    #[error("deny reason must be 1 to {max} bytes", max = MAX_REASON)]
    ReasonLength,
    #[error("deny reason {0:?} is not snake_case")]
    ReasonNotSnakeCase(String),
    #[error("deny message is {0} bytes, over the {max}-byte limit", max = MAX_MESSAGE)]
    MessageTooLong(usize),
    #[error("{0} tool names, over the {max} limit", max = MAX_TOOL_NAMES)]
    TooManyToolNames(usize),
    #[error("a tool name of {0} bytes, over the {max}-byte limit", max = MAX_TOOL_NAME)]
    ToolNameTooLong(usize),
    #[error("plugin {0} must be 1 to {max} printable characters", max = MAX_INFO_FIELD)]
    Info(&'static str),
    #[error("more than {max} headers and query parameters", max = MAX_PLAN_ENTRIES)]
    TooManyPlanEntries,
    #[error("{0:?} is not a valid header name")]
    HeaderName(String),
    #[error("header {0:?} is reserved to the proxy")]
    ReservedHeader(String),
    #[error("header {0:?} is set twice")]
    HeaderTwice(String),
    #[error("{0:?} is not a valid query parameter name")]
    QueryName(String),
    #[error("a value of {0} bytes, over the {max}-byte limit", max = MAX_PLAN_VALUE)]
    ValueTooLong(usize),
    #[error("a value holds a control or non-ASCII character")]
    ValueCharacter,
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("a refusal of {0} bytes, over the {max}-byte limit", max = MAX_REFUSAL)]
    RefusalTooLong(usize),
    #[error("more than {max} scopes", max = MAX_SCOPES)]
    TooManyScopes,
    #[error("scope {0:?} is not 1 to {max} visible ASCII characters without spaces", max = MAX_SCOPE)]
    Scope(String),
    #[error("more than {max} OAuth parameters", max = MAX_PARAMS)]
    TooManyParams,
    #[error("{0:?} is not a valid OAuth parameter name")]
    ParamName(String),
    #[error("OAuth parameter {0:?} is set by the host's flow and may not be replaced")]
    ReservedParam(String),
    #[error("access-token pointer {0:?} is not a JSON pointer of at most {max} bytes", max = MAX_PARAM_NAME)]
    TokenPointer(String),
}

pub(crate) fn check_decision(decision: &Decision) -> Result<(), Malformed> {
    let Decision::Deny(denial) = decision else {
        return Ok(());
    };
    if denial.reason.is_empty() || denial.reason.len() > MAX_REASON {
        return Err(Malformed::ReasonLength);
    }
    if !denial
        .reason
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err(Malformed::ReasonNotSnakeCase(denial.reason.clone()));
    }
    if denial.message.len() > MAX_MESSAGE {
        return Err(Malformed::MessageTooLong(denial.message.len()));
    }
    Ok(())
}

/// Checks a tool set; the names become a set.
pub(crate) fn check_tools(tools: RawToolSet) -> Result<ToolSet, Malformed> {
    let names = match tools {
        RawToolSet::All => return Ok(ToolSet::All),
        RawToolSet::Only(names) => names,
    };
    if names.len() > MAX_TOOL_NAMES {
        return Err(Malformed::TooManyToolNames(names.len()));
    }
    match names.iter().find(|n| n.len() > MAX_TOOL_NAME) {
        Some(name) => Err(Malformed::ToolNameTooLong(name.len())),
        None => Ok(ToolSet::Only(names.into_iter().collect())),
    }
}

pub(crate) fn check_info(info: &Description) -> Result<(), Malformed> {
    for (what, value) in [("name", &info.name), ("version", &info.version)] {
        if value.is_empty() || value.len() > MAX_INFO_FIELD || value.chars().any(char::is_control) {
            return Err(Malformed::Info(what));
        }
    }
    Ok(())
}

/// Checks a provider's answer: a plan's names and templates (header names come back
/// lower-case), or the length of its refusal.
pub(crate) fn check_plan(
    answer: Result<RawPlan, String>,
) -> Result<Result<InjectionPlan, String>, Malformed> {
    match answer {
        Ok(plan) => check_plan_entries(plan).map(Ok),
        Err(refusal) if refusal.len() <= MAX_REFUSAL => Ok(Err(refusal)),
        Err(refusal) => Err(Malformed::RefusalTooLong(refusal.len())),
    }
}

fn check_plan_entries(raw: RawPlan) -> Result<InjectionPlan, Malformed> {
    if raw.headers.len() + raw.query.len() > MAX_PLAN_ENTRIES {
        return Err(Malformed::TooManyPlanEntries);
    }
    let mut plan = InjectionPlan::default();
    for (name, value) in raw.headers {
        let name = name.to_ascii_lowercase();
        if name.is_empty() || !name.bytes().all(is_header_name_byte) {
            return Err(Malformed::HeaderName(name));
        }
        if RESERVED_HEADERS.contains(&name.as_str()) || name.starts_with("x-forwarded-") {
            return Err(Malformed::ReservedHeader(name));
        }
        if plan.headers.iter().any(|(existing, _)| *existing == name) {
            return Err(Malformed::HeaderTwice(name));
        }
        check_value(&value)?;
        plan.headers.push((name, Template::parse(&value)?));
    }
    for (name, value) in raw.query {
        if name.is_empty() || name.len() > MAX_PLAN_VALUE || name.chars().any(char::is_control) {
            return Err(Malformed::QueryName(name));
        }
        check_value(&value)?;
        plan.query.push((name, Template::parse(&value)?));
    }
    Ok(plan)
}

/// Checks a provider's OAuth profile, or the length of its refusal.
pub(crate) fn check_oauth_profile(
    answer: Result<OAuthProfile, String>,
) -> Result<Result<OAuthProfile, String>, Malformed> {
    let profile = match answer {
        Ok(profile) => profile,
        Err(refusal) if refusal.len() <= MAX_REFUSAL => return Ok(Err(refusal)),
        Err(refusal) => return Err(Malformed::RefusalTooLong(refusal.len())),
    };
    if let Some(scopes) = &profile.scopes {
        if scopes.len() > MAX_SCOPES {
            return Err(Malformed::TooManyScopes);
        }
        // RFC 6749 scope-token: visible ASCII except `"` and `\`; spaces separate scopes.
        let valid = |s: &str| {
            !s.is_empty()
                && s.len() <= MAX_SCOPE
                && s.bytes()
                    .all(|b| (0x21..0x7f).contains(&b) && b != b'"' && b != b'\\')
        };
        if let Some(bad) = scopes.iter().find(|s| !valid(s)) {
            return Err(Malformed::Scope(bad.clone()));
        }
    }
    if profile.authorization_params.len() + profile.token_params.len() > MAX_PARAMS {
        return Err(Malformed::TooManyParams);
    }
    for (params, reserved) in [
        (
            &profile.authorization_params,
            &RESERVED_AUTHORIZATION_PARAMS[..],
        ),
        (&profile.token_params, &RESERVED_TOKEN_PARAMS[..]),
    ] {
        for (name, value) in params {
            if name.is_empty()
                || name.len() > MAX_PARAM_NAME
                || !name.bytes().all(is_header_name_byte)
            {
                return Err(Malformed::ParamName(name.clone()));
            }
            if reserved.contains(&name.as_str()) {
                return Err(Malformed::ReservedParam(name.clone()));
            }
            check_value(value)?;
        }
    }
    if let Some(pointer) = &profile.access_token_pointer {
        let valid = pointer.starts_with('/')
            && pointer.len() <= MAX_PARAM_NAME
            && pointer.bytes().all(|b| (0x21..0x7f).contains(&b));
        if !valid {
            return Err(Malformed::TokenPointer(pointer.clone()));
        }
    }
    Ok(Ok(profile))
}

fn check_value(value: &str) -> Result<(), Malformed> {
    if value.len() > MAX_PLAN_VALUE {
        return Err(Malformed::ValueTooLong(value.len()));
    }
    // Visible ASCII, space and tab only: no CR or LF to start a second header, and no
    // bytes that HTTP libraries would reject at send time.
    if !value
        .bytes()
        .all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
    {
        return Err(Malformed::ValueCharacter);
    }
    Ok(())
}

/// RFC 9110 `tchar`.
fn is_header_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use portcullis_model::{Denial, DenyCode};

    use super::*;

    fn deny(reason: &str, message: &str) -> Decision {
        Decision::Deny(Denial {
            code: DenyCode::ToolNotPermitted,
            reason: reason.to_owned(),
            message: message.to_owned(),
        })
    }

    #[test]
    fn decisions() {
        assert_eq!(check_decision(&Decision::Allow), Ok(()));
        assert_eq!(check_decision(&deny("not_declared", "no")), Ok(()));
        assert_eq!(
            check_decision(&deny("", "no")),
            Err(Malformed::ReasonLength)
        );
        assert_eq!(
            check_decision(&deny("Not Declared", "no")),
            Err(Malformed::ReasonNotSnakeCase("Not Declared".into()))
        );
        assert_eq!(
            check_decision(&deny("x", &"m".repeat(MAX_MESSAGE + 1))),
            Err(Malformed::MessageTooLong(MAX_MESSAGE + 1))
        );
        assert_eq!(
            Malformed::MessageTooLong(4097).to_string(),
            "deny message is 4097 bytes, over the 4096-byte limit"
        );
    }

    #[test]
    fn plans() {
        let h = |n: &str, v: &str| RawPlan {
            headers: vec![(n.to_owned(), v.to_owned())],
            query: vec![],
        };
        let check = |plan| check_plan(Ok(plan)).map(|plan| plan.expect("a plan"));
        let plan = check(h("Authorization", "Bearer {secret}")).unwrap();
        assert_eq!(plan.headers[0].0, "authorization");
        assert_eq!(
            check(h("X-Api-Key", "{secret}\r\nX-Evil: 1")),
            Err(Malformed::ValueCharacter)
        );
        assert_eq!(
            check(h("Bad Name", "v")),
            Err(Malformed::HeaderName("bad name".into()))
        );
        assert_eq!(
            check(h("Host", "evil.example")),
            Err(Malformed::ReservedHeader("host".into()))
        );
        assert_eq!(
            check(h("X-Forwarded-For", "1.2.3.4")),
            Err(Malformed::ReservedHeader("x-forwarded-for".into()))
        );
        assert_eq!(
            check(h("Mcp-Session-Id", "x")),
            Err(Malformed::ReservedHeader("mcp-session-id".into()))
        );
        assert_eq!(
            check(h("X-Key", "{secrte}")),
            Err(Malformed::Template(TemplateError::UnknownPlaceholder {
                text: "{secrte}".into()
            }))
        );
        let twice = RawPlan {
            headers: vec![
                ("a".to_owned(), "1".to_owned()),
                ("A".to_owned(), "2".to_owned()),
            ],
            query: vec![],
        };
        assert_eq!(check(twice), Err(Malformed::HeaderTwice("a".into())));
        let query = RawPlan {
            headers: vec![],
            query: vec![("api_key".to_owned(), "{secret}".to_owned())],
        };
        assert_eq!(check(query).unwrap().query[0].0, "api_key");
    }

    #[test]
    fn refusals_are_bounded() {
        assert_eq!(check_plan(Err("no".into())), Ok(Err("no".into())));
        assert_eq!(
            check_plan(Err("r".repeat(MAX_REFUSAL + 1))),
            Err(Malformed::RefusalTooLong(MAX_REFUSAL + 1))
        );
        assert_eq!(
            Malformed::RefusalTooLong(4097).to_string(),
            "a refusal of 4097 bytes, over the 4096-byte limit"
        );
    }

    #[test]
    fn tool_sets() {
        assert_eq!(check_tools(RawToolSet::All), Ok(ToolSet::All));
        assert_eq!(
            check_tools(RawToolSet::Only(vec!["b".into(), "a".into(), "a".into()])),
            Ok(ToolSet::Only(["a".to_owned(), "b".to_owned()].into()))
        );
        assert_eq!(
            check_tools(RawToolSet::Only(vec!["n".repeat(MAX_TOOL_NAME + 1)])),
            Err(Malformed::ToolNameTooLong(MAX_TOOL_NAME + 1))
        );
    }

    #[test]
    fn oauth_profiles() {
        let standard = OAuthProfile::default();
        assert_eq!(check_oauth_profile(Ok(standard.clone())), Ok(Ok(standard)));
        let slack = OAuthProfile {
            scopes: Some(vec!["search:read.public".into(), "chat:write".into()]),
            authorization_params: vec![("user_scope".into(), "chat:write".into())],
            access_token_pointer: Some("/authed_user/access_token".into()),
            ..OAuthProfile::default()
        };
        assert_eq!(check_oauth_profile(Ok(slack.clone())), Ok(Ok(slack)));
        let with = |f: fn(&mut OAuthProfile)| {
            let mut profile = OAuthProfile::default();
            f(&mut profile);
            check_oauth_profile(Ok(profile))
        };
        assert_eq!(
            with(|p| p.scopes = Some(vec!["a b".into()])),
            Err(Malformed::Scope("a b".into()))
        );
        assert_eq!(
            with(|p| p.scopes = Some(vec!["s".into(); MAX_SCOPES + 1])),
            Err(Malformed::TooManyScopes)
        );
        assert_eq!(
            with(|p| p.authorization_params = vec![("redirect_uri".into(), "https://evil".into())]),
            Err(Malformed::ReservedParam("redirect_uri".into()))
        );
        assert_eq!(
            with(|p| p.token_params = vec![("client_secret".into(), "x".into())]),
            Err(Malformed::ReservedParam("client_secret".into()))
        );
        for name in RESERVED_AUTHORIZATION_PARAMS {
            let profile = OAuthProfile {
                authorization_params: vec![(name.into(), "x".into())],
                ..OAuthProfile::default()
            };
            let refused = Err(Malformed::ReservedParam(name.into()));
            assert_eq!(check_oauth_profile(Ok(profile)), refused, "{name}");
        }
        for name in RESERVED_TOKEN_PARAMS {
            let profile = OAuthProfile {
                token_params: vec![(name.into(), "x".into())],
                ..OAuthProfile::default()
            };
            let refused = Err(Malformed::ReservedParam(name.into()));
            assert_eq!(check_oauth_profile(Ok(profile)), refused, "{name}");
        }
        for name in ["request_uri", "response_mode", "request"] {
            assert!(RESERVED_AUTHORIZATION_PARAMS.contains(&name), "{name}");
        }
        assert!(RESERVED_TOKEN_PARAMS.contains(&"client_assertion"));
        assert_eq!(
            with(|p| p.token_params = vec![("a b".into(), "x".into())]),
            Err(Malformed::ParamName("a b".into()))
        );
        assert_eq!(
            with(|p| p.token_params = vec![("audience".into(), "x\r\ny".into())]),
            Err(Malformed::ValueCharacter)
        );
        assert_eq!(
            with(|p| p.access_token_pointer = Some("access_token".into())),
            Err(Malformed::TokenPointer("access_token".into()))
        );
        assert_eq!(
            check_oauth_profile(Err("no".into())),
            Ok(Err("no".to_owned()))
        );
        assert_eq!(
            check_oauth_profile(Err("x".repeat(MAX_REFUSAL + 1))),
            Err(Malformed::RefusalTooLong(MAX_REFUSAL + 1))
        );
    }
}
