//! The web client: HTML pages and static files (plain ES modules, one CSS file), embedded in the
//! binary from `web/public` at build time.
//!
//! Modules import each other by unhashed URLs, so files are served with an ETag and
//! `Cache-Control: no-cache` (revalidate, get a cheap 304) rather than marked immutable. Pages
//! carry a Content-Security-Policy that allows scripts only from this site, the configured YouTube
//! IFrame API and hls.js URLs, and the inline scripts of the page itself by their hashes (the room
//! page opens its socket with one as it is parsed).

use crate::config::Config;
use crate::state::AppState;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rust_embed::RustEmbed;
use sha2::{Digest, Sha256};
use url::Url;

#[derive(RustEmbed)]
#[folder = "../../web/public"]
struct Assets;

/// Page routes (served through the session layer, so a first visit creates the user).
pub fn pages() -> Router<AppState> {
    Router::new()
        .route("/", page("lobby.html"))
        .route("/r/{id}", page("room.html"))
        .route("/i/{key}", page("room.html"))
        .route("/uploads", page("uploads.html"))
        .route("/library", page("library.html"))
}

/// Static files (no session needed), and the icon browsers ask for at the root.
pub fn assets() -> Router<AppState> {
    Router::new().route("/static/{*path}", get(asset)).route(
        "/favicon.ico",
        get(
            |State(state): State<AppState>, headers: HeaderMap| async move {
                serve(&state, "favicon.svg", &headers)
            },
        ),
    )
}

/// `GET` of one HTML page.
fn page(file: &'static str) -> MethodRouter<AppState> {
    get(
        move |State(state): State<AppState>, headers: HeaderMap| async move {
            serve(&state, file, &headers)
        },
    )
}

async fn asset(
    State(state): State<AppState>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Response {
    // rust-embed only knows the embedded names: `..` and absolute paths simply miss.
    serve(&state, &path, &headers)
}

/// `GET /api/client-config`: what the web client needs to know about this deployment.
pub async fn client_config(State(state): State<AppState>) -> impl IntoResponse {
    let c = &state.config;
    axum::Json(serde_json::json!({
        "youtube_iframe_api_url": c.youtube_iframe_api_url.as_str(),
        "hls_js_url": c.hls_js_url.as_str(),
        "hls_js_integrity": (!c.hls_js_integrity.is_empty()).then_some(c.hls_js_integrity.as_str()),
        "upload_max_bytes": c.upload_max_bytes,
        "upload_quota_bytes": c.upload_quota_bytes,
        // Keyframes further apart than this (s) are sparse: the uploads page says so.
        "sparse_keyframes_secs": crate::media::video::MAX_KEYFRAME_SPACING,
    }))
}

/// The origin (`scheme://host[:port]`) of a configured URL, for the CSP.
fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// `script-src` with each source once (the configured origins may repeat YouTube's own), then
/// the inline scripts' hashes.
fn script_src(sources: &[&str], inline: &[String]) -> String {
    let mut unique: Vec<&str> = Vec::new();
    for s in sources
        .iter()
        .copied()
        .chain(inline.iter().map(String::as_str))
    {
        if !unique.contains(&s) {
            unique.push(s);
        }
    }
    format!("script-src {}", unique.join(" "))
}

/// The CSP sources (`'sha256-…'`) of a page's inline scripts: the text of each `<script>` without
/// attributes, exactly as it stands between its tags (what browsers hash).
fn inline_script_hashes(html: &str) -> Vec<String> {
    const OPEN: &str = "<script>";
    let mut hashes = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find(OPEN) {
        let body = &rest[start + OPEN.len()..];
        let Some(end) = body.find("</script>") else {
            break;
        };
        let digest = Sha256::digest(&body.as_bytes()[..end]);
        hashes.push(format!("'sha256-{}'", STANDARD.encode(digest)));
        rest = &body[end..];
    }
    hashes
}

/// The Content-Security-Policy of our pages. Only the room page plays media: it alone may load
/// YouTube's player and hls.js (that one file, not its CDN), play media from anywhere and let
/// hls.js fetch playlists and segments from anywhere (media URLs are whatever people paste).
/// Every page may show YouTube's thumbnails (and those of the configured YouTube endpoints);
/// the other pages talk only to this site. `inline`: the page's inline scripts' sources
/// (`inline_script_hashes`), the only inline scripts it may run.
pub fn content_security_policy(config: &Config, room: bool, inline: &[String]) -> String {
    let youtube_api = origin(&config.youtube_iframe_api_url);
    let mut images = vec![
        "'self'".to_owned(),
        "data:".to_owned(),
        "https://i.ytimg.com".to_owned(),
        "https://*.ytimg.com".to_owned(),
    ];
    for url in [&config.youtube_oembed_url, &config.youtube_api_url] {
        let o = origin(url);
        if !images.contains(&o) {
            images.push(o);
        }
    }
    let mut csp = vec!["default-src 'self'".to_owned()];
    if room {
        csp.extend([
            // The IFrame API script loads more scripts from YouTube's servers.
            script_src(
                &[
                    "'self'",
                    &youtube_api,
                    config.hls_js_url.as_str(),
                    "https://www.youtube.com",
                    "https://s.ytimg.com",
                ],
                inline,
            ),
            "frame-src https://www.youtube.com https://www.youtube-nocookie.com".to_owned(),
            "media-src 'self' https: http: blob:".to_owned(),
            // 'self' covers this site's WebSocket too (CSP 3).
            "connect-src 'self' https: http:".to_owned(),
        ]);
    } else {
        csp.extend([
            script_src(&["'self'"], inline),
            "frame-src 'none'".to_owned(),
            "media-src 'self' blob:".to_owned(),
            "connect-src 'self'".to_owned(),
        ]);
    }
    csp.extend([
        format!("img-src {}", images.join(" ")),
        "style-src 'self'".to_owned(),
        "object-src 'none'".to_owned(),
        "base-uri 'none'".to_owned(),
        "frame-ancestors 'none'".to_owned(),
        "form-action 'self'".to_owned(),
    ]);
    csp.join("; ")
}

fn serve(state: &AppState, path: &str, headers: &HeaderMap) -> Response {
    let Some(file) = Assets::get(path) else {
        return (
            StatusCode::NOT_FOUND,
            [(CONTENT_TYPE, "text/plain; charset=utf-8")],
            "not found",
        )
            .into_response();
    };
    let hash = file.metadata.sha256_hash();
    let etag = format!(
        "\"{}\"",
        hash[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let mime = file.metadata.mimetype();
    let csp = mime.starts_with("text/html").then(|| {
        let inline = inline_script_hashes(&String::from_utf8_lossy(&file.data));
        content_security_policy(&state.config, path == "room.html", &inline)
    });
    let mut response = if headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        Response::new(Body::from(file.data.into_owned()))
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(mime) {
        h.insert(CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(ETAG, v);
    }
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if let Some(Ok(v)) = csp.map(|csp| HeaderValue::from_str(&csp)) {
        h.insert(CONTENT_SECURITY_POLICY, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn directive<'a>(csp: &'a str, name: &str) -> &'a str {
        csp.split("; ")
            .find(|d| d.starts_with(name))
            .unwrap_or_else(|| panic!("{name} in {csp}"))
    }

    #[test]
    fn csp_names_each_script_source_once_and_allows_no_inline_script() {
        let config = Config::with_data_dir("/tmp/unused");
        let csp = content_security_policy(&config, true, &[]);
        let script = directive(&csp, "script-src");
        assert_eq!(
            script.matches("https://www.youtube.com").count(),
            1,
            "{script}"
        );
        // The hls.js file itself, not all of the CDN.
        assert!(script.contains(" https://cdn.jsdelivr.net/npm/hls.js@1.7.4/dist/hls.min.js"));
        assert!(!script.contains("https://cdn.jsdelivr.net "), "{script}");
        assert!(!script.ends_with("https://cdn.jsdelivr.net"), "{script}");
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(!directive(&csp, "connect-src").contains("ws:"));
        // Images: this site and YouTube's, not any host.
        let img = directive(&csp, "img-src");
        assert!(
            !img.contains(" https: ") && !img.ends_with(" https:") && !img.contains("http:"),
            "{img}"
        );
    }

    #[test]
    fn pages_other_than_the_room_talk_only_to_this_site() {
        let csp = content_security_policy(&Config::with_data_dir("/tmp/unused"), false, &[]);
        assert_eq!(directive(&csp, "script-src"), "script-src 'self'");
        assert_eq!(directive(&csp, "connect-src"), "connect-src 'self'");
        assert_eq!(directive(&csp, "frame-src"), "frame-src 'none'");
    }

    #[test]
    fn inline_scripts_are_hashed_as_they_stand_and_no_other_script() {
        let html = "<script>a</script><script type=\"module\" src=\"/x.js\"></script>\n<script>\n  b\n</script><script>";
        assert_eq!(
            inline_script_hashes(html),
            [
                "'sha256-ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLs='",
                "'sha256-TvNosQuJuSSycGaKgD12Kz4BBcrzqeOvGSXRwZ2SpY0='",
            ]
        );
        assert!(inline_script_hashes("<p>no script</p>").is_empty());
    }

    #[test]
    fn the_room_page_may_run_its_own_inline_script_and_no_other() {
        let room = Assets::get("room.html").expect("room.html is embedded");
        let inline = inline_script_hashes(&String::from_utf8_lossy(&room.data));
        assert_eq!(
            inline.len(),
            1,
            "room.html opens its socket with one inline script"
        );
        let csp = content_security_policy(&Config::with_data_dir("/tmp/unused"), true, &inline);
        let script = directive(&csp, "script-src");
        assert!(script.ends_with(&format!(" {}", inline[0])), "{script}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        for page in ["lobby.html", "uploads.html", "library.html"] {
            let file = Assets::get(page).expect("embedded");
            assert!(
                inline_script_hashes(&String::from_utf8_lossy(&file.data)).is_empty(),
                "{page} has no inline script"
            );
        }
    }
}
