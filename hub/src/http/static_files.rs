//! The static site: the `www/` calculator and its siblings `pkg/` and `examples/`, served by
//! tower-http's [`ServeDir`] (no `..`, a directory serves its `index.html`, ranges and
//! conditional requests), with the content types of this module, `Cache-Control: no-cache`, and
//! the hub's JSON 404 for whatever it does not serve.

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::Response;
use tower_http::services::ServeDir;

use super::error::error;
use super::input::percent_decode;
use super::Hub;
use tollgate::error::Code;

/// The content type of a file by its name's extension; `None` for one this table lacks.
fn content_type(name: &str) -> Option<&'static str> {
    let (_, ext) = name.rsplit_once('.')?;
    Some(match ext.to_ascii_lowercase().as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" | "cjs" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "ico" => "image/x-icon",
        "txt" | "ts" | "jsonl" => "text/plain; charset=utf-8",
        "md" => "text/markdown; charset=utf-8",
        _ => return None,
    })
}

/// The directory a URL path is served from and the (still %-encoded) path within it: `/pkg/…`
/// and `/examples/…` from the siblings of the site's directory, the rest from it. `None` when a
/// segment, decoded, is hidden (`.…`, so `..` too) or holds `/`, `\\` or NUL.
fn locate(www: &FsPath, url_path: &str) -> Option<(PathBuf, String)> {
    let raw: Vec<&str> = url_path.split('/').filter(|s| !s.is_empty()).collect();
    let decoded: Vec<String> = raw.iter().map(|s| percent_decode(s)).collect::<Option<_>>()?;
    if decoded.iter().any(|s| s.starts_with('.') || s.contains(['/', '\\', '\0'])) {
        return None;
    }
    let parent = www.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(FsPath::new("."));
    let (root, rest) = match decoded.first().map(String::as_str) {
        Some(dir @ ("pkg" | "examples")) => (parent.join(dir), &raw[1..]),
        _ => (www.to_path_buf(), &raw[..]),
    };
    Some((root, format!("/{}", rest.join("/"))))
}

/// Every request no route takes: a JSON 404 under `/v1` and for methods other than GET and
/// HEAD, else a file of the site.
pub(super) async fn fallback(State(hub): State<Arc<Hub>>, mut request: Request) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    if path == "/v1" || path.starts_with("/v1/") || (method != Method::GET && method != Method::HEAD) {
        return error(Code::NotFound, "", format!("no route {method} {path}"));
    }
    let not_found = || error(Code::NotFound, "", format!("no file at {path}"));
    let Some((root, rest)) = locate(&hub.www, &path) else { return not_found() };
    let Ok(uri) = rest.parse() else { return not_found() };
    *request.uri_mut() = uri;
    // Without the redirect, `/examples` serves `examples/index.html` as `/examples/` does.
    let served = ServeDir::new(root).redirect_to_trailing_slash(false).try_call(request).await;
    let mut response = match served {
        Ok(r) if r.status().is_success() || r.status() == StatusCode::NOT_MODIFIED => r.map(Body::new),
        Ok(r) if r.status() == StatusCode::RANGE_NOT_SATISFIABLE => return r.map(Body::new),
        // Missing, unreadable, or a directory without `index.html`.
        _ => return not_found(),
    };
    let headers = response.headers_mut();
    // A directory serves its index.html, which ServeDir's guess names as HTML.
    let name = path.rsplit('/').next().unwrap_or("");
    let is_html = headers.get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if let Some(kind) = content_type(name).or(is_html.then_some("text/html; charset=utf-8")) {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
