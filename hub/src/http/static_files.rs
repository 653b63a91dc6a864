//! The static site: the `www/` calculator and its siblings `pkg/` and `examples/`.

use std::path::{Component, Path as FsPath, PathBuf};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue, Method, Uri};
use axum::response::Response;

use super::error::{error, respond};
use super::input::percent_decode;
use super::Hub;
use tollgate::error::Code;

pub(super) fn content_type(path: &FsPath) -> &'static str {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let ext = name.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
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
        _ => "application/octet-stream",
    }
}

/// The file a URL path names: `/pkg/…` and `/examples/…` in the siblings of the site's
/// directory, the rest in it. No `..`, no hidden files; a directory serves its `index.html`.
pub(super) fn static_file(www: &FsPath, url_path: &str) -> Option<PathBuf> {
    let decoded = percent_decode(url_path)?;
    let segments: Vec<&str> = decoded.split('/').filter(|s| !s.is_empty()).collect();
    if segments.iter().any(|s| s.starts_with('.') || s.contains('\\') || s.contains('\0')) {
        return None;
    }
    let parent = www.parent().map_or_else(|| PathBuf::from("."), FsPath::to_path_buf);
    let parent = if parent.as_os_str().is_empty() { PathBuf::from(".") } else { parent };
    let (mut path, rest) = match segments.first() {
        Some(&"pkg") => (parent.join("pkg"), &segments[1..]),
        Some(&"examples") => (parent.join("examples"), &segments[1..]),
        _ => (www.to_path_buf(), &segments[..]),
    };
    for s in rest {
        path.push(s);
    }
    if path.components().any(|c| matches!(c, Component::ParentDir)) {
        return None;
    }
    if path.is_dir() {
        path.push("index.html");
    }
    path.is_file().then_some(path)
}

pub(super) async fn fallback(State(hub): State<Arc<Hub>>, method: Method, uri: Uri) -> Response {
    let path = uri.path().to_string();
    if path == "/v1" || path.starts_with("/v1/") {
        return error(Code::NotFound, "", format!("no route {method} {path}"));
    }
    if method != Method::GET && method != Method::HEAD {
        return error(Code::NotFound, "", format!("no route {method} {path}"));
    }
    let www = hub.www.clone();
    let found = tokio::task::spawn_blocking(move || {
        let file = static_file(&www, &path)?;
        let bytes = std::fs::read(&file).ok()?;
        Some((content_type(&file), bytes))
    })
    .await
    .ok()
    .flatten();
    match found {
        Some((kind, bytes)) => {
            let mut r = respond(200, bytes, kind);
            r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            r
        }
        None => error(Code::NotFound, "", format!("no file at {}", uri.path())),
    }
}
