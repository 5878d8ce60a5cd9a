//! Every connection Portcullis opens to an upstream MCP server goes through here.
//!
//! The rules of the specification (SEC-3) are applied when a connector URL is accepted
//! ([`Egress::check_url`]) and again before every connection ([`Egress::client_for`]):
//! * the address rule: no loopback, private, link-local, metadata or other
//!   special-purpose address ([`is_forbidden`]), checked inside the HTTP client's DNS
//!   resolver on the addresses the connection will actually use, so a DNS answer that
//!   changes after the connector was approved cannot point the proxy elsewhere; IP-literal
//!   hosts never reach a resolver, so `client_for` checks them;
//! * https only: a cleartext `http://` upstream would carry the credential unencrypted.
//!
//! `allow_private` (development and tests only) lifts the address rule and allows http,
//! but only to loopback and private addresses: http requests go through a second client
//! whose resolver refuses public ones. Redirects are not followed (a redirect is a new,
//! unchecked target); every socket has `TCP_NODELAY` (Nagle plus delayed ACK costs 40 ms
//! per pooled call); connects and idle reads are bounded.

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
    #[error(
        "the server URL must use https (or http for a local upstream in development), not {0:?}"
    )]
    Scheme(String),
    #[error("the server URL has no host")]
    NoHost,
    #[error(
        "the server URL carries a user name or password; give the credential as the \
         connector's secret instead"
    )]
    Userinfo,
    #[error("the server URL has port 0, which no server listens on")]
    PortZero,
    #[error("could not resolve {host}: {detail}; check the host name")]
    Resolve { host: String, detail: String },
    #[error(
        "{host} resolves to {addr}, a loopback, private, link-local, metadata or reserved \
         address; upstreams must be public (set PORTCULLIS_ALLOW_PRIVATE_UPSTREAMS=1 for local \
         development)"
    )]
    PrivateAddress { host: String, addr: IpAddr },
    #[error(
        "{host} is reached over cleartext http, which would send the credential unencrypted; \
         use https (http is accepted only for loopback and private upstreams with \
         PORTCULLIS_ALLOW_PRIVATE_UPSTREAMS=1, in development)"
    )]
    Cleartext { host: String },
    #[error("could not build the upstream HTTP client: {0}")]
    Client(String),
}

/// Which resolved addresses a connection may use.
#[derive(Clone, Copy)]
enum Reach {
    /// Public addresses only: the rule of SEC-3.
    Public,
    /// Any address: `allow_private`, for https in development.
    Any,
    /// Loopback and private addresses only: cleartext http in development, which must
    /// never carry a credential across the internet.
    Local,
}

impl Reach {
    fn check(self, host: &str, ip: IpAddr) -> Result<(), EgressError> {
        match self {
            Reach::Public if is_forbidden(ip) => Err(EgressError::PrivateAddress {
                host: host.to_owned(),
                addr: ip,
            }),
            Reach::Local if !is_forbidden(ip) => Err(EgressError::Cleartext {
                host: host.to_owned(),
            }),
            _ => Ok(()),
        }
    }
}

pub struct Egress {
    /// https only; its resolver applies the address rule.
    tls: Client,
    /// http to loopback and private addresses; only with `allow_private`.
    cleartext: Option<Client>,
    allow_private: bool,
}

impl Egress {
    pub fn new(config: &EgressConfig) -> Result<Self, EgressError> {
        let tls_reach = if config.allow_private {
            Reach::Any
        } else {
            Reach::Public
        };
        let tls = build_client(config, tls_reach)?;
        let cleartext = config
            .allow_private
            .then(|| build_client(config, Reach::Local))
            .transpose()?;
        Ok(Self {
            tls,
            cleartext,
            allow_private: config.allow_private,
        })
    }

    /// Parses a connector URL, checks it and every address its host resolves to, and
    /// answers it in the form to store: scheme and host lower-cased (IDNs in punycode),
    /// no default port, no fragment.
    pub async fn check_url(&self, url: &str) -> Result<Url, EgressError> {
        let mut parsed = Url::parse(url).map_err(|e| EgressError::InvalidUrl(e.to_string()))?;
        let reach = self.reach(&parsed)?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(EgressError::Userinfo);
        }
        if parsed.port() == Some(0) {
            return Err(EgressError::PortZero);
        }
        let host = parsed.host_str().ok_or(EgressError::NoHost)?.to_owned();
        let port = parsed.port_or_known_default().unwrap_or(443);
        for addr in resolve(&host, port).await? {
            reach.check(&host, addr.ip())?;
        }
        parsed.set_fragment(None);
        Ok(parsed)
    }

    /// The client for a request to `url`, checked again before every connection: the
    /// scheme, and the address when the host is an IP literal (which never reaches a
    /// resolver). A host name is checked by the chosen client's resolver, on the
    /// addresses the connection will use.
    pub fn client_for(&self, url: &Url) -> Result<&Client, EgressError> {
        let reach = self.reach(url)?;
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => None,
            None => return Err(EgressError::NoHost),
        };
        if let Some(ip) = literal {
            reach.check(&ip.to_string(), ip)?;
        }
        match reach {
            Reach::Local => self.cleartext.as_ref().ok_or(EgressError::Cleartext {
                host: url.host_str().unwrap_or_default().to_owned(),
            }),
            Reach::Public | Reach::Any => Ok(&self.tls),
        }
    }

    /// The address rule for `url`'s scheme.
    fn reach(&self, url: &Url) -> Result<Reach, EgressError> {
        match (url.scheme(), self.allow_private) {
            ("https", false) => Ok(Reach::Public),
            ("https", true) => Ok(Reach::Any),
            ("http", true) => Ok(Reach::Local),
            ("http", false) => Err(EgressError::Cleartext {
                host: url.host_str().unwrap_or_default().to_owned(),
            }),
            (other, _) => Err(EgressError::Scheme(other.to_owned())),
        }
    }
}

fn build_client(config: &EgressConfig, reach: Reach) -> Result<Client, EgressError> {
    Client::builder()
        .dns_resolver(Arc::new(CheckedResolver { reach }))
        .https_only(!matches!(reach, Reach::Local))
        .redirect(reqwest::redirect::Policy::none())
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_millis(config.connect_timeout_ms))
        .read_timeout(Duration::from_millis(config.idle_timeout_ms))
        .pool_idle_timeout(Duration::from_secs(90))
        .no_proxy()
        .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| EgressError::Client(e.to_string()))
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

/// Every address an upstream may not have: anything that is not public unicast, the
/// special-purpose ranges of the IANA registries, the cloud metadata endpoints, and the
/// IPv6 forms that carry an IPv4 address (checked as that IPv4 address, or refused when
/// the translation is local). IPv6 is allowed only in global unicast (`2000::/3`), so a
/// range missing from the tables below fails closed.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_forbidden_v4(v4),
        IpAddr::V6(v6) => is_forbidden_v6(v6),
    }
}

/// IPv4 ranges that are not public unicast (RFC 6890 and its updates), and metadata
/// addresses that sit in public space.
const FORBIDDEN_V4: [(Ipv4Addr, u8); 17] = [
    (Ipv4Addr::new(0, 0, 0, 0), 8),          // "this network"
    (Ipv4Addr::new(10, 0, 0, 0), 8),         // private
    (Ipv4Addr::new(100, 64, 0, 0), 10),      // shared (CGNAT); Alibaba metadata 100.100.100.200
    (Ipv4Addr::new(127, 0, 0, 0), 8),        // loopback
    (Ipv4Addr::new(169, 254, 0, 0), 16),     // link-local; AWS, GCP, Azure metadata 169.254.169.254
    (Ipv4Addr::new(172, 16, 0, 0), 12),      // private
    (Ipv4Addr::new(192, 0, 0, 0), 24), // IETF protocol assignments; Oracle metadata 192.0.0.192
    (Ipv4Addr::new(192, 0, 2, 0), 24), // documentation
    (Ipv4Addr::new(192, 88, 99, 0), 24), // 6to4 relay anycast
    (Ipv4Addr::new(192, 168, 0, 0), 16), // private
    (Ipv4Addr::new(198, 18, 0, 0), 15), // benchmarking
    (Ipv4Addr::new(198, 51, 100, 0), 24), // documentation
    (Ipv4Addr::new(203, 0, 113, 0), 24), // documentation
    (Ipv4Addr::new(224, 0, 0, 0), 4),  // multicast
    (Ipv4Addr::new(240, 0, 0, 0), 4),  // reserved, and the broadcast address
    (Ipv4Addr::new(168, 63, 129, 16), 32), // Azure platform (wire server)
    (Ipv4Addr::new(100, 100, 100, 200), 32), // Alibaba metadata, also inside 100.64/10
];

/// Ranges inside IPv6 global unicast (`2000::/3`) that are not public unicast.
const FORBIDDEN_V6: [(Ipv6Addr, u8); 5] = [
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23), // IETF protocol assignments: Teredo 2001::/32, benchmarking, ORCHID
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32), // documentation
    (Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16), // 6to4, which embeds an IPv4 address
    (Ipv6Addr::new(0x3ffe, 0, 0, 0, 0, 0, 0, 0), 16), // the former 6bone
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20), // documentation
];

/// NAT64's well-known prefix `64:ff9b::/96`: the last 32 bits are the IPv4 destination.
const NAT64: Ipv6Addr = Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0);

fn in_v4(ip: Ipv4Addr, (net, len): (Ipv4Addr, u8)) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    u32::from(ip) & mask == u32::from(net) & mask
}

fn in_v6(ip: Ipv6Addr, (net, len): (Ipv6Addr, u8)) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
    u128::from(ip) & mask == u128::from(net) & mask
}

fn is_forbidden_v4(ip: Ipv4Addr) -> bool {
    FORBIDDEN_V4.iter().any(|&range| in_v4(ip, range))
}

fn is_forbidden_v6(ip: Ipv6Addr) -> bool {
    // IPv4-mapped (::ffff:a.b.c.d): the connection goes to the IPv4 address.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_forbidden_v4(v4);
    }
    if in_v6(ip, (NAT64, 96)) {
        return is_forbidden_v4(Ipv4Addr::from(u128::from(ip) as u32));
    }
    // Outside 2000::/3 lie ::/96 (IPv4-compatible), ::ffff:0:0:0/96 (IPv4-translated),
    // 64:ff9b:1::/48 (local NAT64), 100::/64 (discard), fc00::/7 (unique local, AWS
    // metadata fd00:ec2::254), fe80::/10 (link-local), fec0::/10 and ff00::/8 (multicast).
    !in_v6(ip, (Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3))
        || FORBIDDEN_V6.iter().any(|&range| in_v6(ip, range))
}

/// The resolver of an upstream client: refuses a name whose addresses include one its
/// rule forbids, so the connection can only go where the check looked.
struct CheckedResolver {
    reach: Reach,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let reach = self.reach;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs = resolve(&host, 0).await?;
            for addr in &addrs {
                reach.check(&host, addr.ip())?;
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests;
