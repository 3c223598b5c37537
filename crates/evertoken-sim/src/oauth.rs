//! Authorization codes shared by the providers' authorization-code flows,
//! with PKCE (RFC 7636: `S256` = BASE64URL-NOPAD(SHA-256(code_verifier))).
//!
//! The simulated user consents at once: each provider's authorize endpoint
//! answers `302 Found` to `redirect_uri` with `code` and `state`.

use std::collections::HashMap;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use jiff::{SignedDuration, Timestamp};
use sha2::Digest as _;

use crate::state::Sim;

#[derive(Clone, Debug)]
pub(crate) struct CodeGrant {
    pub provider: &'static str,
    pub client_id: String,
    pub redirect_uri: Option<String>,
    pub code_challenge: Option<String>,
    pub challenge_method: String,
    pub scope: String,
    /// Google: `access_type=offline`.
    pub offline: bool,
    /// Google: `prompt=consent`.
    pub consent: bool,
    pub expires_at: Timestamp,
    pub used: bool,
}

#[derive(Default)]
pub(crate) struct OAuthState {
    pub codes: HashMap<String, CodeGrant>,
    pub issued: u64,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CodeError {
    Unknown,
    Used,
    Expired,
    ClientMismatch,
    RedirectMismatch,
    VerifierMissing,
    VerifierMismatch,
}

/// Code lifetime (Google and TikTok document ~10 minutes or less).
const CODE_TTL: SignedDuration = SignedDuration::from_secs(600);

pub(crate) fn pkce_s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}

impl Sim {
    /// How many authorization codes the authorize endpoints have issued.
    pub fn oauth_codes_issued(&self) -> u64 {
        self.lock().oauth.issued
    }
}

/// Issues a code for `grant` and builds the redirect. `extra` pairs are added
/// to the redirect's query (TikTok adds `scopes`). `fragment` is appended
/// verbatim (Instagram appends `#_`).
pub(crate) fn issue_and_redirect(
    sim: &Sim,
    prefix: &str,
    mut grant: CodeGrant,
    state: Option<&str>,
    extra: &[(&str, &str)],
    fragment: &str,
) -> Response {
    let Some(redirect) = grant.redirect_uri.clone() else {
        return (StatusCode::BAD_REQUEST, "redirect_uri is required").into_response();
    };
    let Ok(mut url) = url::Url::parse(&redirect) else {
        return (StatusCode::BAD_REQUEST, "redirect_uri is not a valid URL").into_response();
    };
    let code = format!("{prefix}{}", crate::util::alnum(40));
    {
        let mut st = sim.lock();
        grant.expires_at = st.now() + CODE_TTL;
        st.oauth.codes.insert(code.clone(), grant);
        st.oauth.issued += 1;
    }
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("code", &code);
        for (k, v) in extra {
            q.append_pair(k, v);
        }
        if let Some(s) = state {
            q.append_pair("state", s);
        }
    }
    let location = format!("{url}{fragment}");
    let mut r = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// Redirects an authorization error to `redirect_uri` (RFC 6749 §4.1.2.1).
pub(crate) fn redirect_error(
    redirect_uri: &str,
    error: &str,
    description: &str,
    state: Option<&str>,
) -> Response {
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        return (StatusCode::BAD_REQUEST, format!("{error}: {description}")).into_response();
    };
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("error", error);
        q.append_pair("error_description", description);
        if let Some(s) = state {
            q.append_pair("state", s);
        }
    }
    let mut r = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(url.as_str()) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// Consumes a code. Checks provider, client, redirect URI (when one was
/// given at authorization) and PKCE (when a challenge was given).
pub(crate) fn redeem(
    sim: &Sim,
    provider: &str,
    code: &str,
    client_id: &str,
    redirect_uri: Option<&str>,
    verifier: Option<&str>,
) -> Result<CodeGrant, CodeError> {
    let mut st = sim.lock();
    let now = st.now();
    let Some(g) = st.oauth.codes.get_mut(code) else {
        return Err(CodeError::Unknown);
    };
    if g.provider != provider {
        return Err(CodeError::Unknown);
    }
    if g.used {
        return Err(CodeError::Used);
    }
    if g.expires_at <= now {
        return Err(CodeError::Expired);
    }
    if g.client_id != client_id {
        return Err(CodeError::ClientMismatch);
    }
    if let Some(expected) = &g.redirect_uri
        && redirect_uri.is_some_and(|r| r != expected)
    {
        return Err(CodeError::RedirectMismatch);
    }
    if let Some(challenge) = &g.code_challenge {
        let Some(v) = verifier else {
            return Err(CodeError::VerifierMissing);
        };
        let computed = if g.challenge_method.eq_ignore_ascii_case("plain") {
            v.to_string()
        } else {
            pkce_s256(v)
        };
        if &computed != challenge {
            return Err(CodeError::VerifierMismatch);
        }
    }
    g.used = true;
    Ok(g.clone())
}
