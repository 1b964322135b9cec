//! The WebSocket handshake (RFC 6455, HTTP/1.1), handing over the client's TCP socket itself.
//!
//! axum's `WebSocketUpgrade` hides the stream behind its own type (and hyper's behind a boxed
//! one). We need the socket: a room writes its events straight into the sockets of its viewers
//! (see `ws::out`), and tungstenite only reads. The handshake itself is small: check the request
//! headers, answer 101 with the accept key, and take the upgraded connection back from hyper as
//! the socket it was made of.

use super::listen::{Guarded, Place};
use crate::error::ApiError;
use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::header::{
    CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpStream;

/// The client's socket once upgraded.
pub(crate) struct Socket {
    pub(crate) stream: TcpStream,
    /// What the server read past the upgrade request (the client's first frames, if it was quick).
    pub(crate) read: Bytes,
    /// The connection's place in the counts: kept as long as the socket.
    pub(crate) place: Place,
    /// How long a write may stall before the client counts as gone.
    pub(crate) write_stall: Duration,
}

/// A request that asks to become a WebSocket.
pub struct WsUpgrade {
    key: HeaderValue,
    on_upgrade: OnUpgrade,
}

fn header_has_token(headers: &HeaderMap, name: axum::http::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

impl<S: Send + Sync> FromRequestParts<S> for WsUpgrade {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let bad = |why: &str| ApiError::BadRequest(format!("expected a WebSocket upgrade: {why}"));
        if parts.method != Method::GET {
            return Err(bad("the method must be GET"));
        }
        if !header_has_token(&parts.headers, CONNECTION, "upgrade") {
            return Err(bad("Connection: upgrade is missing"));
        }
        if !header_has_token(&parts.headers, UPGRADE, "websocket") {
            return Err(bad("Upgrade: websocket is missing"));
        }
        if parts
            .headers
            .get(SEC_WEBSOCKET_VERSION)
            .map(HeaderValue::as_bytes)
            != Some(b"13")
        {
            return Err(bad("Sec-WebSocket-Version must be 13"));
        }
        let key = parts
            .headers
            .get(SEC_WEBSOCKET_KEY)
            .cloned()
            .ok_or_else(|| bad("Sec-WebSocket-Key is missing"))?;
        let on_upgrade = parts
            .extensions
            .remove::<OnUpgrade>()
            .ok_or_else(|| bad("this connection cannot be upgraded"))?;
        Ok(WsUpgrade { key, on_upgrade })
    }
}

impl WsUpgrade {
    /// Answers 101 and runs `serve` on the socket once the upgrade completes (in a new task, as
    /// the response must be sent first).
    pub(crate) fn respond<F, Fut>(self, serve: F) -> Response
    where
        F: FnOnce(Socket) -> Fut + Send + 'static,
        Fut: Future<Output: Send + 'static> + Send + 'static,
    {
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => match upgraded.downcast::<TokioIo<Guarded>>() {
                    Ok(parts) => {
                        let (stream, place, write_stall) = parts.io.into_inner().into_parts();
                        let socket = Socket {
                            stream,
                            read: parts.read_buf,
                            place,
                            write_stall,
                        };
                        // A task of its own rather than awaited here: this block's captures
                        // (the upgrade, `serve` and what it holds) would otherwise stay
                        // allocated beside the connection for its whole life.
                        tokio::spawn(serve(socket));
                    }
                    Err(_) => {
                        tracing::error!(
                            "a WebSocket upgrade on a connection not accepted by `listen::serve`"
                        );
                    }
                },
                Err(err) => tracing::debug!(error = %err, "WebSocket upgrade failed"),
            }
        });
        let accept = tungstenite::handshake::derive_accept_key(self.key.as_bytes());
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(accept) = HeaderValue::from_str(&accept) {
            headers.insert(SEC_WEBSOCKET_ACCEPT, accept);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_matches_the_rfc_example() {
        // RFC 6455, section 1.3.
        assert_eq!(
            tungstenite::handshake::derive_accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn connection_header_tokens() {
        let mut h = HeaderMap::new();
        h.insert(CONNECTION, HeaderValue::from_static("keep-alive, Upgrade"));
        assert!(header_has_token(&h, CONNECTION, "upgrade"));
        assert!(!header_has_token(&h, CONNECTION, "close"));
    }
}
