//! The web dashboard: static files shipped inside the binary (issue 14),
//! served at `/` (the page) and `/assets/…` (its scripts and styles).
//!
//! ```text
//! GET /            ──▶ dashboard/index.html
//! GET /assets/{f}  ──▶ dashboard/assets/{f}   (ETag, 304 on If-None-Match)
//! ```
//!
//! The page is only a client of the public API: it reads and drives
//! everything through the same routes a script would (`/jobs`, `/runs`,
//! `/events`…), so serving it needs no token and hands out no data. The
//! files are embedded at build time (`rust-embed` with `debug-embed`, so
//! test builds serve exactly what a release ships); nothing is fetched
//! from elsewhere at run time, and the Content-Security-Policy forbids it
//! (`default-src 'self'`), along with inline scripts and framing.
//!
//! For working on the page, `WASMCRON_DASHBOARD_DIR=host/dashboard` makes
//! the host read the files from that folder at every request instead, so
//! an edit shows on reload without a rebuild.

use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The files under `host/dashboard/`, keyed by their path there
/// (`index.html`, `assets/app.js`…).
#[derive(rust_embed::RustEmbed)]
#[folder = "dashboard/"]
struct Files;

/// The environment variable naming a folder to serve the dashboard from
/// instead of the embedded files (for working on it).
pub const DASHBOARD_DIR_ENV: &str = "WASMCRON_DASHBOARD_DIR";

/// What every dashboard answer carries: only this origin's scripts,
/// styles, images and connections; no inline script; never in a frame.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
                   img-src 'self' data:; connect-src 'self'; font-src 'self'; \
                   object-src 'none'; base-uri 'none'; form-action 'self'; \
                   frame-ancestors 'none'";

/// The folder named by [`DASHBOARD_DIR_ENV`], read once.
fn override_dir() -> Option<&'static PathBuf> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::var_os(DASHBOARD_DIR_ENV).map(PathBuf::from)?;
        tracing::warn!(
            dir = %dir.display(),
            "serving the dashboard from a folder ({DASHBOARD_DIR_ENV}), not the files built in"
        );
        Some(dir)
    })
    .as_ref()
}

/// `GET /`: the dashboard's page.
pub(super) async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

/// `GET /assets/{*path}`: one of its scripts, styles or images.
pub(super) async fn asset(uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path().trim_start_matches('/');
    serve(path, &headers)
}

/// One file's answer: 200 with its type, 304 when the client's copy is
/// current, 404 when there is no such file.
fn serve(path: &str, headers: &HeaderMap) -> Response {
    let Some((body, etag)) = read(path) else {
        return super::ApiError::not_found(format!(
            "no dashboard file {path}; the dashboard is at /"
        ))
        .into_response();
    };
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let mut response = if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, body.into_owned()).into_response()
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(mime.essence_str()) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    // Revalidate every time (cheap with the ETag): a host upgraded in
    // place must not leave a stale script talking to a newer API.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// The bytes of `path` and their ETag, from the override folder when one
/// is set, else from the embedded files.
fn read(path: &str) -> Option<(Cow<'static, [u8]>, String)> {
    // Only plain relative paths: no `..`, no absolute or empty segments.
    if path.is_empty()
        || path
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == ".." || s.contains('\\'))
    {
        return None;
    }
    if let Some(dir) = override_dir() {
        let bytes = std::fs::read(dir.join(path)).ok()?;
        let etag = format!("\"{}\"", hex(&sha2_of(&bytes)));
        return Some((Cow::Owned(bytes), etag));
    }
    let file = Files::get(path)?;
    let etag = format!("\"{}\"", hex(&file.metadata.sha256_hash()));
    Some((file.data, etag))
}

fn sha2_of(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::read;

    #[test]
    fn the_page_and_its_files_are_built_in() {
        let (page, etag) = read("index.html").expect("index.html is embedded");
        assert!(String::from_utf8_lossy(&page).contains("<html"));
        assert_eq!(etag.len(), 66, "a quoted SHA-256: {etag}");
    }

    #[test]
    fn paths_that_climb_or_are_odd_find_nothing() {
        for path in [
            "",
            "../Cargo.toml",
            "assets/../index.html",
            "/etc/passwd",
            "assets//x",
            "a\\b",
        ] {
            assert!(read(path).is_none(), "{path:?} was served");
        }
    }
}
