//! Authorization codes shared by the providers' authorization-code flows,
//! with PKCE (RFC 7636: `S256` = BASE64URL-NOPAD(SHA-256(code_verifier)); TikTok's
//! desktop flow uses the lowercase HEX of SHA-256 instead), and the redirect URI
//! rules every provider enforces.
//!
//! The simulated user consents at once: each provider's authorize endpoint
//! answers `302 Found` to `redirect_uri` with `code` and `state`.
//!
//! Redirect URIs, as the real providers treat them:
//! - an `http` redirect is accepted only on a loopback host (`127.0.0.1`, `[::1]`,
//!   `localhost`); RFC 8252 §7.3 and §8.3 <https://datatracker.ietf.org/doc/html/rfc8252>;
//! - a fragment is never accepted (RFC 6749 §3.1.2);
//! - where URIs are registered for a client ([`Sim::oauth_register_redirect`]),
//!   the authorize request's URI must equal one of them as a string (a trailing
//!   slash matters), except the port of a loopback URI where the provider allows any
//!   (Google desktop clients; TikTok's `:*` wildcard port). With nothing registered
//!   only the scheme/host rules apply, so tests that do not care stay short;
//! - the token request must carry exactly the authorize request's `redirect_uri`
//!   (RFC 6749 §4.1.3: "identical"), or the code is refused.

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
    /// TikTok: the S256 challenge is the lowercase hex of SHA-256, not base64url.
    pub hex_challenge: bool,
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
    /// (provider, client id) → the redirect URIs registered in its console.
    pub registered: HashMap<(String, String), Vec<String>>,
}

/// Which redirect URIs a provider (or an app type of it) accepts at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RedirectRule {
    /// `https`, or `http` on a loopback host (Google, LinkedIn).
    Standard,
    /// `https` only (Meta's Instagram login; TikTok web apps).
    HttpsOnly,
    /// A loopback host (`localhost`/`127.0.0.1`) with a port (TikTok desktop apps).
    LoopbackOnly,
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

/// TikTok's desktop S256: lowercase hex of SHA-256(code_verifier).
pub(crate) fn pkce_s256_hex(verifier: &str) -> String {
    hex::encode(sha2::Sha256::digest(verifier))
}

impl Sim {
    /// How many authorization codes the authorize endpoints have issued.
    pub fn oauth_codes_issued(&self) -> u64 {
        self.lock().oauth.issued
    }

    /// Registers `uri` as a redirect URI of `client_id` at `provider`
    /// (`tiktok`, `google`, `linkedin`, `instagram`), as its developer console
    /// stores it. Once one is registered, the authorize endpoint accepts only those.
    pub fn oauth_register_redirect(&self, provider: &str, client_id: &str, uri: &str) {
        self.lock()
            .oauth
            .registered
            .entry((provider.to_string(), client_id.to_string()))
            .or_default()
            .push(uri.to_string());
    }
}

fn is_loopback_host(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        None => false,
    }
}

/// TikTok's desktop rule: "Only localhost or loopback IP 127.0.0.1 are allowed
/// host names" (<https://developers.tiktok.com/doc/login-kit-desktop>), so not
/// `127.0.0.2` and not `[::1]`.
fn desktop_host(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(a)) => a == std::net::Ipv4Addr::LOCALHOST,
        _ => false,
    }
}

/// Whether `got` equals the registered `reg`: as strings, or with a TikTok
/// wildcard port (`http://127.0.0.1:*/callback/`), or (where `any_port`) a
/// loopback URI that differs only in its port.
fn redirect_matches(reg: &str, got: &str, any_port: bool) -> bool {
    if reg == got {
        return true;
    }
    if let Some((head, tail)) = reg.split_once(":*") {
        return got.strip_prefix(head).is_some_and(|rest| {
            rest.strip_prefix(':').is_some_and(|r| {
                let digits = r.bytes().take_while(u8::is_ascii_digit).count();
                digits > 0 && &r[digits..] == tail
            })
        });
    }
    if any_port {
        let (Ok(mut r), Ok(mut g)) = (url::Url::parse(reg), url::Url::parse(got)) else {
            return false;
        };
        if r.scheme() == "http" && is_loopback_host(&r) && is_loopback_host(&g) {
            let _ = r.set_port(None);
            let _ = g.set_port(None);
            return r == g;
        }
    }
    false
}

/// Checks an authorize request's `redirect_uri`. `Err` is the reason, in the
/// provider-neutral words the caller wraps in its own error page.
pub(crate) fn check_redirect(
    sim: &Sim,
    provider: &str,
    client_id: &str,
    redirect: &str,
    rule: RedirectRule,
    any_loopback_port: bool,
) -> Result<(), String> {
    let u =
        url::Url::parse(redirect).map_err(|_| "redirect_uri is not an absolute URL".to_string())?;
    if u.fragment().is_some() {
        return Err("redirect_uri must not contain a fragment".into());
    }
    let loopback = is_loopback_host(&u);
    match u.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(
                "an http redirect_uri is accepted only on a loopback host; use https".into(),
            );
        }
        _ => return Err("redirect_uri must be an http(s) URL".into()),
    }
    match rule {
        RedirectRule::Standard => {}
        RedirectRule::HttpsOnly if u.scheme() != "https" => {
            return Err("redirect_uri must be an https URL".into());
        }
        RedirectRule::HttpsOnly => {}
        RedirectRule::LoopbackOnly if !desktop_host(&u) || u.port().is_none() => {
            return Err(
                "a desktop app's redirect_uri must be localhost or 127.0.0.1 with a port".into(),
            );
        }
        RedirectRule::LoopbackOnly => {}
    }
    let st = sim.lock();
    if let Some(reg) = st
        .oauth
        .registered
        .get(&(provider.to_string(), client_id.to_string()))
        && !reg
            .iter()
            .any(|r| redirect_matches(r, redirect, any_loopback_port))
    {
        return Err("redirect_uri does not match a registered redirect URI".into());
    }
    Ok(())
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
    // RFC 6749 §4.1.3: required when the authorize request had one, and identical.
    if let Some(expected) = &g.redirect_uri
        && redirect_uri != Some(expected.as_str())
    {
        return Err(CodeError::RedirectMismatch);
    }
    if let Some(challenge) = &g.code_challenge {
        let Some(v) = verifier else {
            return Err(CodeError::VerifierMissing);
        };
        let computed = if g.challenge_method.eq_ignore_ascii_case("plain") {
            v.to_string()
        } else if g.hex_challenge {
            pkce_s256_hex(v)
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
