//! Every connection Portcullis opens to an upstream MCP server goes through here.
//!
//! The SSRF rule of the specification (SEC-3) is applied twice: when a connector URL is
//! accepted ([`Egress::check_url`]) and again inside the HTTP client's DNS resolver, on
//! the addresses the connection will actually use, so a DNS answer that changes after
//! the connector was approved cannot point the proxy at a private address. IP-literal
//! hosts never reach a resolver, so [`Egress::check_target`] checks them per request.
//! Redirects are not followed (a redirect is a new, unchecked target); every socket has
//! `TCP_NODELAY` (Nagle plus delayed ACK costs 40 ms per pooled call); connects and idle
//! reads are bounded.
//!
//! `allow_private` turns the address rule off for local development and tests only.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::{Client, Url};
use serde::Deserialize;

/// The `[upstream]` configuration table.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EgressConfig {
    /// Allow upstreams on loopback, private, link-local and metadata addresses. For local
    /// development and tests only (`PORTCULLIS_ALLOW_PRIVATE_UPSTREAMS=1`).
    pub allow_private: bool,
    /// Time to establish a connection, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Longest silence while reading an answer (between SSE events, for instance), in
    /// milliseconds.
    pub idle_timeout_ms: u64,
}

impl Default for EgressConfig {
    fn default() -> Self {
        Self {
            allow_private: false,
            connect_timeout_ms: 10_000,
            idle_timeout_ms: 300_000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    #[error("the server URL is not a valid URL: {0}")]
    InvalidUrl(String),
    #[error("the server URL must use http or https, not {0:?}")]
    Scheme(String),
    #[error("the server URL has no host")]
    NoHost,
    #[error("could not resolve {host}: {detail}; check the host name")]
    Resolve { host: String, detail: String },
    #[error(
        "{host} resolves to {addr}, a loopback, private, link-local or metadata address; \
         upstreams must be public (set PORTCULLIS_ALLOW_PRIVATE_UPSTREAMS=1 for local development)"
    )]
    PrivateAddress { host: String, addr: IpAddr },
    #[error("could not build the upstream HTTP client: {0}")]
    Client(String),
}

pub struct Egress {
    client: Client,
    allow_private: bool,
}

impl Egress {
    pub fn new(config: &EgressConfig) -> Result<Self, EgressError> {
        let client = Client::builder()
            .dns_resolver(Arc::new(CheckedResolver {
                allow_private: config.allow_private,
            }))
            .redirect(reqwest::redirect::Policy::none())
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_millis(config.connect_timeout_ms))
            .read_timeout(Duration::from_millis(config.idle_timeout_ms))
            .pool_idle_timeout(Duration::from_secs(90))
            .no_proxy()
            .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| EgressError::Client(e.to_string()))?;
        Ok(Self {
            client,
            allow_private: config.allow_private,
        })
    }

    /// The client for upstream requests; its resolver refuses forbidden addresses.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Parses a connector URL and checks every address its host resolves to.
    pub async fn check_url(&self, url: &str) -> Result<Url, EgressError> {
        let parsed = Url::parse(url).map_err(|e| EgressError::InvalidUrl(e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(EgressError::Scheme(parsed.scheme().to_owned()));
        }
        let host = parsed.host_str().ok_or(EgressError::NoHost)?.to_owned();
        let port = parsed.port_or_known_default().unwrap_or(443);
        let addrs = resolve(&host, port).await?;
        if !self.allow_private {
            for addr in &addrs {
                refuse_forbidden(&host, addr.ip())?;
            }
        }
        Ok(parsed)
    }

    /// The per-request check for hosts the resolver never sees: IP literals.
    pub fn check_target(&self, url: &Url) -> Result<(), EgressError> {
        if self.allow_private {
            return Ok(());
        }
        match url.host() {
            Some(url::Host::Ipv4(ip)) => refuse_forbidden(&ip.to_string(), IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => refuse_forbidden(&ip.to_string(), IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => Ok(()),
            None => Err(EgressError::NoHost),
        }
    }
}

/// The whole cause chain of a reqwest error: its top line alone says only "error
/// sending request".
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, EgressError> {
    let host_for_lookup = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host_for_lookup, port))
        .await
        .map_err(|e| EgressError::Resolve {
            host: host.to_owned(),
            detail: e.to_string(),
        })?
        .collect();
    if addrs.is_empty() {
        return Err(EgressError::Resolve {
            host: host.to_owned(),
            detail: "no addresses".to_owned(),
        });
    }
    Ok(addrs)
}

fn refuse_forbidden(host: &str, ip: IpAddr) -> Result<(), EgressError> {
    if is_forbidden(ip) {
        Err(EgressError::PrivateAddress {
            host: host.to_owned(),
            addr: ip,
        })
    } else {
        Ok(())
    }
}

/// Loopback, private, link-local (which holds the cloud metadata address
/// 169.254.169.254), shared, unspecified, multicast and reserved ranges, and the IPv4
/// addresses embedded in IPv4-mapped and NAT64 IPv6 addresses.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_forbidden_v4(v4),
        IpAddr::V6(v6) => is_forbidden_v6(v6),
    }
}

fn is_forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240
}

fn is_forbidden_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_forbidden_v4(v4);
    }
    let segments = ip.segments();
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [.., hi, lo] = segments;
        return is_forbidden_v4(Ipv4Addr::from(((hi as u32) << 16) | lo as u32));
    }
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (segments[0] & 0xfe00) == 0xfc00
        || (segments[0] & 0xffc0) == 0xfe80
        || (segments[0] & 0xffc0) == 0xfec0
        || segments[..2] == [0x2001, 0xdb8]
}

/// The resolver of the upstream client: refuses a name whose addresses include a
/// forbidden one, so the connection can only go where the check looked.
struct CheckedResolver {
    allow_private: bool,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs = resolve(&host, 0).await?;
            if !allow_private {
                for addr in &addrs {
                    refuse_forbidden(&host, addr.ip())?;
                }
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_ranges() {
        for ip in [
            "127.0.0.1",
            "10.0.0.5",
            "172.16.3.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(
                is_forbidden(ip.parse().unwrap()),
                "{ip} should be forbidden"
            );
        }
        for ip in [
            "1.1.1.1",
            "140.82.112.3",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_forbidden(ip.parse().unwrap()), "{ip} should be allowed");
        }
    }

    #[tokio::test]
    async fn check_url_refuses_private_and_non_http() {
        let egress = Egress::new(&EgressConfig::default()).unwrap();
        for url in [
            "https://169.254.169.254/mcp",
            "http://127.0.0.1:9/mcp",
            "http://localhost:9/mcp",
            "http://[::1]:9/mcp",
        ] {
            let err = egress.check_url(url).await.unwrap_err();
            assert!(
                matches!(err, EgressError::PrivateAddress { .. }),
                "{url}: {err}"
            );
        }
        assert!(matches!(
            egress.check_url("ftp://example.com/mcp").await.unwrap_err(),
            EgressError::Scheme(_)
        ));
        assert!(matches!(
            egress.check_url("not a url").await.unwrap_err(),
            EgressError::InvalidUrl(_)
        ));
    }

    #[tokio::test]
    async fn allow_private_permits_loopback() {
        let config = EgressConfig {
            allow_private: true,
            ..EgressConfig::default()
        };
        let egress = Egress::new(&config).unwrap();
        assert!(egress.check_url("http://127.0.0.1:9/mcp").await.is_ok());
    }

    #[tokio::test]
    async fn resolver_refuses_private_addresses_at_connect_time() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let egress = Egress::new(&EgressConfig::default()).unwrap();
        let err = egress
            .client()
            .get(format!("http://localhost:{port}/mcp"))
            .send()
            .await
            .unwrap_err();
        let mut chain = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            chain.push_str(&cause.to_string());
            source = cause.source();
        }
        assert!(chain.contains("loopback, private"), "{chain}");
        let url = Url::parse(&format!("http://127.0.0.1:{port}/mcp")).unwrap();
        assert!(egress.check_target(&url).is_err());
    }
}
