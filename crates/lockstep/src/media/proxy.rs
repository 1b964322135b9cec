//! The media proxy: every connection ffprobe makes to read a media URL goes through it, and it
//! applies [`super::policy`] to each one: the first URL, every redirect ffprobe follows, every
//! HLS playlist and segment. Checking the URL before starting ffprobe cannot do that, since
//! ffprobe opens more connections than the one it was given (an outside test read a file on
//! 127.0.0.1 through a redirect and through an HLS playlist on an allowed host).
//!
//! It is a small HTTP forward proxy on 127.0.0.1, written here because it must decide per
//! connection with our own rule and resolver, and connect to the address it checked (so a name
//! cannot resolve to a public address for the check and a private one for the fetch); general
//! proxies decide by host name lists. It speaks what ffmpeg sends through `-http_proxy`:
//! `CONNECT host:port` for https (then it only relays bytes) and absolute-form requests
//! (`GET http://host/path`) for http. Each probe gets its own credentials (a random token in
//! `Proxy-Authorization`), so only our probes can use it and a refusal is told to the probe that
//! caused it.

use super::policy::MediaPolicy;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Longest request head ffmpeg sends to a proxy (its headers are short).
const MAX_HEAD: usize = 16 * 1024;
/// How long a client may take to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long connecting to one upstream address may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest a relayed connection lives (a probe's own timeout is shorter).
const RELAY_LIFETIME: Duration = Duration::from_secs(120);
/// Probes relayed at once; more wait (the server runs at most a few lookups at a time anyway).
const MAX_CONNECTIONS: usize = 64;

/// What one probe's connections were refused, for its error message.
#[derive(Debug, Default)]
struct Probe {
    refused: Mutex<Option<String>>,
}

type Probes = Arc<Mutex<HashMap<String, Arc<Probe>>>>;

/// The running proxy. Cheap to clone.
#[derive(Clone, Debug)]
pub struct MediaProxy {
    address: SocketAddr,
    probes: Probes,
}

/// One probe's use of the proxy: its `-http_proxy` URL, valid while this lives.
pub struct ProxySession {
    token: String,
    url: String,
    probe: Arc<Probe>,
    probes: Probes,
}

impl ProxySession {
    /// The URL to give ffmpeg as `-http_proxy`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Why the proxy refused one of this probe's connections, if it did.
    pub fn refused(&self) -> Option<String> {
        self.probe
            .refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Drop for ProxySession {
    fn drop(&mut self) {
        self.probes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.token);
    }
}

impl MediaProxy {
    /// Listens on a free port of 127.0.0.1 until `shutdown`.
    pub async fn start(
        policy: Arc<MediaPolicy>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<MediaProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let probes: Probes = Arc::default();
        let proxy = MediaProxy {
            address,
            probes: probes.clone(),
        };
        let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = shutdown.cancelled() => return,
                    accepted = listener.accept() => accepted,
                };
                let Ok((client, _)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    return;
                };
                let policy = policy.clone();
                let probes = probes.clone();
                let shutdown = shutdown.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        () = relay(client, &policy, &probes) => {}
                        () = shutdown.cancelled() => {}
                    }
                    drop(permit);
                });
            }
        });
        Ok(proxy)
    }

    /// Credentials for one probe.
    pub fn session(&self) -> ProxySession {
        let mut bytes = [0u8; 18];
        rand::rng().fill_bytes(&mut bytes);
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let probe = Arc::new(Probe::default());
        self.probes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(token.clone(), probe.clone());
        ProxySession {
            url: format!("http://probe:{token}@{}", self.address),
            token,
            probe,
            probes: self.probes.clone(),
        }
    }
}

/// Where a request wants to go.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    /// `CONNECT host:port`: relay bytes (TLS) once connected.
    Tunnel { host: String, port: u16 },
    /// An absolute-form http request: forward `head` (rewritten to origin-form), then relay.
    Forward {
        host: String,
        port: u16,
        head: Vec<u8>,
    },
}

/// What a request head says, or the status to answer it with.
#[derive(Debug, PartialEq, Eq)]
struct Parsed {
    target: Target,
    /// The token of `Proxy-Authorization: Basic base64(user:token)`.
    token: Option<String>,
}

/// Parses a proxy request head (through the blank line).
fn parse_head(head: &[u8]) -> Result<Parsed, u16> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return Err(400),
    }
    let method = request.method.ok_or(400u16)?;
    let path = request.path.ok_or(400u16)?;
    let token = request
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("proxy-authorization"))
        .and_then(|h| std::str::from_utf8(h.value).ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b64| STANDARD.decode(b64.trim()).ok())
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|pair| pair.split_once(':').map(|(_, token)| token.to_owned()));
    if method.eq_ignore_ascii_case("CONNECT") {
        let (host, port) = path.rsplit_once(':').ok_or(400u16)?;
        let port: u16 = port.parse().map_err(|_| 400u16)?;
        return Ok(Parsed {
            target: Target::Tunnel {
                host: host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned(),
                port,
            },
            token,
        });
    }
    let url = url::Url::parse(path).map_err(|_| 400u16)?;
    if url.scheme() != "http" {
        return Err(400);
    }
    let host = url.host_str().ok_or(400u16)?.to_owned();
    let port = url.port_or_known_default().ok_or(400u16)?;
    let mut origin_form = url.path().to_owned();
    if let Some(query) = url.query() {
        origin_form.push('?');
        origin_form.push_str(query);
    }
    let mut out = format!("{method} {origin_form} HTTP/1.1\r\n").into_bytes();
    for h in request.headers.iter() {
        if h.name.eq_ignore_ascii_case("proxy-authorization")
            || h.name.eq_ignore_ascii_case("proxy-connection")
        {
            continue;
        }
        out.extend_from_slice(h.name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(h.value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok(Parsed {
        target: Target::Forward {
            host,
            port,
            head: out,
        },
        token,
    })
}

/// Reads a request head; returns it and whatever came after it.
async fn read_head(client: &mut TcpStream) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    let read = async {
        loop {
            let n = client.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let rest = buf.split_off(end + 4);
                return Some((std::mem::take(&mut buf), rest));
            }
            if buf.len() > MAX_HEAD {
                return None;
            }
        }
    };
    tokio::time::timeout(HEAD_TIMEOUT, read)
        .await
        .ok()
        .flatten()
}

async fn answer(client: &mut TcpStream, status: u16, reason: &str, extra: &str) {
    let text = format!(
        "HTTP/1.1 {status} {reason}\r\n{extra}content-length: 0\r\nconnection: close\r\n\r\n"
    );
    let _ = client.write_all(text.as_bytes()).await;
    let _ = client.shutdown().await;
}

/// Serves one client connection of the proxy.
async fn relay(mut client: TcpStream, policy: &MediaPolicy, probes: &Probes) {
    let Some((head, rest)) = read_head(&mut client).await else {
        return;
    };
    let parsed = match parse_head(&head) {
        Ok(parsed) => parsed,
        Err(status) => return answer(&mut client, status, "Bad Request", "").await,
    };
    let probe = parsed.token.as_ref().and_then(|t| {
        probes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(t)
            .cloned()
    });
    let Some(probe) = probe else {
        // ffmpeg sends credentials only once challenged.
        return answer(
            &mut client,
            407,
            "Proxy Authentication Required",
            "proxy-authenticate: Basic realm=\"lockstep media\"\r\n",
        )
        .await;
    };
    let (host, port) = match &parsed.target {
        Target::Tunnel { host, port } | Target::Forward { host, port, .. } => (host, *port),
    };
    let addresses = match policy.resolve(host, port).await {
        Ok(addresses) => addresses,
        Err(refused) => {
            tracing::info!(%refused, "media proxy refused a connection");
            *probe
                .refused
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(refused.to_string());
            return answer(&mut client, 403, "Forbidden", "").await;
        }
    };
    let mut upstream = None;
    for address in addresses {
        if let Ok(Ok(stream)) =
            tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address)).await
        {
            upstream = Some(stream);
            break;
        }
    }
    let Some(mut upstream) = upstream else {
        return answer(&mut client, 502, "Bad Gateway", "").await;
    };
    let started = match parsed.target {
        Target::Tunnel { .. } => {
            client
                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .await
        }
        Target::Forward { head, .. } => upstream.write_all(&head).await,
    };
    if started.is_err() || upstream.write_all(&rest).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(
        RELAY_LIFETIME,
        tokio::io::copy_bidirectional(&mut client, &mut upstream),
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_are_parsed_into_targets() {
        let auth = STANDARD.encode("probe:tok");
        let connect = format!(
            "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nProxy-Authorization: Basic {auth}\r\n\r\n"
        );
        assert_eq!(
            parse_head(connect.as_bytes()).unwrap(),
            Parsed {
                target: Target::Tunnel {
                    host: "example.com".into(),
                    port: 443
                },
                token: Some("tok".into())
            }
        );
        let get = "GET http://cdn.example.com:8080/a/b.m3u8?x=1 HTTP/1.1\r\nHost: cdn.example.com:8080\r\nProxy-Connection: keep-alive\r\n\r\n";
        let Parsed {
            target: Target::Forward { host, port, head },
            token: None,
        } = parse_head(get.as_bytes()).unwrap()
        else {
            panic!("a forward")
        };
        assert_eq!((host.as_str(), port), ("cdn.example.com", 8080));
        assert_eq!(
            String::from_utf8(head).unwrap(),
            "GET /a/b.m3u8?x=1 HTTP/1.1\r\nHost: cdn.example.com:8080\r\n\r\n"
        );
        assert_eq!(
            parse_head(b"CONNECT [::1]:443 HTTP/1.1\r\n\r\n")
                .unwrap()
                .target,
            Target::Tunnel {
                host: "::1".into(),
                port: 443
            }
        );
        for bad in [
            &b"GET /relative HTTP/1.1\r\n\r\n"[..],
            b"GET file:///etc/passwd HTTP/1.1\r\n\r\n",
            b"CONNECT nohost HTTP/1.1\r\n\r\n",
            b"garbage\r\n\r\n",
        ] {
            assert_eq!(
                parse_head(bad),
                Err(400),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
