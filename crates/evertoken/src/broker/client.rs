//! The broker's client side: `github token --broker URL --policy NAME`, and a
//! `github.apps.<a>.broker` entry that makes `github refresh` (the timer, the
//! token file, `gh`, `/ghauth`) ask a broker instead of signing here.
//!
//! The bearer is a static client secret from an env var, an ID token from an env
//! var or a file (GitLab CI `id_tokens:`), or, inside GitHub Actions with
//! `id-token: write`, the job's own ID token requested from
//! `ACTIONS_ID_TOKEN_REQUEST_URL` (docs:
//! <https://docs.github.com/en/actions/reference/security/oidc#methods-for-requesting-the-oidc-token>).
//! Never prints or logs a bearer or a token; plain-`http` broker URLs are refused
//! unless they are on loopback.

use std::path::PathBuf;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use url::Url;

use crate::config::Config;
use crate::env_vars;
use crate::error::{Error, Result};
use crate::github::mint::Minted;
use crate::http::{Call, Http, safe_url};
use crate::secret::Secret;

/// The default `aud` a client asks its CI for.
pub const DEFAULT_AUDIENCE: &str = "evertoken";

/// `github.apps.<a>.broker` as written.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerAppConfig {
    pub url: String,
    pub policy: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token_file: Option<String>,
    /// Audience for a GitHub Actions ID token (default `evertoken`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
}

/// Where the bearer comes from.
#[derive(Debug, Clone)]
pub enum Bearer {
    Env(String),
    File(PathBuf),
    /// GitHub Actions: ask the runner for an ID token with this audience.
    Actions {
        audience: String,
    },
}

/// A resolved broker client.
#[derive(Debug, Clone)]
pub struct BrokerApp {
    pub url: Url,
    pub policy: String,
    pub bearer: Bearer,
}

/// `https`, or plain `http` on loopback only.
pub fn check_url(u: &Url) -> std::result::Result<(), String> {
    match u.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(u) => Ok(()),
        "http" => Err(format!(
            "{} is plain http on a non-loopback host; tokens would cross the network unencrypted",
            safe_url(u)
        )),
        s => Err(format!("{} is not http(s) ({s})", safe_url(u))),
    }
}

pub use crate::http::is_loopback;

/// Parses and checks a broker URL.
pub fn parse_url(s: &str) -> std::result::Result<Url, String> {
    let u = Url::parse(s.trim()).map_err(|e| format!("`{s}` is not a URL: {e}"))?;
    if u.host_str().is_none() {
        return Err(format!("`{s}` has no host"));
    }
    check_url(&u)?;
    Ok(u)
}

pub(crate) fn validate_app(cfg: &Config, at: &str, c: &BrokerAppConfig) -> Result<()> {
    parse_url(&c.url).map_err(|e| {
        cfg.error_at(&format!("{at}.url"), e)
            .with_hint("use https://BROKER (plain http only on 127.0.0.1 / localhost)")
    })?;
    if c.policy.trim().is_empty() {
        return Err(cfg
            .error_at(&format!("{at}.policy"), "is empty")
            .with_hint("name a policy of the broker's config"));
    }
    let set = [
        c.client_secret_env.is_some(),
        c.id_token_env.is_some(),
        c.id_token_file.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if set > 1 {
        return Err(cfg
            .error_at(
                at,
                "set one of `client_secret_env`, `id_token_env`, `id_token_file`",
            )
            .with_hint("a host with no OIDC issuer uses `client_secret_env`"));
    }
    Ok(())
}

impl BrokerApp {
    pub fn resolve(cfg: &Config, at: &str, c: &BrokerAppConfig) -> Result<BrokerApp> {
        validate_app(cfg, at, c)?;
        let url = parse_url(&c.url).map_err(|e| cfg.error_at(&format!("{at}.url"), e))?;
        let bearer = if let Some(v) = c.client_secret_env.as_ref().or(c.id_token_env.as_ref()) {
            Bearer::Env(v.clone())
        } else if let Some(f) = &c.id_token_file {
            Bearer::File(cfg.resolve_path(f))
        } else {
            Bearer::Actions {
                audience: c
                    .audience
                    .clone()
                    .unwrap_or_else(|| DEFAULT_AUDIENCE.into()),
            }
        };
        Ok(BrokerApp {
            url,
            policy: c.policy.clone(),
            bearer,
        })
    }

    /// Asks the broker for a token under this app's policy.
    pub async fn mint(&self, http: &Http) -> Result<Minted> {
        let bearer = bearer(&self.bearer, http).await?;
        request(http, &self.url, &self.policy, &bearer).await
    }
}

/// Reads the bearer (never logged).
pub async fn bearer(b: &Bearer, http: &Http) -> Result<Secret> {
    match b {
        Bearer::Env(var) => std::env::var(var)
            .ok()
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .map(Secret::new)
            .ok_or_else(|| {
                Error::config(format!("${var} (the broker bearer) is not set or empty"))
                    .with_hint(format!("export {var}=… (a client secret or an ID token); GitLab CI: `id_tokens: {{ {var}: {{ aud: evertoken }} }}`"))
            }),
        Bearer::File(p) => {
            // An ID token is a few KiB: a larger file, a FIFO or a device is
            // refused instead of read without end.
            let raw = crate::files::read_capped(p, MAX_ID_TOKEN_BYTES)
                .map_err(|e| {
                    Error::config(format!("cannot read the ID token file {}: {e}", p.display()))
                        .with_hint("check `--id-token-file` / `id_token_file`: it must name a regular file holding the job's ID token")
                })?;
            let raw = String::from_utf8_lossy(&raw);
            let t = raw.trim();
            if t.is_empty() {
                return Err(Error::config(format!("the ID token file {} is empty", p.display())));
            }
            Ok(Secret::new(t))
        }
        Bearer::Actions { audience } => actions_id_token(http, audience).await,
    }
}

/// The largest ID token file read (an OIDC ID token is a few KiB).
const MAX_ID_TOKEN_BYTES: u64 = 64 * 1024;

/// The GitHub Actions job's ID token for `audience`.
pub async fn actions_id_token(http: &Http, audience: &str) -> Result<Secret> {
    let url = std::env::var(env_vars::ACTIONS_ID_TOKEN_REQUEST_URL).ok();
    let tok = std::env::var(env_vars::ACTIONS_ID_TOKEN_REQUEST_TOKEN).ok();
    let (Some(url), Some(tok)) = (url, tok) else {
        return Err(Error::usage("no ID token: give --id-token-file or --id-token-env, or run inside GitHub Actions with `permissions: id-token: write`")
            .with_hint(format!("{} and {} are set only on a GitHub Actions job with `id-token: write`", env_vars::ACTIONS_ID_TOKEN_REQUEST_URL, env_vars::ACTIONS_ID_TOKEN_REQUEST_TOKEN)));
    };
    let mut u = Url::parse(&url).map_err(|e| {
        Error::failed(format!(
            "{} is not a URL: {e}",
            env_vars::ACTIONS_ID_TOKEN_REQUEST_URL
        ))
    })?;
    check_url(&u).map_err(Error::failed)?;
    u.query_pairs_mut().append_pair("audience", audience);
    let tok = Secret::new(tok);
    let reply = http
        .send("GitHub Actions ID token endpoint", Call::Safe, |c| {
            c.get(u.clone()).bearer_auth(tok.expose())
        })
        .await
        .map_err(|f| Error::failed(f.message().to_owned()))?;
    if !reply.status.is_success() {
        return Err(Error::failed(format!(
            "the runner refused an ID token ({} from {})",
            reply.status.as_u16(),
            safe_url(&u)
        ))
        .with_hint("the workflow or job needs `permissions: id-token: write`"));
    }
    reply
        .json::<Value>()
        .ok()
        .and_then(|v| v.get("value").and_then(Value::as_str).map(Secret::new))
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            Error::failed(format!(
                "the ID token answer from {} has no `value`",
                safe_url(&u)
            ))
        })
}

/// The longest bearer sent (ID tokens are a few kB; the broker refuses more).
pub const MAX_BEARER_LEN: usize = super::oidc::MAX_TOKEN_LEN;
/// The longest token accepted from a broker (GitHub's are 40 characters today).
pub const MAX_MINTED_LEN: usize = 512;

/// A bearer must be one HTTP header token: visible ASCII, bounded. The message
/// names the position, never the secret.
pub fn check_bearer(b: &str) -> Result<()> {
    let hint = "the ID token or client secret must be one line of visible ASCII (check the env var or file for a stray newline, space or quote)";
    if b.len() > MAX_BEARER_LEN {
        return Err(Error::config(format!(
            "the broker bearer is {} bytes long (at most {MAX_BEARER_LEN})",
            b.len()
        ))
        .with_hint(hint));
    }
    if let Some(i) = b.chars().position(|c| !c.is_ascii_graphic()) {
        return Err(Error::config(format!(
            "the broker bearer has a character that is not visible ASCII at position {}",
            i + 1
        ))
        .with_hint(hint));
    }
    Ok(())
}

/// A minted token from a broker must look like one (`[A-Za-z0-9_]`, bounded): it
/// goes into token files, env files and CI logs' masks, where `;`, quotes or a
/// newline could inject.
fn check_minted(t: &str) -> std::result::Result<(), String> {
    if t.is_empty() || t.len() > MAX_MINTED_LEN {
        return Err(format!("is {} bytes long (1 to {MAX_MINTED_LEN})", t.len()));
    }
    if !t.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') {
        return Err("has characters other than letters, digits and `_`".into());
    }
    Ok(())
}

/// `POST <url>/v1/token` → a minted token.
pub async fn request(http: &Http, base: &Url, policy: &str, bearer: &Secret) -> Result<Minted> {
    check_bearer(bearer.expose())?;
    let mut url = base.clone();
    let p = format!("{}/v1/token", base.path().trim_end_matches('/'));
    url.set_path(&p);
    let shown = safe_url(&url);
    let body = json!({ "policy": policy });
    let reply = http
        .send("token broker", Call::Safe, |c| {
            c.post(url.clone()).bearer_auth(bearer.expose()).json(&body)
        })
        .await
        .map_err(|f| {
            // The HTTP layer retries 429 and 5xx itself and then says which it got.
            let m = f.message();
            let hint = if m.contains("answered 429") {
                "the broker is rate-limiting this caller: try again in a minute; if it persists, its `rate_limit_per_minute` is too low for this caller"
            } else if m.contains("answered 502") {
                "GitHub refused the mint; the broker's audit log says why"
            } else {
                "check that the broker is running and reachable (`GET /healthz`)"
            };
            Error::failed(m.to_owned()).with_hint(hint)
        })?;
    let err_of = |r: &crate::http::Reply| {
        r.json::<Value>()
            .ok()
            .and_then(|v| {
                v.get("error")
                    .and_then(Value::as_str)
                    .map(crate::broker::escape)
            })
            .unwrap_or_else(|| r.snippet())
    };
    match reply.status.as_u16() {
        200 => {
            let v: Value = reply.json().map_err(|e| {
                Error::failed(format!("the broker's answer from {shown} is not JSON: {e}"))
            })?;
            let token = v
                .get("token")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| Error::failed(format!("the broker's answer from {shown} has no `token`")))?;
            check_minted(token).map_err(|e| {
                Error::failed(format!("the token in the broker's answer from {shown} {e}; refused"))
                    .with_hint("GitHub tokens are letters, digits and `_`; is the broker URL right and the broker evertoken?")
            })?;
            Ok(Minted {
                token: Secret::new(token),
                expires_at: v
                    .get("expires_at")
                    .and_then(Value::as_str)
                    .and_then(|e| e.parse::<Timestamp>().ok()),
                installation_id: v.get("installation_id").and_then(Value::as_u64).unwrap_or(0),
                notes: vec![format!("minted by the token broker {shown} under policy `{policy}`")],
            })
        }
        401 => Err(Error::failed(format!("the broker refused the credential (401 from {shown}): {}", err_of(&reply)))
            .with_hint("the ID token is expired, for another audience or from an unknown issuer, or the client secret is wrong")),
        403 => Err(Error::failed(format!("the broker refused policy `{policy}` (403 from {shown}): {}", err_of(&reply)))
            .with_hint("check the policy name and that its issuer/subject/claims (or client) match this caller")),
        404 => Err(Error::failed(format!("the broker answered 404 from {shown}: no such endpoint"))
            .with_hint("check the broker URL (scheme, host, port and any path prefix); the broker serves POST /v1/token")),
        413 => Err(Error::failed(format!("the broker refused the request as too large (413 from {shown})"))
            .with_hint("the broker takes bodies up to 16 KiB; is the policy name right?")),
        429 => Err(Error::failed(format!("the broker is rate-limiting this caller (429 from {shown}): {}", err_of(&reply)))
            .with_hint("try again in a minute; if it persists, the broker's `rate_limit_per_minute` is too low for this caller")),
        502 => Err(Error::failed(format!("the broker could not mint (502 from {shown}): {}", err_of(&reply)))
            .with_hint("GitHub refused the mint; the broker's audit log says why (app installation, repositories, permissions)")),
        st => Err(Error::failed(format!("the broker answered {st} from {shown}: {}", err_of(&reply)))
            .with_hint("check that the URL is the evertoken broker and look at its log")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_and_minted_token_shapes() {
        assert!(check_bearer("eyJh.eyJi.c2ln").is_ok());
        for bad in ["a\nb", "a b", "tok\u{e9}", "a\r"] {
            let e = check_bearer(bad).unwrap_err();
            assert!(e.to_string().contains("visible ASCII"), "{e}");
        }
        assert!(check_bearer(&"a".repeat(MAX_BEARER_LEN + 1)).is_err());
        assert!(check_minted("ghs_testFAKEnotarealtoken0123").is_ok());
        for bad in ["", "ghs_x;rm", "ghs_x\n::set-output", "ghs x", "ghs-x"] {
            assert!(check_minted(bad).is_err(), "{bad:?}");
        }
        assert!(check_minted(&"a".repeat(MAX_MINTED_LEN + 1)).is_err());
    }

    #[test]
    fn plain_http_only_on_loopback() {
        assert!(parse_url("http://127.0.0.1:8717").is_ok());
        assert!(parse_url("http://localhost:8717").is_ok());
        assert!(parse_url("http://[::1]:8717").is_ok());
        assert!(parse_url("https://broker.example.com").is_ok());
        assert!(parse_url("http://broker.example.com").is_err());
        assert!(parse_url("http://10.0.0.1").is_err());
        assert!(parse_url("ftp://127.0.0.1").is_err());
    }
}
