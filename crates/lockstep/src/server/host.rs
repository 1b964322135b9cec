//! Which host names this server answers for: a defence against DNS rebinding.
//!
//! A page on `evil.example` can make its own name resolve to 127.0.0.1 (or to this server's
//! private address) and then send requests that carry `Host: evil.example` and an `Origin` of
//! the same name, which the same-origin check alone would accept when no public URL is set.
//! So every request's `Host` must be one we were told about: the public URL's host, the names in
//! `--allowed-hosts` (`*.example.com` allows subdomains), `localhost`, or an IP address literal
//! (an address cannot be rebound). Anything else is refused with 421 before it reaches a route.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::header::HOST;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::IpAddr;
use url::Url;

/// The host name of a `Host` header value, lower-case, without port or IPv6 brackets.
fn host_name(header: &str) -> Option<String> {
    let header = header.trim();
    if let Some(rest) = header.strip_prefix('[') {
        // [v6]:port
        return rest.split_once(']').map(|(ip, _)| ip.to_ascii_lowercase());
    }
    let name = match header.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => header,
    };
    (!name.is_empty()).then(|| name.trim_end_matches('.').to_ascii_lowercase())
}

/// Whether a request addressed to `header` (its `Host`) is for us.
pub fn host_allowed(header: &str, allowed: &[String], public_url: Option<&Url>) -> bool {
    let Some(name) = host_name(header) else {
        return false;
    };
    if name.parse::<IpAddr>().is_ok() || name == "localhost" || name.ends_with(".localhost") {
        return true;
    }
    if public_url
        .and_then(Url::host_str)
        .is_some_and(|h| h.eq_ignore_ascii_case(&name))
    {
        return true;
    }
    allowed.iter().any(|pattern| {
        let pattern = pattern.trim().trim_end_matches('.').to_ascii_lowercase();
        match pattern.strip_prefix("*.") {
            Some(domain) => name.ends_with(&format!(".{domain}")),
            None => pattern == name,
        }
    })
}

/// Refuses requests for host names we do not serve (421 `unknown_host`).
pub async fn host_middleware(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    // HTTP/1.1 requires Host; hyper puts an absolute-form target's authority in the URI.
    let host = request
        .headers()
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| request.uri().authority().map(|a| a.to_string()));
    let config = &state.config;
    match host {
        Some(host) if !host_allowed(&host, &config.allowed_hosts, config.public_url.as_ref()) => {
            tracing::warn!(%host, path = %request.uri().path(), "refused a request for an unknown host name");
            ApiError::UnknownHost.into_response()
        }
        _ => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        let allowed = vec!["watch.example.org".to_owned(), "*.party.example".to_owned()];
        let public = Url::parse("https://lockstep.example.net").unwrap();
        for ok in [
            "127.0.0.1:8080",
            "10.0.0.5",
            "[::1]:8080",
            "localhost:8080",
            "LOCALHOST",
            "dev.localhost",
            "watch.example.org",
            "Watch.Example.Org.:443",
            "a.party.example",
            "lockstep.example.net",
        ] {
            assert!(host_allowed(ok, &allowed, Some(&public)), "{ok}");
        }
        for refused in [
            "evil.example",
            "rebind.evil.example:8080",
            "party.example",
            "watch.example.org.evil.example",
            "",
            ":8080",
        ] {
            assert!(!host_allowed(refused, &allowed, Some(&public)), "{refused}");
        }
        assert!(!host_allowed("lockstep.example.net", &[], None));
    }
}
