//! Who is on the other end of a request: the client's address, seen through trusted proxies.
//!
//! The address the connection comes from is the client's, unless it is one of the configured
//! trusted proxies (`--trusted-proxies`); then `X-Forwarded-For` is read from the right, each
//! trusted hop stepping one entry further left, and the first address that is not a trusted
//! proxy is the client's. Entries left of it were written by the client and are never believed.
//! Rate limits count per [`ClientKey`]: the address itself for IPv4, its /64 network for IPv6
//! (one subscriber usually holds a whole /64, so counting single IPv6 addresses would let one
//! person be millions of clients).

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The client's address, as far as we can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddr(pub IpAddr);

/// What rate limits and connection caps count by: an IPv4 address, or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientKey(IpAddr);

impl ClientAddr {
    /// The key this client is counted under.
    pub fn key(self) -> ClientKey {
        ClientKey::of(self.0)
    }
}

impl ClientKey {
    pub fn of(ip: IpAddr) -> ClientKey {
        match canonical(ip) {
            IpAddr::V4(v4) => ClientKey(IpAddr::V4(v4)),
            IpAddr::V6(v6) => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                ClientKey(IpAddr::V6(Ipv6Addr::from(bits)))
            }
        }
    }

    /// As stored (address bans): `192.0.2.7` or `2001:db8:1:2::/64`.
    pub fn as_text(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

impl fmt::Display for ClientAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`, as a dual-stack socket reports IPv4 peers) as
/// the IPv4 address they are.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn trusted(ip: IpAddr, proxies: &[IpNet]) -> bool {
    proxies.iter().any(|net| net.contains(&ip))
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`[v6]:port`, `v4:port`).
fn parse_hop(raw: &str) -> Option<IpAddr> {
    let raw = raw.trim();
    raw.parse::<IpAddr>()
        .ok()
        .or_else(|| raw.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(canonical)
}

/// The client's address: `peer` unless it is a trusted proxy, then walking `X-Forwarded-For`
/// from the right past every trusted hop.
pub fn resolve(peer: IpAddr, headers: &HeaderMap, proxies: &[IpNet]) -> IpAddr {
    let mut client = canonical(peer);
    if proxies.is_empty() || !trusted(client, proxies) {
        return client;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop) else {
            // Garbage where an address should be: the last trusted hop is all we know.
            break;
        };
        client = ip;
        if !trusted(ip, proxies) {
            break;
        }
    }
    client
}

/// Works out the client's address once per request and keeps it in the request's extensions.
pub async fn client_middleware(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    let client = ClientAddr(resolve(
        peer,
        request.headers(),
        &state.config.trusted_proxies,
    ));
    request.extensions_mut().insert(client);
    next.run(request).await
}

/// Counts an API or media request against its client address's rate (`--limit-requests`). Each
/// is a session lookup and often a database read, so one address sending as fast as it can is
/// refused here, before either.
pub async fn request_rate_middleware(
    State(state): State<AppState>,
    client: ClientAddr,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    state
        .throttles
        .requests
        .check(&client.key())
        .map_err(|wait| ApiError::rate_limited("too_many_requests", "requests", wait))?;
    Ok(next.run(request).await)
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<ClientAddr>()
            .copied()
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("route is outside the client layer")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client() {
        let h = xff(&["203.0.113.9"]);
        assert_eq!(resolve(ip("198.51.100.1"), &h, &[]), ip("198.51.100.1"));
        // A client cannot claim to be someone else through a proxy it is not.
        let proxies = ["10.0.0.0/8".parse().unwrap()];
        assert_eq!(
            resolve(ip("198.51.100.1"), &h, &proxies),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn trusted_hops_are_walked_from_the_right() {
        let proxies: Vec<IpNet> = vec![
            "10.0.0.0/8".parse().unwrap(),
            "127.0.0.1/32".parse().unwrap(),
        ];
        // The client wrote a fake first entry; nginx appended the real address; a second proxy
        // (10.0.0.2) appended its own view.
        let h = xff(&["1.1.1.1, 203.0.113.9", "10.0.0.2"]);
        assert_eq!(resolve(ip("127.0.0.1"), &h, &proxies), ip("203.0.113.9"));
        // Only trusted hops: the leftmost is the best we know.
        assert_eq!(
            resolve(ip("127.0.0.1"), &xff(&["10.0.0.3"]), &proxies),
            ip("10.0.0.3")
        );
        // No header: the proxy itself.
        assert_eq!(
            resolve(ip("127.0.0.1"), &HeaderMap::new(), &proxies),
            ip("127.0.0.1")
        );
        // Ports and garbage.
        assert_eq!(
            resolve(ip("127.0.0.1"), &xff(&["[2001:db8::1]:443"]), &proxies),
            ip("2001:db8::1")
        );
        assert_eq!(
            resolve(ip("127.0.0.1"), &xff(&["203.0.113.9, junk"]), &proxies),
            ip("127.0.0.1")
        );
        // IPv4 peers on a dual-stack socket.
        assert_eq!(
            resolve(ip("::ffff:127.0.0.1"), &xff(&["203.0.113.9"]), &proxies),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn keys_group_ipv6_by_64() {
        assert_eq!(ClientKey::of(ip("192.0.2.7")).to_string(), "192.0.2.7");
        let a = ClientKey::of(ip("2001:db8:1:2::1"));
        let b = ClientKey::of(ip("2001:db8:1:2:ffff::9"));
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "2001:db8:1:2::/64");
        assert_ne!(a, ClientKey::of(ip("2001:db8:1:3::1")));
        assert_eq!(
            ClientKey::of(ip("::ffff:192.0.2.7")),
            ClientKey::of(ip("192.0.2.7"))
        );
    }
}
