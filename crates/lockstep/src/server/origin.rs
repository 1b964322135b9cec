//! Same-origin checks against cross-site request forgery and cross-site WebSocket hijacking.
//!
//! Browsers send `Origin` with every WebSocket handshake and every non-GET `fetch`. A request
//! that changes something (any method but GET/HEAD/OPTIONS) or upgrades to a WebSocket must come
//! from the site itself: its Origin must match the configured public URL or, without one, the
//! Host the request was sent to. Requests without an Origin come from non-browser clients (curl,
//! the load generator) and cannot carry a victim's cookies cross-site, so they pass, unless
//! `Sec-Fetch-Site` says the browser considers them cross-site.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::header::{HOST, ORIGIN, UPGRADE};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use url::Url;

/// `scheme://host:port` of a URL, with the default port spelled out.
fn origin_of(url: &Url) -> Option<(String, String, u16)> {
    Some((
        url.scheme().to_owned(),
        url.host_str()?.to_ascii_lowercase(),
        url.port_or_known_default()?,
    ))
}

/// Whether the request comes from the site itself (or from no browser at all).
pub fn is_same_origin(headers: &HeaderMap, public_url: Option<&Url>) -> bool {
    let Some(origin) = headers.get(ORIGIN) else {
        let site = headers
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none");
        return matches!(site, "same-origin" | "none");
    };
    let Some(origin) = origin
        .to_str()
        .ok()
        .and_then(|o| Url::parse(o).ok())
        .and_then(|u| origin_of(&u))
    else {
        return false; // "null" or garbage
    };
    if let Some(public) = public_url {
        return origin_of(public).as_ref() == Some(&origin);
    }
    // Without a configured URL, compare with the Host the browser addressed.
    let Some(host) = headers.get(HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let Ok(addressed) = Url::parse(&format!("{}://{host}", origin.0)) else {
        return false;
    };
    origin_of(&addressed).as_ref() == Some(&origin)
}

/// Refuses state-changing and upgrade requests from other sites with 403 `cross_origin`.
pub async fn same_origin_middleware(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let upgrade = request.headers().contains_key(UPGRADE);
    if (!safe || upgrade) && !is_same_origin(request.headers(), state.config.public_url.as_ref()) {
        tracing::warn!(
            origin = ?request.headers().get(ORIGIN),
            path = %request.uri().path(),
            "refused a cross-origin request"
        );
        return ApiError::CrossOrigin.into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn origin_rules() {
        let same = headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080"),
        ]);
        assert!(is_same_origin(&same, None));
        let evil = headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "https://evil.example"),
        ]);
        assert!(!is_same_origin(&evil, None));
        let other_port = headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:9999"),
        ]);
        assert!(!is_same_origin(&other_port, None));
        let null = headers(&[("host", "a"), ("origin", "null")]);
        assert!(!is_same_origin(&null, None));
        // No Origin: not a browser, or a browser saying it is same-site navigation.
        assert!(is_same_origin(&headers(&[("host", "a")]), None));
        assert!(!is_same_origin(
            &headers(&[("sec-fetch-site", "cross-site")]),
            None
        ));
        // Default ports are implied.
        let https = headers(&[
            ("host", "watch.example"),
            ("origin", "https://watch.example"),
        ]);
        let public = Url::parse("https://watch.example/").unwrap();
        assert!(is_same_origin(&https, Some(&public)));
        // With a public URL configured, the Host header does not matter.
        let proxied = headers(&[
            ("host", "10.0.0.5:8080"),
            ("origin", "https://watch.example:443"),
        ]);
        assert!(is_same_origin(&proxied, Some(&public)));
        assert!(!is_same_origin(&same, Some(&public)));
    }
}
