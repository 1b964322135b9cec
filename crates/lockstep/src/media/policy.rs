//! Which addresses the server may fetch media from: the one rule against server-side request
//! forgery, used when a URL is added (a quick, friendly refusal) and by the media proxy on every
//! connection ffprobe makes (the enforcement, see [`super::proxy`]).
//!
//! An outside test showed that reading only the URL's text is not enough: ffprobe fetched names
//! that resolve to 127.0.0.1, this machine's own public address, a redirect to 127.0.0.1, and HLS
//! segments on 127.0.0.1 listed by a playlist on an allowed host. So every name is resolved and
//! every address it resolves to is checked (one bad address refuses the name), the machine's own
//! addresses count as private, and the connection then goes to an address that was checked, so
//! a name cannot resolve differently between the check and the fetch.

use ipnet::IpNet;
use lockstep_core::media::is_private_ip;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a name may take to resolve.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the machine's own addresses are remembered before they are read again.
const OWN_ADDRESSES_FOR: Duration = Duration::from_secs(60);

/// Why an address or name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("{}", private_text(host, ip))]
    Private { host: String, ip: IpAddr },
    #[error("{host} does not resolve")]
    Unresolved { host: String },
}

fn private_text(host: &str, ip: &IpAddr) -> String {
    if host.parse::<IpAddr>().ok().as_ref() == Some(ip) {
        format!("{ip} is a private or local address")
    } else {
        format!("{host} resolves to a private or local address ({ip})")
    }
}

/// The media address policy.
#[derive(Debug)]
pub struct MediaPolicy {
    /// Everything is allowed (`--allow-private-media`).
    allow_private: bool,
    /// Private networks that are allowed all the same (`--media-allow-networks`).
    allowed_networks: Vec<IpNet>,
    own: Mutex<Option<(Instant, Vec<IpAddr>)>>,
}

impl MediaPolicy {
    pub fn new(allow_private: bool, allowed_networks: Vec<IpNet>) -> Self {
        MediaPolicy {
            allow_private,
            allowed_networks,
            own: Mutex::new(None),
        }
    }

    /// The addresses of this machine's interfaces (public ones included: the server must not
    /// fetch from itself through them either).
    fn own_addresses(&self) -> Vec<IpAddr> {
        let mut own = self
            .own
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((read, addresses)) = own.as_ref()
            && read.elapsed() < OWN_ADDRESSES_FOR
        {
            return addresses.clone();
        }
        let addresses: Vec<IpAddr> = match if_addrs::get_if_addrs() {
            Ok(interfaces) => interfaces.into_iter().map(|i| i.ip()).collect(),
            Err(err) => {
                tracing::warn!(error = %err, "cannot read this machine's addresses");
                Vec::new()
            }
        };
        *own = Some((Instant::now(), addresses.clone()));
        addresses
    }

    /// Whether `ip` may be fetched from.
    pub fn allows(&self, ip: IpAddr) -> bool {
        allows(
            ip,
            self.allow_private,
            &self.allowed_networks,
            &self.own_addresses(),
        )
    }

    /// Resolves `host` and returns its addresses (with `port`) if every one of them is allowed.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, Refused> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let addresses: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => {
                let lookup = tokio::net::lookup_host((host, port));
                match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
                    Ok(Ok(found)) => found.collect(),
                    _ => Vec::new(),
                }
            }
        };
        if addresses.is_empty() {
            return Err(Refused::Unresolved {
                host: host.to_owned(),
            });
        }
        if let Some(bad) = addresses.iter().find(|a| !self.allows(a.ip())) {
            return Err(Refused::Private {
                host: host.to_owned(),
                ip: bad.ip(),
            });
        }
        Ok(addresses)
    }

    /// Whether a URL someone adds may be fetched: its host resolves to allowed addresses only.
    /// A name that does not resolve (from here) is let through: nothing can be fetched from it
    /// by us, and viewers' browsers may resolve it.
    pub async fn check_url(&self, url: &url::Url) -> Result<(), Refused> {
        if self.allow_private {
            return Ok(());
        }
        let Some(host) = url.host_str() else {
            return Err(Refused::Unresolved {
                host: String::new(),
            });
        };
        let port = url.port_or_known_default().unwrap_or(80);
        match self.resolve(host, port).await {
            Ok(_) | Err(Refused::Unresolved { .. }) => Ok(()),
            Err(refused) => Err(refused),
        }
    }
}

/// The rule itself: loopback, private, link-local, CGNAT, unspecified, broadcast, unique-local
/// and this machine's own addresses are refused, unless everything is allowed or the address is
/// in an allowed network.
pub fn allows(ip: IpAddr, allow_private: bool, allowed: &[IpNet], own: &[IpAddr]) -> bool {
    let ip = crate::server::client::canonical(ip);
    if allow_private || allowed.iter().any(|net| net.contains(&ip)) {
        return true;
    }
    !is_private_ip(ip) && !own.contains(&ip) && !is_special(ip)
}

/// Addresses no media lives at that `is_private_ip` does not cover: multicast, reserved,
/// documentation ranges are fine to refuse too, but the machine's own documentation-range
/// address is covered by `own`; here only multicast and the 0.0.0.0/8 "this network" block.
fn is_special(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_multicast() || v4.octets()[0] == 0,
        IpAddr::V6(v6) => v6.is_multicast(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn private_own_and_special_addresses_are_refused() {
        let own = [ip("192.0.2.2"), ip("127.0.0.1")];
        for bad in [
            "127.0.0.1",
            "127.1.2.3",
            "10.0.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "::1",
            "fd00::2",
            "fe80::1",
            "::ffff:127.0.0.1",
            // This machine's own non-private address.
            "192.0.2.2",
        ] {
            assert!(!allows(ip(bad), false, &[], &own), "{bad}");
        }
        for good in ["93.184.216.34", "2606:2800:220:1::1", "192.0.2.3"] {
            assert!(allows(ip(good), false, &[], &own), "{good}");
        }
        // Allowed networks and allow-everything.
        let lan: Vec<IpNet> = vec!["192.168.1.0/24".parse().unwrap()];
        assert!(allows(ip("192.168.1.50"), false, &lan, &own));
        assert!(!allows(ip("192.168.2.50"), false, &lan, &own));
        assert!(allows(ip("127.0.0.1"), true, &[], &own));
    }

    #[tokio::test]
    async fn names_are_resolved_and_every_address_checked() {
        let policy = MediaPolicy::new(false, Vec::new());
        // "localhost" resolves to loopback everywhere.
        assert!(matches!(
            policy.resolve("localhost", 80).await,
            Err(Refused::Private { .. })
        ));
        let refused = policy.resolve("127.0.0.1", 80).await.unwrap_err();
        assert_eq!(
            refused.to_string(),
            "127.0.0.1 is a private or local address"
        );
        let refused = policy.resolve("localhost", 80).await.unwrap_err();
        assert!(
            refused
                .to_string()
                .starts_with("localhost resolves to a private or local address (")
        );
        assert!(matches!(
            policy.resolve("no-such-host.invalid", 80).await,
            Err(Refused::Unresolved { .. })
        ));
        let allowed = MediaPolicy::new(false, vec!["127.0.0.0/8".parse().unwrap()]);
        assert_eq!(
            allowed.resolve("127.0.0.1", 8080).await.unwrap(),
            vec!["127.0.0.1:8080".parse().unwrap()]
        );
    }
}
