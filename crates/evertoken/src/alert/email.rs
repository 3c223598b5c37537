//! Email over SMTP (lettre, rustls): `tls: starttls` (default, port 587),
//! `implicit` (TLS from the first byte, port 465) or `none` (plain text, for a
//! relay on this host only). `ca_file` adds a private CA to the trusted roots.
//! The SMTP login comes from `ALERT_SMTP_USERNAME` / `ALERT_SMTP_PASSWORD` and is
//! never written to the config, a message or a log.
//!
//! The message is plain text with a short subject naming the earliest deadline.

use std::path::PathBuf;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Mailboxes};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Deserialize;

use super::{Alert, Notifier};
use crate::env_vars;
use crate::error::Result;
use crate::http::{self, Attempt, Call, Decision, Failure, Http, Outcome};
use crate::secret::Secret;
use crate::section::{Ctx, Site};

/// `auth.alerts.email`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub host: String,
    /// Default: 587 for `starttls`, 465 for `implicit`, 25 for `none`.
    #[serde(default)]
    pub port: Option<u16>,
    pub from: String,
    pub to: Vec<String>,
    #[serde(default)]
    pub tls: TlsMode,
    /// A PEM file of CA certificates to trust besides the system's.
    #[serde(default)]
    pub ca_file: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    #[default]
    Starttls,
    Implicit,
    None,
}

impl TlsMode {
    fn default_port(self) -> u16 {
        match self {
            TlsMode::Starttls => 587,
            TlsMode::Implicit => 465,
            TlsMode::None => 25,
        }
    }
    fn name(self) -> &'static str {
        match self {
            TlsMode::Starttls => "starttls",
            TlsMode::Implicit => "implicit",
            TlsMode::None => "none",
        }
    }
}

fn is_local(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `auth.alerts.email`, resolved: parsed addresses, the port, the CA file's path.
/// The SMTP login comes from the environment when the channel opens.
#[derive(Debug, Clone)]
pub struct Settings {
    host: String,
    port: u16,
    tls: TlsMode,
    ca_file: Option<PathBuf>,
    from: Mailbox,
    to: Vec<Mailbox>,
}

impl Settings {
    pub fn resolve(c: Option<&Config>, site: &Site) -> Result<Settings> {
        let Some(c) = c else {
            return Err(site
                .error_at("auth.alerts.email", "is required when `backend: email`")
                .with_hint("for example `email: { host: smtp.example.com, from: evertoken@example.com, to: [ops@example.com] }`"));
        };
        let key = |k: &str| format!("auth.alerts.email.{k}");
        if c.host.trim().is_empty() {
            return Err(site
                .error_at(&key("host"), "is empty")
                .with_hint("the SMTP server, for example `smtp.example.com`"));
        }
        if c.port == Some(0) {
            return Err(site.error_at(&key("port"), "must be between 1 and 65535"));
        }
        let from: Mailbox = c.from.parse().map_err(|e| {
            site.error_at(&key("from"), format!("`{}` is not an email address: {e}", c.from))
                .with_hint("for example `from: evertoken@example.com` or `from: \"evertoken <alerts@example.com>\"`")
        })?;
        if c.to.is_empty() {
            return Err(site
                .error_at(&key("to"), "lists no recipient")
                .with_hint("for example `to: [ops@example.com]`"));
        }
        let mut to = Vec::new();
        for (n, t) in c.to.iter().enumerate() {
            to.push(t.parse::<Mailbox>().map_err(|e| {
                site.error_at(
                    &format!("auth.alerts.email.to[{n}]"),
                    format!("`{t}` is not an email address: {e}"),
                )
                .with_hint("for example `to: [ops@example.com]`")
            })?);
        }
        if c.tls == TlsMode::None && !is_local(&c.host) {
            return Err(site
                .error_at(&key("tls"), format!("`none` sends mail (and any login) in clear text; it is allowed for a relay on this host only, not `{}`", c.host))
                .with_hint("use `tls: starttls` (port 587) or `tls: implicit` (port 465)"));
        }
        if c.tls == TlsMode::None && c.ca_file.is_some() {
            return Err(site
                .error_at(&key("ca_file"), "has no effect with `tls: none`")
                .with_hint("remove it, or use `tls: starttls`"));
        }
        Ok(Settings {
            host: c.host.trim().to_owned(),
            port: c.port.unwrap_or(c.tls.default_port()),
            tls: c.tls,
            ca_file: c.ca_file.as_deref().map(|p| site.resolve_path(p)),
            from,
            to,
        })
    }
}

pub struct Email {
    host: String,
    port: u16,
    tls: TlsMode,
    ca_file: Option<PathBuf>,
    from: Mailbox,
    to: Vec<Mailbox>,
    login: Option<(String, Secret)>,
    http: Http,
}

impl Email {
    pub fn open(s: &Settings, ctx: &Ctx) -> Result<Email> {
        let user = std::env::var(env_vars::ALERT_SMTP_USERNAME)
            .ok()
            .filter(|v| !v.is_empty());
        let pass = std::env::var(env_vars::ALERT_SMTP_PASSWORD)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .map(|v| Secret::from_outside(v, &format!("${}", env_vars::ALERT_SMTP_PASSWORD)));
        let login = match (user, pass) {
            (Some(u), Some(p)) => Some((u, p)),
            (None, None) => None,
            (Some(_), None) | (None, Some(_)) => {
                return Err(crate::error::Error::config(format!(
                    "email alerts: set both {} and {}, or neither (for a relay that needs no login)",
                    env_vars::ALERT_SMTP_USERNAME,
                    env_vars::ALERT_SMTP_PASSWORD
                ))
                .with_hint("export the missing one"));
            }
        };
        let s = s.clone();
        Ok(Email {
            host: s.host,
            port: s.port,
            tls: s.tls,
            ca_file: s.ca_file,
            from: s.from,
            to: s.to,
            login,
            // The SMTP transport takes the timeout; retries go through `http`.
            http: ctx.http.clone(),
        })
    }

    fn transport(&self) -> std::result::Result<AsyncSmtpTransport<Tokio1Executor>, String> {
        let tls = match self.tls {
            TlsMode::None => Tls::None,
            mode => {
                crate::http::install_crypto_provider();
                let mut b = TlsParameters::builder(self.host.clone());
                if let Some(path) = &self.ca_file {
                    let pem = std::fs::read(path).map_err(|e| {
                        format!(
                            "cannot read auth.alerts.email.ca_file {}: {e}",
                            path.display()
                        )
                    })?;
                    let cert = Certificate::from_pem(&pem).map_err(|e| {
                        format!(
                            "auth.alerts.email.ca_file {} holds no usable PEM certificate: {e}",
                            path.display()
                        )
                    })?;
                    b = b.add_root_certificate(cert);
                }
                let params = b
                    .build_rustls()
                    .map_err(|e| format!("cannot set up TLS for {}: {e}", self.host))?;
                if mode == TlsMode::Implicit {
                    Tls::Wrapper(params)
                } else {
                    Tls::Required(params)
                }
            }
        };
        let mut t = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(self.host.as_str())
            .port(self.port)
            .tls(tls)
            .timeout(Some(self.http.timeout()));
        if let Some((u, p)) = &self.login {
            t = t.credentials(Credentials::new(u.clone(), p.expose().to_owned()));
        }
        Ok(t.build())
    }

    pub fn message(&self, alert: &Alert) -> std::result::Result<Message, String> {
        let mut b = Message::builder()
            .from(self.from.clone())
            .subject(subject(alert))
            .header(ContentType::TEXT_PLAIN);
        let to: Mailboxes = self.to.iter().cloned().collect();
        for m in to {
            b = b.to(m);
        }
        b.body(alert.plain_text())
            .map_err(|e| format!("cannot build the email: {e}"))
    }
}

/// `[evertoken] URGENT: LinkedIn must be re-authorised by 2026-11-28`: the headline,
/// short enough for a phone's notification.
pub fn subject(alert: &Alert) -> String {
    let h = alert.headline();
    let h = if h.chars().count() > 110 {
        format!("{}…", h.chars().take(109).collect::<String>())
    } else {
        h
    };
    format!("[evertoken] {h}")
}

#[async_trait::async_trait]
impl Notifier for Email {
    fn backend(&self) -> &'static str {
        "email"
    }

    fn describe(&self) -> String {
        format!(
            "SMTP server {}:{} (tls: {})",
            self.host,
            self.port,
            self.tls.name()
        )
    }

    async fn send(&self, alert: &Alert) -> std::result::Result<(), String> {
        let transport = self.transport()?;
        let message = self.message(alert)?;
        let what = self.describe();
        // One retry loop and one classifier for every transport: the SMTP
        // answer is reduced to an [`Outcome`] and decided like an HTTP one.
        self.http
            .retrying(|| async {
                let e = match transport.send(message.clone()).await {
                    Ok(_) => return Ok(()),
                    Err(e) => e,
                };
                let outcome = outcome(&e);
                let hint = match outcome {
                    Outcome::Smtp { code: 500.. } => {
                        " (the server refused the message: check from/to and, if it needs a login, ALERT_SMTP_USERNAME / ALERT_SMTP_PASSWORD)"
                    }
                    Outcome::Untrusted => {
                        " (the server's certificate is not trusted: set auth.alerts.email.ca_file to its CA)"
                    }
                    _ => "",
                };
                let message = format!("{what}: {}", http::chain(&e));
                Err(match http::classify(Call::Safe, outcome) {
                    Decision::Retry { after } => Attempt::Retry {
                        message,
                        after,
                        last: outcome,
                        answer: None,
                    },
                    Decision::Stop | Decision::Unknown | Decision::Answer => {
                        Attempt::Stop(Failure::GaveUp {
                            message: format!("{message}{hint}"),
                            last: outcome,
                            answer: None,
                        })
                    }
                })
            })
            .await
            .map_err(|f| f.message().to_owned())
    }
}

/// What a failed SMTP exchange came to: the typed error, never its text.
fn outcome(e: &lettre::transport::smtp::Error) -> Outcome {
    if http::untrusted(e) {
        Outcome::Untrusted
    } else if let Some(c) = e.status() {
        Outcome::Smtp {
            code: u16::from(c.severity as u8) * 100
                + u16::from(c.category as u8) * 10
                + u16::from(c.detail as u8),
        }
    } else if e.is_client() || e.is_response() || e.is_tls() {
        Outcome::Broken
    } else {
        // Connection, network, timeout: the message may not have left.
        Outcome::NoAnswer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_none_only_on_this_host() {
        assert!(is_local("127.0.0.1"));
        assert!(is_local("localhost"));
        assert!(is_local("[::1]"));
        assert!(!is_local("smtp.example.com"));
        assert!(!is_local("10.0.0.2"));
    }

    #[test]
    fn subject_names_the_deadline() {
        let now: jiff::Timestamp = "2026-11-23T09:00:00Z".parse().unwrap();
        let s = subject(&super::super::sample(now));
        assert!(
            s.starts_with("[evertoken] [TEST] Action needed soon:"),
            "{s}"
        );
        assert!(s.contains("2026-11-28"), "{s}");
    }
}
