//! The web dashboard: a page and its scripts and styles, compiled into the binary so a node
//! serves it with no files beside it and no internet. It is a client of the public `/api/`
//! like the CLI; nothing here reads node state.
//!
//! The page is at `/` (for clients that accept HTML; others get a JSON pointer to the API) and
//! its assets under `/_/`, a prefix no service name can take (names are `[a-z0-9-]`).

use super::reply::{self, Body};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode, header};
use std::sync::OnceLock;

/// One embedded file: its path under `/_/`, its content type and its bytes.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! assets {
    ($($path:literal => $type:literal),* $(,)?) => {
        &[$(Asset {
            path: $path,
            content_type: $type,
            bytes: include_bytes!(concat!("../dashboard/", $path)),
        }),*]
    };
}

/// Every file of `crates/gateway/dashboard/` (a unit test checks that none is left out).
const ASSETS: &[Asset] = assets! {
    "index.html" => "text/html; charset=utf-8",
    "style.css" => "text/css; charset=utf-8",
    "app.js" => "text/javascript; charset=utf-8",
    "boot.js" => "text/javascript; charset=utf-8",
    "api.js" => "text/javascript; charset=utf-8",
    "dom.js" => "text/javascript; charset=utf-8",
    "graph.js" => "text/javascript; charset=utf-8",
    "pages/network.js" => "text/javascript; charset=utf-8",
    "pages/services.js" => "text/javascript; charset=utf-8",
    "pages/service.js" => "text/javascript; charset=utf-8",
    "pages/events.js" => "text/javascript; charset=utf-8",
    "pages/node.js" => "text/javascript; charset=utf-8",
    "icon.svg" => "image/svg+xml",
};

/// What the page may load and connect to: only this node. Services' answers are shown as
/// text, and this keeps anything that slips into the page from reaching elsewhere.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// True when the request is a browser's (it accepts HTML).
pub fn wants_html(request: &Request<Incoming>) -> bool {
    request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

/// The dashboard's page.
pub fn index(request: &Request<Incoming>) -> Response<Body> {
    asset(request, "index.html")
}

/// `GET /_/{path}`: one of the dashboard's files, with an ETag so a reload costs a 304.
pub fn asset(request: &Request<Incoming>, path: &str) -> Response<Body> {
    let Some((i, asset)) = ASSETS.iter().enumerate().find(|(_, a)| a.path == path) else {
        return reply::error(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("the dashboard has no file {path:?}"),
        );
    };
    let etag = &etags()[i];
    let unchanged = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes());
    let mut response = if unchanged {
        let mut r = Response::new(reply::full(bytes::Bytes::new()));
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        Response::new(reply::full(bytes::Bytes::from_static(asset.bytes)))
    };
    let headers = response.headers_mut();
    let value = header::HeaderValue::from_static;
    headers.insert(header::CONTENT_TYPE, value(asset.content_type));
    headers.insert(header::CACHE_CONTROL, value("no-cache"));
    headers.insert(header::CONTENT_SECURITY_POLICY, value(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, value("nosniff"));
    if let Ok(etag) = header::HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, etag);
    }
    response
}

/// The assets' ETags (a hash of each file), computed once.
fn etags() -> &'static [String] {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        use sha2::Digest as _;
        ASSETS
            .iter()
            .map(|a| format!("\"{}\"", hex::encode(&sha2::Sha256::digest(a.bytes)[..8])))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::ASSETS;
    use std::path::Path;

    /// Every file of the dashboard's directory is embedded (a new page not added to the table
    /// would be a 404 in the browser only).
    #[test]
    fn every_file_is_embedded() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboard");
        let mut files = Vec::new();
        let mut dirs = vec![root.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("reading the dashboard's directory") {
                let path = entry.expect("a directory entry").path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    let rel = path.strip_prefix(&root).expect("under the root");
                    files.push(rel.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        for file in &files {
            assert!(
                ASSETS.iter().any(|a| a.path == file),
                "crates/gateway/dashboard/{file} is not embedded: add it to ASSETS"
            );
        }
        assert_eq!(files.len(), ASSETS.len());
    }
}
