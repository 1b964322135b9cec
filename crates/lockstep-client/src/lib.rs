//! A small typed client of Lockstep: the HTTP API with a cookie jar, and a WebSocket viewer that
//! speaks protocol v1 with the frame types of `lockstep-core`. The integration tests and the load
//! generator both use it, so they exercise exactly the protocol the server implements.

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use lockstep_core::ids::RoomId;
use lockstep_core::protocol::{ClientFrame, CommandId, ServerFrame, Welcome};
use reqwest::cookie::{CookieStore, Jar};
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use url::Url;

pub use reqwest::StatusCode;

/// How long the client waits for any single expected frame.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(10);

/// How long to wait for the frame that ends a link's lookup (`item_updated`, or the item gone as
/// unavailable): the server's ffprobe and the poster frame it waits for have 10 s each by
/// default, and the range check 8 s, on a machine that may be busy.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(40);

/// The HTTP API, as one browser (one cookie jar).
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    jar: Arc<Jar>,
    base: Url,
    /// Headers sent with every request and WebSocket handshake (as a proxy in front would add).
    extra: Vec<(String, String)>,
}

/// An HTTP answer: status, headers and JSON body (`Null` when empty).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    /// The `error.code` of an error body.
    pub fn error_code(&self) -> Option<&str> {
        self.body["error"]["code"].as_str()
    }
}

impl Api {
    /// A fresh "browser" for the server at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str) -> anyhow::Result<Api> {
        // reqwest may be built without a default TLS provider (feature unification with the
        // server); installing ring's is idempotent in effect.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let base = Url::parse(base).context("base URL")?;
        let jar = Arc::new(Jar::default());
        let http = Self::http(&jar, &[])?;
        Ok(Api {
            http,
            jar,
            base,
            extra: Vec::new(),
        })
    }

    fn http(jar: &Arc<Jar>, extra: &[(String, String)]) -> anyhow::Result<reqwest::Client> {
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in extra {
            headers.insert(
                reqwest::header::HeaderName::try_from(name.as_str())?,
                value.parse()?,
            );
        }
        Ok(reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .default_headers(headers)
            .timeout(Duration::from_secs(30))
            .build()?)
    }

    /// The same browser, sending `name: value` with every request and handshake (a proxy's
    /// `X-Forwarded-For`, say).
    pub fn with_header(&self, name: &str, value: &str) -> Api {
        let mut extra = self.extra.clone();
        extra.push((name.to_owned(), value.to_owned()));
        Api {
            http: Self::http(&self.jar, &extra).expect("a valid header"),
            extra,
            ..self.clone()
        }
    }

    /// The same browser (same cookies) talking to a server at another address, as after a
    /// restart on a new port. Cookies are scoped to the host, not the port.
    pub fn rebased(&self, base: &str) -> Api {
        Api {
            base: Url::parse(base).expect("a valid base URL"),
            ..self.clone()
        }
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    /// The `Origin` a page of this site would send.
    pub fn origin(&self) -> String {
        self.base.origin().ascii_serialization()
    }

    /// The `Cookie` header this browser would send to the site.
    pub fn cookie_header(&self) -> Option<String> {
        self.jar
            .cookies(&self.base)
            .and_then(|v| v.to_str().ok().map(str::to_owned))
    }

    fn url(&self, path: &str) -> anyhow::Result<Url> {
        self.base.join(path).context("path")
    }

    async fn answer(response: reqwest::Response) -> anyhow::Result<Answer> {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await?;
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).with_context(|| format!("{status}: not JSON: {text}"))?
        };
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    /// A GET whose body is text (like `/metrics`).
    pub async fn get_text(&self, path: &str) -> String {
        match self
            .http
            .get(self.url(path).expect("a valid path"))
            .send()
            .await
        {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(e) => format!("request failed: {e}"),
        }
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Answer> {
        Self::answer(self.http.get(self.url(path)?).send().await?).await
    }

    /// A request with a JSON body, sent from the site's own origin as a page would.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Answer> {
        let mut req = self
            .http
            .request(method, self.url(path)?)
            .header("origin", self.origin());
        if let Some(body) = body {
            req = req.json(body);
        }
        Self::answer(req.send().await?).await
    }

    /// A request of this browser (its cookies, its site's Origin) to build further by hand.
    pub fn raw(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path).expect("a valid path"))
            .header("origin", self.origin())
    }

    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Answer> {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> anyhow::Result<Answer> {
        self.send(reqwest::Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> anyhow::Result<Answer> {
        self.send(reqwest::Method::DELETE, path, None).await
    }

    /// Creates a room and returns its id.
    pub async fn create_room(&self, body: &Value) -> anyhow::Result<RoomId> {
        let a = self.post("/api/rooms", body).await?;
        if a.status != StatusCode::CREATED {
            bail!("creating a room: {} {}", a.status, a.body);
        }
        a.body["id"]
            .as_str()
            .context("room id")?
            .parse()
            .context("room id")
    }

    /// The WebSocket URL of a room.
    pub fn ws_url(&self, room: RoomId) -> String {
        let mut url = self.base.clone();
        let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
        // Both are valid schemes for a URL with a host.
        let _ = url.set_scheme(scheme);
        url.set_path(&format!("/api/rooms/{room}/ws"));
        url.to_string()
    }

    /// Opens a viewer on `room` with this browser's cookie and origin (not yet said hello).
    pub async fn viewer(&self, room: RoomId) -> anyhow::Result<Viewer> {
        if self.cookie_header().is_none() {
            // The first request of a browser creates its user.
            self.get("/api/me").await?;
        }
        let mut headers = self.extra.clone();
        if let Some(cookie) = self.cookie_header() {
            headers.push(("cookie".into(), cookie));
        }
        headers.push(("origin".into(), self.origin()));
        Viewer::connect_with(&self.ws_url(room), headers).await
    }

    /// A viewer that has joined: the welcome is returned alongside.
    pub async fn join(&self, room: RoomId) -> anyhow::Result<(Viewer, Welcome)> {
        let mut v = self.viewer(room).await?;
        let welcome = v.hello().await?;
        Ok((v, welcome))
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How a server closed the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    pub code: u16,
    pub reason: String,
}

/// A WebSocket viewer of one room.
pub struct Viewer {
    socket: Socket,
    url: String,
    /// The handshake's headers (cookie, origin...), sent again on resume.
    headers: Vec<(String, String)>,
    next_id: CommandId,
    /// Frames received while waiting for something else.
    backlog: VecDeque<ServerFrame>,
    /// The last event sequence number seen, and the epoch it belongs to, for resuming.
    pub last_seq: u64,
    pub epoch: Option<String>,
}

impl Viewer {
    /// Opens the WebSocket (the handshake may be refused: the error says how).
    pub async fn connect(
        url: &str,
        cookie: Option<&str>,
        origin: Option<&str>,
    ) -> anyhow::Result<Viewer> {
        let mut headers = Vec::new();
        if let Some(cookie) = cookie {
            headers.push(("cookie".to_owned(), cookie.to_owned()));
        }
        if let Some(origin) = origin {
            headers.push(("origin".to_owned(), origin.to_owned()));
        }
        Self::connect_with(url, headers).await
    }

    /// Opens the WebSocket with these handshake headers.
    pub async fn connect_with(url: &str, headers: Vec<(String, String)>) -> anyhow::Result<Viewer> {
        let socket = Self::open(url, &headers).await?;
        Ok(Viewer {
            socket,
            url: url.to_owned(),
            headers,
            next_id: 1,
            backlog: VecDeque::new(),
            last_seq: 0,
            epoch: None,
        })
    }

    async fn open(url: &str, headers: &[(String, String)]) -> anyhow::Result<Socket> {
        let mut request = url.into_client_request()?;
        for (name, value) in headers {
            request.headers_mut().insert(
                tungstenite::http::HeaderName::try_from(name.as_str())?,
                value.parse()?,
            );
        }
        let (socket, _) = tokio_tungstenite::connect_async(request).await?;
        Ok(socket)
    }

    /// Sends `hello` without resuming and returns the welcome.
    pub async fn hello(&mut self) -> anyhow::Result<Welcome> {
        self.send(&ClientFrame::Hello {
            v: 1,
            last_seq: None,
            epoch: None,
        })
        .await?;
        match self.recv().await? {
            ServerFrame::Welcome(w) => Ok(*w),
            other => bail!("expected welcome, got {other:?}"),
        }
    }

    /// Drops the connection without a close frame, as a network failure would, opens a new one
    /// with the same cookie, and sends `hello` with the last sequence number seen: returns the
    /// first frame (`resumed`, or `welcome` when the server could not resume).
    pub async fn resume(&mut self) -> anyhow::Result<ServerFrame> {
        let fresh = Self::open(&self.url, &self.headers).await?;
        drop(std::mem::replace(&mut self.socket, fresh));
        self.backlog.clear();
        self.send(&ClientFrame::Hello {
            v: 1,
            last_seq: Some(self.last_seq),
            epoch: self.epoch.clone(),
        })
        .await?;
        self.recv().await
    }

    pub async fn send(&mut self, frame: &ClientFrame) -> anyhow::Result<()> {
        self.send_raw(&serde_json::to_string(frame)?).await
    }

    pub async fn send_raw(&mut self, text: &str) -> anyhow::Result<()> {
        self.socket.send(Message::text(text)).await?;
        Ok(())
    }

    /// Sends a binary frame (the protocol has none; for testing that the server refuses them).
    pub async fn send_binary(&mut self, bytes: Vec<u8>) -> anyhow::Result<()> {
        self.socket.send(Message::binary(bytes)).await?;
        Ok(())
    }

    /// Sends a text frame whose payload is any bytes, valid UTF-8 or not (for testing that the
    /// server refuses malformed text as RFC 6455 says: close code 1007).
    pub async fn send_text_bytes(&mut self, bytes: Vec<u8>) -> anyhow::Result<()> {
        use tungstenite::protocol::frame::Frame;
        use tungstenite::protocol::frame::coding::{Data, OpCode};
        let frame = Frame::message(bytes, OpCode::Data(Data::Text), true);
        self.socket.send(Message::Frame(frame)).await?;
        Ok(())
    }

    /// The next frame from the server (the backlog first), keeping `last_seq` and `epoch` current.
    pub async fn recv(&mut self) -> anyhow::Result<ServerFrame> {
        if let Some(frame) = self.backlog.pop_front() {
            return Ok(frame);
        }
        self.recv_socket(FRAME_TIMEOUT).await
    }

    async fn recv_socket(&mut self, timeout: Duration) -> anyhow::Result<ServerFrame> {
        // One deadline for the whole wait: the server's WebSocket pings are skipped here, and a
        // timeout started afresh after each never ran out while they came.
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .context("timed out waiting for a frame")?;
            match msg {
                Some(Ok(Message::Text(text))) => {
                    let frame: ServerFrame = serde_json::from_str(&text)
                        .with_context(|| format!("unexpected frame {text}"))?;
                    self.observe(&frame);
                    return Ok(frame);
                }
                Some(Ok(Message::Close(close))) => {
                    let closed = close.map_or(
                        Closed {
                            code: 1005,
                            reason: String::new(),
                        },
                        |c| Closed {
                            code: u16::from(c.code),
                            reason: c.reason.to_string(),
                        },
                    );
                    return Err(anyhow::Error::new(ClosedError(closed)));
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.into()),
                None => {
                    return Err(anyhow::Error::new(ClosedError(Closed {
                        code: 1006,
                        reason: String::new(),
                    })));
                }
            }
        }
    }

    fn observe(&mut self, frame: &ServerFrame) {
        match frame {
            ServerFrame::Welcome(w) => {
                self.last_seq = w.seq;
                self.epoch = Some(w.epoch.clone());
            }
            ServerFrame::Resumed { epoch, .. } => self.epoch = Some(epoch.clone()),
            other => {
                if let Some(seq) = other.seq() {
                    self.last_seq = seq;
                }
            }
        }
    }

    /// Waits for a frame matching `pred`; frames before it are kept for later `recv`s.
    pub async fn wait_for(
        &mut self,
        pred: impl FnMut(&ServerFrame) -> bool,
    ) -> anyhow::Result<ServerFrame> {
        self.wait_for_within(FRAME_TIMEOUT, pred).await
    }

    /// [`Self::wait_for`], for at most `timeout` rather than [`FRAME_TIMEOUT`]: for a frame that
    /// comes after work of the server's own with a timeout longer than that (a link's lookup).
    pub async fn wait_for_within(
        &mut self,
        timeout: Duration,
        mut pred: impl FnMut(&ServerFrame) -> bool,
    ) -> anyhow::Result<ServerFrame> {
        if let Some(i) = self.backlog.iter().position(&mut pred) {
            return Ok(self.backlog.remove(i).expect("index is in range"));
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let frame = self.recv_socket(left).await?;
            if pred(&frame) {
                return Ok(frame);
            }
            self.backlog.push_back(frame);
        }
    }

    /// Sends a command built with a fresh id and waits for its answer: `Ok(ack)` (or the
    /// `members_page` that answers `members`) or `Err(error frame)`.
    pub async fn command(
        &mut self,
        make: impl FnOnce(CommandId) -> ClientFrame,
    ) -> anyhow::Result<Result<ServerFrame, ServerFrame>> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&make(id)).await?;
        let answer = self
            .wait_for(|f| match f {
                ServerFrame::Ack { id: a, .. } | ServerFrame::MembersPage { id: a, .. } => *a == id,
                ServerFrame::Error { id: Some(e), .. } => *e == id,
                _ => false,
            })
            .await?;
        Ok(match answer {
            ServerFrame::Ack { .. } | ServerFrame::MembersPage { .. } => Ok(answer),
            other => Err(other),
        })
    }

    /// Like [`Viewer::command`], failing unless the server acknowledged.
    pub async fn ok(
        &mut self,
        make: impl FnOnce(CommandId) -> ClientFrame,
    ) -> anyhow::Result<ServerFrame> {
        match self.command(make).await? {
            Ok(ack) => Ok(ack),
            Err(err) => bail!("command refused: {err:?}"),
        }
    }

    /// Like [`Viewer::command`], returning the error code, failing if it was acknowledged.
    pub async fn refused(
        &mut self,
        make: impl FnOnce(CommandId) -> ClientFrame,
    ) -> anyhow::Result<String> {
        match self.command(make).await? {
            Ok(ack) => bail!("expected a refusal, got {ack:?}"),
            Err(ServerFrame::Error { code, .. }) => Ok(code),
            Err(other) => bail!("unexpected {other:?}"),
        }
    }

    /// Waits until the server closes the connection; returns how.
    pub async fn closed(&mut self) -> anyhow::Result<Closed> {
        loop {
            match self.recv_socket(FRAME_TIMEOUT).await {
                Ok(frame) => self.backlog.push_back(frame),
                Err(err) => {
                    return match err.downcast::<ClosedError>() {
                        Ok(ClosedError(c)) => Ok(c),
                        Err(err) => match err.downcast_ref::<tungstenite::Error>() {
                            Some(
                                tungstenite::Error::ConnectionClosed
                                | tungstenite::Error::Protocol(_),
                            ) => Ok(Closed {
                                code: 1006,
                                reason: String::new(),
                            }),
                            _ => Err(err),
                        },
                    };
                }
            }
        }
    }

    /// Frames received and not yet consumed.
    pub fn backlog(&self) -> &VecDeque<ServerFrame> {
        &self.backlog
    }

    /// Takes every frame already received (without waiting).
    pub fn drain_backlog(&mut self) -> Vec<ServerFrame> {
        self.backlog.drain(..).collect()
    }

    /// Closes politely.
    pub async fn close(mut self) {
        let _ = self
            .socket
            .close(Some(tungstenite::protocol::CloseFrame {
                code: CloseCode::Normal,
                reason: "bye".into(),
            }))
            .await;
    }
}

/// The server closed the connection.
#[derive(Debug)]
pub struct ClosedError(pub Closed);

impl std::fmt::Display for ClosedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "connection closed with {} {}",
            self.0.code, self.0.reason
        )
    }
}

impl std::error::Error for ClosedError {}
