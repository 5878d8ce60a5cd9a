//! The address table, the https rule and the checks before every connection.

use super::*;

/// Each address an upstream may not have, with the range it stands for.
const FORBIDDEN: &[(&str, &str)] = &[
    ("0.0.0.0", "this network"),
    ("0.1.2.3", "this network, 0/8"),
    ("10.0.0.5", "private"),
    ("100.64.0.1", "shared 100.64/10"),
    ("100.127.255.254", "shared 100.64/10, top"),
    ("100.100.100.200", "Alibaba metadata"),
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback /8"),
    ("169.254.169.254", "AWS/GCP/Azure metadata"),
    ("169.254.170.2", "ECS task metadata"),
    ("172.16.3.4", "private"),
    ("172.31.255.255", "private /12 top"),
    ("192.0.0.192", "Oracle metadata, 192.0.0/24"),
    ("192.0.0.8", "IETF assignments"),
    ("192.0.2.1", "documentation"),
    ("192.88.99.1", "6to4 relay"),
    ("192.168.1.1", "private"),
    ("198.18.0.1", "benchmarking"),
    ("198.19.255.255", "benchmarking /15 top"),
    ("198.51.100.7", "documentation"),
    ("203.0.113.9", "documentation"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "broadcast"),
    ("168.63.129.16", "Azure wire server"),
    ("::", "unspecified"),
    ("::1", "loopback"),
    ("::127.0.0.1", "IPv4-compatible loopback"),
    ("::8.8.8.8", "IPv4-compatible, deprecated"),
    ("::a9fe:a9fe", "IPv4-compatible metadata"),
    ("::ffff:10.0.0.1", "IPv4-mapped private"),
    ("::ffff:127.0.0.1", "IPv4-mapped loopback"),
    ("::ffff:169.254.169.254", "IPv4-mapped metadata"),
    ("::ffff:0:8.8.8.8", "IPv4-translated ::ffff:0:0:0/96"),
    ("::ffff:0:7f00:1", "IPv4-translated loopback"),
    ("64:ff9b::a9fe:a9fe", "NAT64 of metadata"),
    ("64:ff9b::7f00:1", "NAT64 of loopback"),
    ("64:ff9b::a00:1", "NAT64 of private"),
    ("64:ff9b:1::808:808", "local-use NAT64 64:ff9b:1::/48"),
    ("64:ff9b:1:ffff::1", "local-use NAT64, other subnet"),
    ("100::1", "discard-only"),
    ("2001::1", "Teredo 2001::/32"),
    (
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        "Teredo with a public server",
    ),
    ("2001:2::1", "benchmarking"),
    ("2001:10::1", "ORCHID"),
    ("2001:20::1", "ORCHIDv2"),
    ("2001:db8::1", "documentation"),
    ("2002:7f00:1::1", "6to4 of loopback"),
    ("2002:808:808::1", "6to4 of a public address"),
    ("3fff::1", "documentation 3fff::/20"),
    ("3ffe::1", "former 6bone"),
    ("5f00::1", "SRv6 SIDs, outside 2000::/3"),
    ("fc00::1", "unique local"),
    ("fd00:ec2::254", "AWS metadata"),
    ("fd00:ec2::23", "AWS DNS"),
    ("fe80::1", "link-local"),
    ("febf::1", "link-local /10 top"),
    ("fec0::1", "site-local"),
    ("ff02::1", "multicast"),
    ("4000::1", "outside global unicast"),
];

const ALLOWED: &[&str] = &[
    "1.1.1.1",
    "8.8.8.8",
    "140.82.112.3",
    "100.63.255.255",
    "100.128.0.0",
    "172.15.255.255",
    "172.32.0.0",
    "192.0.1.1",
    "198.17.255.255",
    "198.20.0.0",
    "223.255.255.255",
    "169.253.255.255",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2606:4700::1111",
    "2001:4860:4860::8888",
    "2001:200::1",
    "2a00:1450:4001::1",
    "3ffd:ffff::1",
];

#[test]
fn forbidden_ranges() {
    for (ip, range) in FORBIDDEN {
        let addr: IpAddr = ip.parse().unwrap();
        assert!(is_forbidden(addr), "{ip} ({range}) should be forbidden");
    }
    for ip in ALLOWED {
        assert!(!is_forbidden(ip.parse().unwrap()), "{ip} should be allowed");
    }
}

fn strict() -> Egress {
    Egress::new(&EgressConfig::default()).unwrap()
}

fn development() -> Egress {
    Egress::new(&EgressConfig {
        allow_private: true,
        ..EgressConfig::default()
    })
    .unwrap()
}

#[tokio::test]
async fn check_url_refuses_private_and_non_http() {
    let egress = strict();
    for url in [
        "https://169.254.169.254/mcp",
        "https://127.0.0.1:9/mcp",
        "https://localhost:9/mcp",
        "https://[::1]:9/mcp",
        "https://[::ffff:127.0.0.1]/mcp",
        "https://[64:ff9b:1::a9fe:a9fe]/mcp",
        "https://[2002:a9fe:a9fe::]/mcp",
        "https://[fd00:ec2::254]/mcp",
        "https://100.100.100.200/mcp",
        "https://0x7f.1/mcp",
        "https://2130706433/mcp",
    ] {
        let err = egress.check_url(url).await.unwrap_err();
        assert!(
            matches!(err, EgressError::PrivateAddress { .. }),
            "{url}: {err}"
        );
    }
    for url in ["ftp://example.com/mcp", "file:///etc/passwd", "ws://x/mcp"] {
        let err = egress.check_url(url).await.unwrap_err();
        assert!(matches!(err, EgressError::Scheme(_)), "{url}: {err}");
    }
    for url in [
        "not a url",
        "https://[fe80::1%25eth0]/mcp",
        "https://[fe80::1%eth0]/mcp",
        "https://exa mple.com/",
        "https://example.com:65536/mcp",
        "https://example.com:-1/mcp",
        "https://[::1/mcp",
    ] {
        let err = egress.check_url(url).await.unwrap_err();
        assert!(matches!(err, EgressError::InvalidUrl(_)), "{url}: {err}");
    }
}

#[tokio::test]
async fn cleartext_http_is_refused_for_public_hosts() {
    // Strict: no http at all, before any lookup (a public literal, so no DNS is needed).
    let egress = strict();
    for url in [
        "http://1.1.1.1/mcp",
        "http://127.0.0.1:9/mcp",
        "HTTP://8.8.8.8/",
    ] {
        let err = egress.check_url(url).await.unwrap_err();
        assert!(matches!(err, EgressError::Cleartext { .. }), "{url}: {err}");
        let parsed = Url::parse(url).unwrap();
        assert!(matches!(
            egress.client_for(&parsed),
            Err(EgressError::Cleartext { .. })
        ));
    }
    // Development: http only to loopback and private addresses.
    let egress = development();
    for url in [
        "http://1.1.1.1/mcp",
        "http://[2606:4700::1111]/mcp",
        "http://[::ffff:8.8.8.8]/",
    ] {
        let err = egress.check_url(url).await.unwrap_err();
        assert!(matches!(err, EgressError::Cleartext { .. }), "{url}: {err}");
        assert!(
            egress.client_for(&Url::parse(url).unwrap()).is_err(),
            "{url}"
        );
    }
    for url in [
        "http://127.0.0.1:9/mcp",
        "http://localhost:9/mcp",
        "http://10.1.2.3/mcp",
    ] {
        assert!(egress.check_url(url).await.is_ok(), "{url}");
        assert!(
            egress.client_for(&Url::parse(url).unwrap()).is_ok(),
            "{url}"
        );
    }
    assert!(egress.check_url("https://127.0.0.1:9/mcp").await.is_ok());
}

#[tokio::test]
async fn check_url_refuses_userinfo_and_port_zero_and_normalizes() {
    let egress = development();
    for url in [
        "http://user:hunter2@127.0.0.1:9/mcp",
        "http://hunter2@127.0.0.1:9/mcp",
        "http://:hunter2@127.0.0.1:9/mcp",
        "https://hunter2@example.com/mcp",
    ] {
        let err = egress.check_url(url).await.unwrap_err();
        assert!(matches!(err, EgressError::Userinfo), "{url}: {err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
    assert!(matches!(
        egress
            .check_url("http://127.0.0.1:0/mcp")
            .await
            .unwrap_err(),
        EgressError::PortZero
    ));
    let stored = egress
        .check_url("HTTP://LOCALHOST:80/a/../MCP/?q=1#frag")
        .await
        .unwrap();
    assert_eq!(stored.as_str(), "http://localhost/MCP/?q=1");
    // A backslash is a path separator to a WHATWG parser: what is stored is what is sent.
    let stored = egress
        .check_url("http://127.0.0.1:9\\@evil.example/mcp")
        .await
        .unwrap();
    assert_eq!(stored.host_str(), Some("127.0.0.1"));
}

#[tokio::test]
async fn allow_private_permits_loopback() {
    assert!(
        development()
            .check_url("http://127.0.0.1:9/mcp")
            .await
            .is_ok()
    );
}

fn error_chain(err: &reqwest::Error) -> String {
    let mut chain = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    chain
}

#[tokio::test]
async fn resolvers_refuse_forbidden_addresses_at_connect_time() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let egress = strict();
    let url = Url::parse(&format!("https://localhost:{port}/mcp")).unwrap();
    let client = egress.client_for(&url).unwrap();
    let err = client.get(url.clone()).send().await.unwrap_err();
    let chain = error_chain(&err);
    assert!(chain.contains("loopback, private"), "{chain}");
    // The https client never sends cleartext, whoever hands it an http URL.
    let err = client
        .get(format!("http://localhost:{port}/mcp"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_builder(), "{}", error_chain(&err));
    let literal = Url::parse(&format!("https://127.0.0.1:{port}/mcp")).unwrap();
    assert!(egress.client_for(&literal).is_err());
}
