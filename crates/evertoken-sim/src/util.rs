//! Small helpers shared by the provider modules: JSON responses, the
//! providers' error envelopes, random token material, form/query parsing.

use std::collections::HashMap;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rand::RngExt;
use rand::distr::Alphanumeric;
use serde_json::{Value, json};

/// `n` random ASCII letters and digits.
pub(crate) fn alnum(n: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

/// `n` random upper-case hex digits.
pub(crate) fn hex_upper(n: usize) -> String {
    const HEX: &[u8] = b"0123456789ABCDEF";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| HEX[rng.random_range(0..16)] as char)
        .collect()
}

pub(crate) fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// A JSON response with `status`.
pub(crate) fn json_response(code: u16, body: Value) -> Response {
    (status(code), axum::Json(body)).into_response()
}

/// Parses an `application/x-www-form-urlencoded` body (or query string). Never
/// fails: malformed pairs are decoded leniently, the first value of a key wins.
pub(crate) fn parse_form(bytes: &[u8]) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(bytes) {
        out.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    out
}

pub(crate) fn parse_query(q: Option<&str>) -> HashMap<String, String> {
    parse_form(q.unwrap_or("").as_bytes())
}

/// A present, non-empty parameter.
pub(crate) fn param<'a>(m: &'a HashMap<String, String>, k: &str) -> Option<&'a str> {
    m.get(k).map(String::as_str).filter(|s| !s.is_empty())
}

/// HTTP Basic credentials (`client_secret_basic`), if the request carries them.
pub(crate) fn basic_auth(headers: &HeaderMap) -> Option<(String, String)> {
    use base64::Engine as _;
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let rest = v
        .strip_prefix("Basic ")
        .or_else(|| v.strip_prefix("basic "))?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    let dec = |x: &str| {
        url::form_urlencoded::parse(format!("a={x}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Some((dec(u), dec(p)))
}

/// The bearer/token credential of an `Authorization` header
/// (`Bearer X`, `token X`).
pub(crate) fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = v.split_once(' ')?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme == "bearer" || scheme == "token" {
        let t = rest.trim();
        (!t.is_empty()).then(|| t.to_string())
    } else {
        None
    }
}

// ---------------------------------------------------------------- Graph (Meta)

/// Meta Graph API error envelope:
/// `{"error":{"message","type","code","error_subcode","fbtrace_id"}}`.
pub(crate) fn graph_error(
    code: u16,
    message: &str,
    kind: &str,
    err_code: u32,
    subcode: Option<u32>,
    transient: bool,
) -> Response {
    let mut e = json!({
        "message": message,
        "type": kind,
        "code": err_code,
        "fbtrace_id": format!("A{}", alnum(22)),
    });
    if let Some(s) = subcode {
        e["error_subcode"] = json!(s);
    }
    if transient {
        e["is_transient"] = json!(true);
    }
    let mut r = json_response(code, json!({ "error": e }));
    // Graph sets this header on OAuth errors.
    r.headers_mut().insert(
        "www-authenticate",
        HeaderValue::from_static("OAuth \"Facebook Platform\" \"invalid_token\""),
    );
    r
}

// ---------------------------------------------------- RFC 6749 (Google, LinkedIn)

/// RFC 6749 §5.2 error body `{"error","error_description"}`.
pub(crate) fn oauth_error(code: u16, error: &str, description: &str) -> Response {
    json_response(
        code,
        json!({ "error": error, "error_description": description }),
    )
}

// ---------------------------------------------------------------------- TikTok

/// A TikTok `log_id`: a timestamp followed by 18 hex digits.
pub(crate) fn tiktok_log_id(now: jiff::Timestamp) -> String {
    format!("{}{}", now.strftime("%Y%m%d%H%M%S"), hex_upper(18))
}

/// TikTok Login Kit OAuth error `{"error","error_description","log_id"}`.
pub(crate) fn tiktok_error(
    code: u16,
    error: &str,
    description: &str,
    now: jiff::Timestamp,
) -> Response {
    json_response(
        code,
        json!({
            "error": error,
            "error_description": description,
            "log_id": tiktok_log_id(now),
        }),
    )
}

// ---------------------------------------------------------------------- GitHub

pub(crate) const GH_DOCS: &str = "https://docs.github.com/rest";

/// GitHub REST error `{"message","documentation_url","status"}`.
pub(crate) fn github_error(code: u16, message: &str, doc: &str) -> Response {
    json_response(
        code,
        json!({ "message": message, "documentation_url": doc, "status": code.to_string() }),
    )
}

// ---------------------------------------------------------------------- GitLab

/// GitLab REST error `{"message": "..."}`.
pub(crate) fn gitlab_error(code: u16, message: &str) -> Response {
    json_response(code, json!({ "message": message }))
}

/// Canonical reason phrase for a status code (`"Service Unavailable"`).
pub(crate) fn reason(code: u16) -> &'static str {
    status(code).canonical_reason().unwrap_or("Error")
}

/// A plain-text answer (Slack webhooks, GitLab's throttling page).
pub(crate) fn text(code: u16, body: &'static str) -> Response {
    (
        status(code),
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// An RFC 6749 token endpoint's body for an injected HTTP error status
/// (Google, LinkedIn).
pub(crate) fn oauth_fault_status(code: u16) -> Response {
    match code {
        503 => oauth_error(
            503,
            "temporarily_unavailable",
            "The service is temporarily unavailable. Try again later.",
        ),
        c if c >= 500 => oauth_error(c, "server_error", reason(c)),
        401 => oauth_error(401, "invalid_client", "Unauthorized"),
        429 => oauth_error(429, "rate_limit_exceeded", "Rate Limit Exceeded"),
        c => oauth_error(c, "invalid_request", reason(c)),
    }
}
