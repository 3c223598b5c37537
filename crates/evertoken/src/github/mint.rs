//! Minting an installation token: JWT → (installation lookup) →
//! `POST /app/installations/{id}/access_tokens`, optionally narrowed; clock-skew
//! recovery (one re-mint with the offset from GitHub's `Date` header); the optional
//! verify and revoke calls. GitHub's answers become errors that say what to do.
//! Tokens are opaque: nothing assumes a length or shape beyond being a string.

use jiff::Timestamp;
use reqwest::Method;
use serde_json::{Value, json};
use url::Url;

use super::app::{App, Issuer, Target};
use super::jwt;
use crate::clock::{self, Clock};
use crate::error::{Error, Result};
use crate::http::{Call, Http, Reply, safe_url};
use crate::secret::Secret;

const API_VERSION: &str = "2022-11-28";

/// A fresh token.
#[derive(Debug)]
pub struct Minted {
    pub token: Secret,
    pub expires_at: Option<Timestamp>,
    pub installation_id: u64,
    /// Things the user should know (clock skew corrected, installation looked up).
    pub notes: Vec<String>,
}

/// `api_url` + a REST path, keeping `api_url`'s own path (`/api/v3` on GHES).
pub fn api(base: &Url, path: &str) -> Url {
    let mut u = base.clone();
    let joined = format!("{}{}", base.path().trim_end_matches('/'), path);
    u.set_path(&joined);
    u.set_query(None);
    u.set_fragment(None);
    u
}

fn github_message(r: &Reply) -> String {
    r.json::<Value>()
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| r.snippet())
}

fn is_time_claim_error(msg: &str) -> bool {
    msg.contains("('exp')")
        || msg.contains("('iat')")
        || msg.contains("Expiration time")
        || msg.contains("Issued at")
}

/// Signs JWTs, remembering the clock offset learnt from GitHub.
struct Signer<'a> {
    key: jwt::LocalSigner,
    issuer: &'a Issuer,
    clock: &'a Clock,
    skew: i64,
    corrected: bool,
    notes: Vec<String>,
}

impl Signer<'_> {
    fn jwt(&self) -> Result<String> {
        jwt::sign(
            &self.key,
            self.issuer,
            self.clock.now().as_second() + self.skew,
        )
    }

    /// Sends a JWT-authenticated call; on a 401 about `iat`/`exp`, re-mints once
    /// with GitHub's clock.
    async fn send(
        &mut self,
        http: &Http,
        what: &str,
        method: Method,
        url: &Url,
        body: Option<&Value>,
    ) -> Result<Reply> {
        loop {
            let jwt = self.jwt()?;
            let reply = http
                .send(what, Call::Safe, |c| {
                    let mut rb = c
                        .request(method.clone(), url.clone())
                        .bearer_auth(&jwt)
                        .header("Accept", "application/vnd.github+json")
                        .header("X-GitHub-Api-Version", API_VERSION);
                    if let Some(b) = body {
                        rb = rb.json(b);
                    }
                    rb
                })
                .await
                .map_err(|f| {
                    Error::failed(f.message().to_owned()).with_hint(
                        "check the network and `api_url`; `evertoken github refresh` tries again",
                    )
                })?;
            if reply.status.as_u16() == 401
                && !self.corrected
                && is_time_claim_error(&github_message(&reply))
                && let Some(server) = reply.date()
            {
                let local = self.clock.now();
                self.skew = server.as_second() - local.as_second();
                self.corrected = true;
                self.notes.push(format!(
                    "GitHub rejected the JWT's time claims; the local clock ({}) is {} GitHub's ({}) by {}s, \
                     so the JWT was signed again with GitHub's time. Fix the host clock (NTP).",
                    clock::rfc3339(local),
                    if self.skew > 0 { "behind" } else { "ahead of" },
                    clock::rfc3339(server),
                    self.skew.abs()
                ));
                continue;
            }
            return Ok(reply);
        }
    }

    fn unauthorized(&self, reply: &Reply, url: &Url) -> Error {
        let msg = github_message(reply);
        let server = reply
            .date()
            .map(clock::rfc3339)
            .unwrap_or_else(|| "unknown".into());
        let local = clock::rfc3339(self.clock.now());
        let hint = if is_time_claim_error(&msg) {
            format!(
                "the JWT's time claims were rejected even with GitHub's clock (local {local}, GitHub's Date {server}); fix the host clock (NTP) and retry"
            )
        } else {
            format!(
                "check `app_id` ({}) and that the private key belongs to this app (download a new one from the app's settings); \
                 local clock {local}, GitHub's Date {server}",
                self.issuer
            )
        };
        Error::failed(format!(
            "GitHub rejected the app JWT (401 from {}): {msg}",
            safe_url(url)
        ))
        .with_hint(hint)
    }
}

/// Mints a new installation token for `app`.
pub async fn mint(app: &App, http: &Http, clock: &Clock) -> Result<Minted> {
    let issuer = app.require_issuer()?;
    let target = app.require_target()?;
    let key = jwt::load_key(&app.key_path)?;
    let mut s = Signer {
        key,
        issuer,
        clock,
        skew: 0,
        corrected: false,
        notes: Vec::new(),
    };
    let installation_id = match target {
        Target::Id(id) => *id,
        other => lookup(app, http, &mut s, other).await?,
    };
    let url = api(
        &app.api_url,
        &format!("/app/installations/{installation_id}/access_tokens"),
    );
    let mut body = serde_json::Map::new();
    if !app.repositories.is_empty() {
        body.insert("repositories".into(), json!(app.repositories));
    }
    if !app.repository_ids.is_empty() {
        body.insert("repository_ids".into(), json!(app.repository_ids));
    }
    if !app.permissions.is_empty() {
        body.insert("permissions".into(), json!(app.permissions));
    }
    let body = (!body.is_empty()).then_some(Value::Object(body));
    let reply = s
        .send(
            http,
            "GitHub installation token endpoint",
            Method::POST,
            &url,
            body.as_ref(),
        )
        .await?;
    let shown = safe_url(&url);
    match reply.status.as_u16() {
        200 | 201 => {
            let v: Value = reply.json().map_err(|e| {
                Error::failed(format!("GitHub's answer from {shown} is not JSON ({e}): {}", reply.snippet()))
                    .with_hint("check `api_url`: it must point at the REST API (https://api.github.com or https://HOST/api/v3)")
            })?;
            let token = v.get("token").and_then(Value::as_str).filter(|t| !t.is_empty()).ok_or_else(|| {
                Error::failed(format!("GitHub's answer from {shown} has no `token`"))
                    .with_hint("check `api_url`: it must point at the REST API")
            })?;
            let expires_at = v.get("expires_at").and_then(Value::as_str).and_then(|e| e.parse::<Timestamp>().ok());
            Ok(Minted { token: Secret::new(token), expires_at, installation_id, notes: s.notes })
        }
        401 => Err(s.unauthorized(&reply, &url)),
        403 => Err(Error::failed(format!(
            "GitHub refused a token for installation {installation_id} (403 from {shown}): {}",
            github_message(&reply)
        ))
        .with_hint("the installation may be suspended, or the request rate-limited; check the app's installation settings")),
        404 => Err(Error::failed(format!(
            "installation {installation_id} of {issuer} was not found (404 from {shown})"
        ))
        .with_hint(format!(
            "check `installation_id` ({installation_id}; github.com/settings/installations/N shows it) and `app_id`: \
             the installation must belong to this app. Or set `owner` to look it up."
        ))),
        422 => Err(Error::failed(format!(
            "GitHub would not narrow the token for installation {installation_id} (422 from {shown}): {}",
            github_message(&reply)
        ))
        .with_hint(
            "a repository in `repositories`/`repository_ids` or a level in `permissions` is not granted to this installation; \
             grant it in the app's installation settings or narrow less",
        )),
        st => Err(Error::failed(format!(
            "GitHub answered {st} from {shown}: {}",
            github_message(&reply)
        ))
        .with_hint("try again later; run with -vv for details")),
    }
}

async fn lookup(app: &App, http: &Http, s: &mut Signer<'_>, target: &Target) -> Result<u64> {
    let paths: Vec<String> = match target {
        Target::Id(id) => return Ok(*id),
        Target::Repository { owner, repo } => vec![format!("/repos/{owner}/{repo}/installation")],
        // An organisation, else a user: never "the first installation".
        Target::Owner(o) => vec![
            format!("/orgs/{o}/installation"),
            format!("/users/{o}/installation"),
        ],
    };
    for path in &paths {
        let url = api(&app.api_url, path);
        let reply = s
            .send(http, "GitHub installation lookup", Method::GET, &url, None)
            .await?;
        match reply.status.as_u16() {
            200 => {
                let id = reply
                    .json::<Value>()
                    .ok()
                    .and_then(|v| v.get("id").and_then(Value::as_u64));
                return match id {
                    Some(id) => {
                        s.notes.push(format!("found installation {id} for {target}; set `installation_id: {id}` to skip this lookup"));
                        Ok(id)
                    }
                    None => Err(Error::failed(format!(
                        "GitHub's answer from {} has no installation `id`",
                        safe_url(&url)
                    ))
                    .with_hint("check `api_url`")),
                };
            }
            404 => continue,
            401 => return Err(s.unauthorized(&reply, &url)),
            st => {
                return Err(Error::failed(format!(
                    "looking up {target} failed ({st} from {}): {}",
                    safe_url(&url),
                    github_message(&reply)
                ))
                .with_hint("set `installation_id` instead of `owner`"));
            }
        }
    }
    Err(
        Error::failed(format!("{} is not installed on {target} (404)", s.issuer)).with_hint(
            "install the app on that account or repository (the app's public page, Install), \
         or check `owner`/`repository`; `installation_id` names an installation directly",
        ),
    )
}

/// One cheap call with the new token: `GET /installation/repositories`.
pub async fn verify(app: &App, http: &Http, token: &Secret) -> Result<()> {
    let mut url = api(&app.api_url, "/installation/repositories");
    url.set_query(Some("per_page=1"));
    let reply = http
        .send("GitHub installation repositories", Call::Safe, |c| {
            c.get(url.clone())
                .bearer_auth(token.expose())
                .header("Accept", "application/vnd.github+json")
                .header("X-GitHub-Api-Version", API_VERSION)
        })
        .await
        .map_err(|f| Error::failed(format!("verifying the new token failed: {}", f.message())))?;
    if reply.status.is_success() {
        Ok(())
    } else {
        Err(Error::failed(format!(
            "the new token did not work ({} from {}): {}; the previous token file was kept",
            reply.status.as_u16(),
            safe_url(&url),
            github_message(&reply)
        ))
        .with_hint("check the installation's repository access; `verify: false` skips this check"))
    }
}

/// Revokes `token` (`DELETE /installation/token`). `Ok(false)` when GitHub no
/// longer knew it (expired or already revoked).
pub async fn revoke(app: &App, http: &Http, token: &Secret) -> Result<bool> {
    let url = api(&app.api_url, "/installation/token");
    let reply = http
        .send("GitHub token revocation", Call::Safe, |c| {
            c.delete(url.clone())
                .bearer_auth(token.expose())
                .header("Accept", "application/vnd.github+json")
                .header("X-GitHub-Api-Version", API_VERSION)
        })
        .await
        .map_err(|f| {
            Error::failed(format!(
                "revoking the previous token failed: {}",
                f.message()
            ))
        })?;
    match reply.status.as_u16() {
        204 | 200 => Ok(true),
        401 => Ok(false),
        st => Err(Error::failed(format!(
            "revoking the previous token failed ({st} from {}): {}",
            safe_url(&url),
            github_message(&reply)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keeps_the_ghes_prefix() {
        let ghes = Url::parse("https://ghe.example.com/api/v3").unwrap();
        assert_eq!(
            api(&ghes, "/app/installations/7/access_tokens").as_str(),
            "https://ghe.example.com/api/v3/app/installations/7/access_tokens"
        );
        let gh = Url::parse("https://api.github.com").unwrap();
        assert_eq!(
            api(&gh, "/installation/token").as_str(),
            "https://api.github.com/installation/token"
        );
    }
}
