//! Anonymous users and their sessions.
//!
//! A first request without a session cookie creates a user with a generated name and sets an
//! encrypted, authenticated (AES-GCM), HttpOnly, SameSite=Lax cookie holding a random session
//! token; the store keeps only the token's SHA-256. A token older than the rotation interval is
//! replaced on its next use. The replaced token stays valid for a grace window, so two tabs that
//! sent requests with the old token at the same moment are both served (the browser keeps the
//! newest cookie for both). A cookie that fails to decrypt, an unknown token, an expired one, or a
//! replaced one used after its grace gives the visitor a fresh anonymous user and a log line,
//! never an error page.
//!
//! # Layout
//! - [`key`]: the cookie key, from configuration or generated once and kept in the data dir.
//! - [`names`]: generated display names.
//! - [`password`]: room passwords (argon2id).
//! - this module: the middleware and the [`CurrentUser`] extractor.

pub mod key;
pub mod names;
pub mod password;

use crate::error::ApiError;
use crate::server::client::ClientAddr;
use crate::state::AppState;
use crate::store::users::User;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::HeaderMap;
use axum::http::header::{SET_COOKIE, UPGRADE};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, Key, PrivateCookieJar, SameSite};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lockstep_core::ids::UserId;
use lockstep_core::time::ServerTime;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::time::Duration;
use uuid::Uuid;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "lockstep_session";

/// The user a request is made by; every route behind the session middleware has one.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub User);

impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<CurrentUser>()
            .cloned()
            .ok_or_else(|| {
                ApiError::Internal(anyhow::anyhow!("route is outside the session layer"))
            })
    }
}

/// Who the request is from, and the token to set when it changed.
struct Resolved {
    user: User,
    new_token: Option<String>,
}

fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn hash_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a request's session cookie holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionCookie {
    /// No session cookie.
    Absent,
    /// A cookie by that name that does not decrypt with our key (tampered, or another key's).
    Undecryptable,
    /// The session token it carries.
    Token(String),
}

/// Reads the session cookie from a request's `Cookie` headers. Any bytes at all may arrive
/// here; this is one of the fuzzed entry points (`fuzz/fuzz_targets/session_cookie.rs`).
pub fn read_session_cookie(headers: &HeaderMap, key: &Key) -> SessionCookie {
    let jar = PrivateCookieJar::from_headers(headers, key.clone());
    if let Some(cookie) = jar.get(SESSION_COOKIE) {
        return SessionCookie::Token(cookie.value().to_owned());
    }
    if CookieJar::from_headers(headers)
        .get(SESSION_COOKIE)
        .is_some()
    {
        SessionCookie::Undecryptable
    } else {
        SessionCookie::Absent
    }
}

/// Resolves the session middleware's user: from the cookie, or a new anonymous one.
pub async fn session_middleware(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let cookie = read_session_cookie(request.headers(), &state.cookie_key);
    // A Set-Cookie on a WebSocket handshake is not reliably honoured, so never rotate there.
    let may_rotate = !request.headers().contains_key(UPGRADE);
    let client = request.extensions().get::<ClientAddr>().copied();
    let resolved = match resolve(&state, cookie, may_rotate, client).await {
        Ok(resolved) => resolved,
        Err(err) => return err.into_response(),
    };
    request.extensions_mut().insert(CurrentUser(resolved.user));
    let mut response = next.run(request).await;
    if let Some(token) = resolved.new_token {
        let secure = state
            .config
            .public_url
            .as_ref()
            .is_some_and(|u| u.scheme() == "https");
        let max_age = Duration::from_secs(state.config.session_ttl_secs);
        let cookie = Cookie::build((SESSION_COOKIE, token))
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(secure)
            .path("/")
            .max_age(time::Duration::seconds(
                i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX),
            ));
        let jar = PrivateCookieJar::new(state.cookie_key.clone()).add(cookie);
        let cookie_headers = jar.into_response();
        for value in cookie_headers.headers().get_all(SET_COOKIE) {
            response.headers_mut().append(SET_COOKIE, value.clone());
        }
    }
    response
}

async fn resolve(
    state: &AppState,
    cookie: SessionCookie,
    may_rotate: bool,
    client: Option<ClientAddr>,
) -> Result<Resolved, ApiError> {
    let now = state.clock.now();
    let config = &state.config;
    let ttl = Duration::from_secs(config.session_ttl_secs);
    let token = match cookie {
        SessionCookie::Token(token) => token,
        SessionCookie::Undecryptable => {
            tracing::warn!(
                "session cookie failed to decrypt (tampered, or made with another key); starting a new anonymous user"
            );
            return new_anonymous(state, now, ttl, client).await;
        }
        SessionCookie::Absent => return new_anonymous(state, now, ttl, client).await,
    };
    let hash = hash_token(&token);
    let Some(session) = state.store.session(&hash).await? else {
        tracing::warn!("unknown session token; starting a new anonymous user");
        return new_anonymous(state, now, ttl, client).await;
    };
    if session.expires <= now {
        tracing::info!(user = %session.user.id, "session expired; starting a new anonymous user");
        return new_anonymous(state, now, ttl, client).await;
    }
    let grace = Duration::from_secs(config.session_grace_secs);
    match session.replaced {
        Some(replaced) if now - replaced <= grace => Ok(Resolved {
            user: session.user,
            new_token: None,
        }),
        Some(_) => {
            tracing::warn!(user = %session.user.id, "replaced session token used after its grace; starting a new anonymous user");
            new_anonymous(state, now, ttl, client).await
        }
        None if may_rotate
            && now - session.created >= Duration::from_secs(config.session_rotate_secs) =>
        {
            let token = new_token();
            let rotated = state
                .store
                .rotate_session(
                    &hash,
                    &hash_token(&token),
                    &session.user,
                    now,
                    now + ttl,
                    client.map(|c| c.key().as_text()).as_deref(),
                )
                .await?;
            Ok(Resolved {
                user: session.user,
                new_token: rotated.then_some(token),
            })
        }
        None => Ok(Resolved {
            user: session.user,
            new_token: None,
        }),
    }
}

/// A new anonymous user and session: a stored row and a 30-day token, so new ones are
/// rate-limited per client address (a cookieless request is all it takes).
async fn new_anonymous(
    state: &AppState,
    now: ServerTime,
    ttl: Duration,
    client: Option<ClientAddr>,
) -> Result<Resolved, ApiError> {
    if let Some(client) = client {
        state
            .throttles
            .new_users
            .check(&client.key())
            .map_err(|wait| ApiError::rate_limited("too_many_new_users", "new visitors", wait))?;
    }
    let user = User {
        id: UserId(Uuid::now_v7()),
        name: names::random_name(&mut rand::rng()),
    };
    state.store.create_user(&user, now).await?;
    let token = new_token();
    state
        .store
        .create_session(
            &hash_token(&token),
            &user,
            now,
            now + ttl,
            client.map(|c| c.key().as_text()).as_deref(),
        )
        .await?;
    tracing::debug!(user = %user.id, "new anonymous user");
    Ok(Resolved {
        user,
        new_token: Some(token),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_hashed() {
        let a = new_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, new_token());
        assert_eq!(hash_token("x").len(), 64);
        assert_ne!(hash_token(&a), a);
    }

    #[test]
    fn session_cookies_are_read_only_when_they_decrypt() {
        let key = Key::generate();
        let mut h = HeaderMap::new();
        assert_eq!(read_session_cookie(&h, &key), SessionCookie::Absent);
        h.insert(
            "cookie",
            "lockstep_session=forged; other=1".parse().unwrap(),
        );
        assert_eq!(read_session_cookie(&h, &key), SessionCookie::Undecryptable);
        let jar = PrivateCookieJar::new(key.clone()).add(Cookie::new(SESSION_COOKIE, "tok"));
        let set = jar.into_response();
        let value = set.headers()[SET_COOKIE].to_str().unwrap();
        let pair = value.split(';').next().unwrap();
        h.insert("cookie", pair.parse().unwrap());
        assert_eq!(
            read_session_cookie(&h, &key),
            SessionCookie::Token("tok".into())
        );
        assert_eq!(
            read_session_cookie(&h, &Key::generate()),
            SessionCookie::Undecryptable
        );
    }
}
