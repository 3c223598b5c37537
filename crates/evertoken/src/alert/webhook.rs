//! Chat webhooks: Slack (`text` + Block Kit `blocks`), Discord (`content` +
//! `embeds`, within Discord's limits) and Microsoft Teams Workflows (a message
//! envelope around an Adaptive Card; Office 365 connectors are retired).
//!
//! The URL is a secret (whoever holds it can post): it is shown as scheme and
//! host only, and never logged: it goes through [`Http::send_hidden`], whose
//! messages name the call without its URL. 5xx, 429 and connection errors are
//! retried there like every other call; 429 waits for `Retry-After` or Discord's
//! JSON `retry_after`.
//! Sources: docs.slack.dev/messaging/sending-messages-using-incoming-webhooks,
//! docs.slack.dev/reference/block-kit/blocks, discord.com/developers/docs/resources/webhook,
//! discord.com/developers/docs/topics/rate-limits, learn.microsoft.com/connectors/teams
//! ("Post card in a chat or channel" via Workflows), adaptivecards.io/explorer.

use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use super::{Alert, AlertKind, Item, Level, Notifier};
use crate::env_vars;
use crate::error::Result;
use crate::http::{Call, Failure, Http};
use crate::section::{Ctx, Site};

/// `auth.alerts.webhook`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The incoming-webhook URL (a secret); `ALERT_WEBHOOK_URL` when empty.
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub format: Format,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("url", &self.url.as_ref().map(|_| "<redacted>"))
            .field("format", &self.format)
            .finish()
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Auto,
    Slack,
    Teams,
    Discord,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Slack => "slack",
            Format::Teams => "teams",
            Format::Discord => "discord",
        }
    }

    /// The format a webhook URL's host implies, if it is a known service.
    pub fn detect(url: &Url) -> Option<Format> {
        let host = url.host_str()?.to_ascii_lowercase();
        let is = |d: &str| host == d || host.ends_with(&format!(".{d}"));
        if is("slack.com") {
            Some(Format::Slack)
        } else if is("discord.com") || is("discordapp.com") {
            Some(Format::Discord)
        } else if is("logic.azure.com")
            || is("powerplatform.com")
            || is("powerautomate.com")
            || is("webhook.office.com")
        {
            Some(Format::Teams)
        } else {
            None
        }
    }
}

/// `https://hooks.slack.com/…`: the only form of a webhook URL shown anywhere.
pub fn redact(url: &Url) -> String {
    let host = url.host_str().unwrap_or("?");
    match url.port() {
        Some(p) => format!("{}://{host}:{p}/…", url.scheme()),
        None => format!("{}://{host}/…", url.scheme()),
    }
}

fn parse_url(site: &Site, raw: &str, from: &str) -> Result<Url> {
    let bad = |why: &str| {
        site.error_at(from, format!("the webhook URL is not usable: {why}"))
            .with_hint(
                "paste the incoming-webhook URL exactly as the chat service shows it (https://…)",
            )
    };
    let url = Url::parse(raw.trim()).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(bad("it must be an http(s) URL with a host"));
    }
    Ok(url)
}

fn resolve_format(site: &Site, url: &Url, format: Format) -> Result<Format> {
    match format {
        Format::Auto => Format::detect(url).ok_or_else(|| {
            site.error_at(
                "auth.alerts.webhook.format",
                format!(
                    "is `auto` but {} is not a known Slack, Teams or Discord host",
                    redact(url)
                ),
            )
            .with_hint("set `format: slack`, `teams` or `discord`")
        }),
        f => Ok(f),
    }
}

/// `auth.alerts.webhook`, resolved: the URL from the file (a secret, never shown
/// whole) with its format, or only the format when the URL comes from
/// `ALERT_WEBHOOK_URL` when the channel opens.
pub struct Settings {
    url: Option<Url>,
    format: Format,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("url", &self.url.as_ref().map(redact))
            .field("format", &self.format)
            .finish()
    }
}

impl Settings {
    pub fn resolve(c: Option<&Config>, site: &Site) -> Result<Settings> {
        let format = c.map(|c| c.format).unwrap_or_default();
        let url = match c
            .and_then(|c| c.url.as_deref())
            .filter(|u| !u.trim().is_empty())
        {
            Some(raw) => {
                crate::scrub::register_url(raw);
                Some(parse_url(site, raw, "auth.alerts.webhook.url")?)
            }
            None => None,
        };
        let format = match &url {
            Some(u) => resolve_format(site, u, format)?,
            None => format,
        };
        Ok(Settings { url, format })
    }
}

pub struct Webhook {
    url: Url,
    format: Format,
    http: Http,
    /// The status of the last successful post (202: accepted, not yet delivered).
    last_status: std::sync::atomic::AtomicU16,
}

impl Webhook {
    pub fn open(s: &Settings, ctx: &Ctx) -> Result<Webhook> {
        let (url, format) = match &s.url {
            Some(u) => (u.clone(), s.format),
            None => {
                let Some(raw) = std::env::var(env_vars::ALERT_WEBHOOK_URL)
                    .ok()
                    .filter(|u| !u.trim().is_empty())
                else {
                    return Err(ctx
                        .error_at("auth.alerts.webhook.url", format!("no webhook URL: the key is empty and {} is not set", env_vars::ALERT_WEBHOOK_URL))
                        .with_hint(format!("export {}=https://hooks.slack.com/services/… (keep it out of the config file: it is a secret)", env_vars::ALERT_WEBHOOK_URL)));
                };
                crate::scrub::register_url(&raw);
                let url = parse_url(ctx.site, &raw, env_vars::ALERT_WEBHOOK_URL)?;
                let format = resolve_format(ctx.site, &url, s.format)?;
                (url, format)
            }
        };
        Ok(Webhook {
            url,
            format,
            http: ctx.http.clone(),
            last_status: std::sync::atomic::AtomicU16::new(0),
        })
    }

    pub fn format(&self) -> Format {
        self.format
    }

    pub fn payload(&self, alert: &Alert) -> Value {
        match self.format {
            Format::Slack | Format::Auto => slack(alert),
            Format::Discord => discord(alert),
            Format::Teams => teams(alert),
        }
    }
}

#[async_trait::async_trait]
impl Notifier for Webhook {
    fn backend(&self) -> &'static str {
        "webhook"
    }

    fn describe(&self) -> String {
        format!("{} webhook {}", self.format.name(), redact(&self.url))
    }

    /// Power Automate (Teams Workflows) answers `202 Accepted` when the flow is
    /// triggered, before it posts to the channel: that is not a delivery.
    fn last_outcome(&self) -> &'static str {
        accepted_or_delivered(
            self.format,
            self.last_status.load(std::sync::atomic::Ordering::Relaxed),
        )
    }

    async fn send(&self, alert: &Alert) -> std::result::Result<(), String> {
        let body = self.payload(alert);
        let what = self.describe();
        // The URL is a secret: the shared HTTP layer names the call by `what`
        // only (scheme and host), and retries 5xx, 429 (honouring `Retry-After`
        // or Discord's JSON `retry_after`) and connection errors.
        let reply = self
            .http
            .send_hidden(&what, Call::Safe, |c| c.post(self.url.clone()).json(&body))
            .await
            .map_err(|f| match f {
                // The service's own words from its last answer.
                Failure::GaveUp {
                    message,
                    answer: Some(body),
                    ..
                } => format!("{message}{}", describe_error(&body)),
                f => f.message().to_owned(),
            })?;
        let status = reply.status;
        if status.is_success() {
            self.last_status
                .store(status.as_u16(), std::sync::atomic::Ordering::Relaxed);
            return Ok(());
        }
        Err(format!(
            "{what} answered {status}{}{}",
            describe_error(&reply.body),
            hint_for(self.format, status.as_u16())
        ))
    }
}

fn accepted_or_delivered(format: Format, status: u16) -> &'static str {
    if format == Format::Teams && status == 202 {
        "accepted"
    } else {
        "delivered"
    }
}

/// `: invalid_payload` / `: Cannot send an empty message`: the service's own words.
fn describe_error(body: &str) -> String {
    let msg = match serde_json::from_str::<Value>(body) {
        Ok(v) => v
            .get("message")
            .or_else(|| v.pointer("/error/message"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_default(),
        Err(_) => body.split_whitespace().collect::<Vec<_>>().join(" "),
    };
    let msg = crate::scrub::external_cut(&msg, 160);
    if msg.is_empty() || msg.starts_with('<') {
        String::new()
    } else {
        format!(": {msg}")
    }
}

fn hint_for(format: Format, status: u16) -> &'static str {
    match (format, status) {
        (_, 401 | 403 | 404 | 410) => {
            " (the webhook was removed, revoked or the URL is wrong: create a new one and update the URL)"
        }
        (Format::Slack | Format::Auto, 400) | (Format::Discord, 400) => {
            " (the service rejected the message; is `format` right for this URL?)"
        }
        (Format::Teams, 400) => {
            " (the workflow rejected the message; is `format: teams` right, and does the flow accept an Adaptive Card?)"
        }
        _ => "",
    }
}

/// Cuts `s` to at most `max` characters, marking the cut with `…`.
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Slack mrkdwn: `&`, `<`, `>` are control characters.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn footer(alert: &Alert) -> &'static str {
    match alert.kind {
        AlertKind::Test => "Test alert sent by `evertoken auth test-alert`.",
        AlertKind::Run => {
            "Sent by evertoken; an unchanged problem is repeated at most every auth.alerts.repeat_hours."
        }
    }
}

/// Slack limits: 50 blocks, header 150 characters, section text 3000.
pub fn slack(alert: &Alert) -> Value {
    const MAX_ITEMS: usize = 45;
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": cut(&alert.headline(), 150), "emoji": true}}),
    ];
    for i in alert.items.iter().take(MAX_ITEMS) {
        let mut t = format!(
            "*{}* — `{}`\n{}\n*Re-auth by:* {}",
            slack_escape(&i.who()),
            i.state.as_str(),
            slack_escape(&i.problem),
            i.deadline()
        );
        if let Some(f) = i.fix_markdown(slack_escape) {
            t.push_str(&format!("\n*Fix:* {f}"));
        }
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": cut(&t, 3000)}}));
    }
    if alert.items.len() > MAX_ITEMS {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("…and {} more: run `evertoken auth status`", alert.items.len() - MAX_ITEMS)}}));
    }
    if !alert.recovered.is_empty() {
        let lines: Vec<String> = alert
            .recovered
            .iter()
            .map(|r| {
                format!(
                    ":white_check_mark: *{}* is `{}` again",
                    slack_escape(&r.who),
                    r.state.as_str()
                )
            })
            .collect();
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": cut(&format!("*Recovered*\n{}", lines.join("\n")), 3000)}}));
    }
    if alert.kind == AlertKind::Test {
        blocks.insert(1, json!({"type": "section", "text": {"type": "mrkdwn", "text": "This is a *test alert*: if you can read it, delivery works. The entry below is a sample."}}));
    }
    blocks
        .push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": footer(alert)}]}));
    json!({"text": alert.headline(), "blocks": blocks})
}

fn colour(level: Option<Level>) -> u32 {
    match level {
        Some(Level::Urgent) => 0xD0_30_30,
        Some(Level::Soon) => 0xE6_7E_22,
        Some(Level::Notice) => 0xF1_C4_0F,
        None => 0x2E_CC_71,
    }
}

fn item_value(i: &Item, max: usize) -> String {
    let mut v = format!("{}\n**Re-auth by:** {}", i.problem, i.deadline());
    if let Some(f) = i.fix_markdown(str::to_owned) {
        v.push_str(&format!("\n**Fix:** {f}"));
    }
    cut(&v, max)
}

/// Discord limits: content 2000; 10 embeds; title 256; description 4096; 25
/// fields of name 256 / value 1024; 6000 characters across all embeds.
pub fn discord(alert: &Alert) -> Value {
    const TOTAL: usize = 6000;
    let title = cut(
        if alert.items.is_empty() {
            "Credentials that recovered"
        } else {
            "Credentials that need a human"
        },
        256,
    );
    let foot = footer(alert);
    let mut used = title.chars().count() + foot.chars().count();
    let mut fields = Vec::new();
    let mut shown = 0;
    for i in &alert.items {
        let name = cut(&format!("{} — {}", i.who(), i.state.as_str()), 256);
        let value = item_value(i, 1024);
        let cost = name.chars().count() + value.chars().count();
        // Keep room for the "…and N more" field and the recovered embed.
        if fields.len() == 24 || used + cost > TOTAL - 600 {
            break;
        }
        used += cost;
        fields.push(json!({"name": name, "value": value, "inline": false}));
        shown += 1;
    }
    if shown < alert.items.len() {
        let more = format!(
            "…and {} more: run `evertoken auth status`",
            alert.items.len() - shown
        );
        used += more.chars().count() + 1;
        fields.push(json!({"name": "More", "value": more, "inline": false}));
    }
    let mut embeds = Vec::new();
    if !alert.items.is_empty() {
        embeds.push(json!({"title": title, "color": colour(alert.level()), "fields": fields, "footer": {"text": foot}}));
    }
    if !alert.recovered.is_empty() {
        let lines: Vec<String> = alert
            .recovered
            .iter()
            .map(|r| format!("✅ **{}** is `{}` again", r.who, r.state.as_str()))
            .collect();
        let room = TOTAL.saturating_sub(used + 20).clamp(100, 4096);
        embeds.push(json!({"title": "Recovered", "color": colour(None), "description": cut(&lines.join("\n"), room)}));
    }
    let mut content = alert.headline();
    if alert.kind == AlertKind::Test {
        content.push_str("\nThis is a test alert: if you can read it, delivery works. The entry below is a sample.");
    }
    json!({
        "content": cut(&content, 2000),
        "embeds": embeds,
        // Never ping anyone from text that came from a provider.
        "allowed_mentions": {"parse": []},
    })
}

/// Teams Workflows: `{"type":"message","attachments":[{contentType: adaptive card, content}]}`.
pub fn teams(alert: &Alert) -> Value {
    let headline_colour = match alert.level() {
        Some(Level::Urgent) => "Attention",
        Some(Level::Soon | Level::Notice) => "Warning",
        None => "Good",
    };
    let mut body = vec![
        json!({"type": "TextBlock", "text": alert.headline(), "weight": "Bolder", "size": "Medium", "wrap": true, "color": headline_colour}),
    ];
    if alert.kind == AlertKind::Test {
        body.push(json!({"type": "TextBlock", "text": "This is a test alert: if you can read it, delivery works. The entry below is a sample.", "wrap": true, "isSubtle": true}));
    }
    for i in &alert.items {
        let mut facts = vec![
            json!({"title": "State", "value": i.state.as_str()}),
            json!({"title": "Re-auth by", "value": i.deadline()}),
        ];
        if let Some(f) = &i.fix {
            facts.push(json!({"title": "Fix", "value": f.to_string()}));
        }
        body.push(json!({
            "type": "Container",
            "separator": true,
            "items": [
                {"type": "TextBlock", "text": i.who(), "weight": "Bolder", "wrap": true},
                {"type": "TextBlock", "text": i.problem, "wrap": true},
                {"type": "FactSet", "facts": facts},
            ],
        }));
    }
    if !alert.recovered.is_empty() {
        let lines: Vec<String> = alert
            .recovered
            .iter()
            .map(|r| format!("- {} is {} again", r.who, r.state.as_str()))
            .collect();
        body.push(json!({"type": "TextBlock", "text": format!("Recovered\n\n{}", lines.join("\n")), "wrap": true, "color": "Good", "separator": true}));
    }
    body.push(json!({"type": "TextBlock", "text": footer(alert), "wrap": true, "isSubtle": true, "size": "Small"}));
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "msteams": {"width": "Full"},
                "body": body,
            },
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn format_is_detected_from_the_host() {
        assert_eq!(
            Format::detect(&u("https://hooks.slack.com/services/T0/B0/x")),
            Some(Format::Slack)
        );
        assert_eq!(
            Format::detect(&u("https://discord.com/api/webhooks/1/x")),
            Some(Format::Discord)
        );
        assert_eq!(
            Format::detect(&u("https://discordapp.com/api/webhooks/1/x")),
            Some(Format::Discord)
        );
        assert_eq!(
            Format::detect(&u("https://prod-01.westus.logic.azure.com:443/workflows/x")),
            Some(Format::Teams)
        );
        assert_eq!(
            Format::detect(&u(
                "https://x.environment.api.powerplatform.com/powerautomate/a"
            )),
            Some(Format::Teams)
        );
        assert_eq!(
            Format::detect(&u("https://contoso.webhook.office.com/webhookb2/x")),
            Some(Format::Teams)
        );
        assert_eq!(Format::detect(&u("https://example.com/hook")), None);
        assert_eq!(Format::detect(&u("https://notslack.com/hook")), None);
    }

    #[test]
    fn redact_keeps_scheme_and_host_only() {
        assert_eq!(
            redact(&u(
                "https://hooks.slack.com/services/T0/B0/test-not-a-real-secret"
            )),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            redact(&u("http://127.0.0.1:8080/webhook/slack/x?y=1")),
            "http://127.0.0.1:8080/…"
        );
    }

    #[test]
    fn discord_stays_within_its_limits() {
        let now: jiff::Timestamp = "2026-11-23T09:00:00Z".parse().unwrap();
        let mut a = super::super::sample(now);
        let one = a.items[0].clone();
        a.items = (0..60)
            .map(|n| {
                let mut i = one.clone();
                i.account = Some(format!("acct-{n}"));
                i.problem = "x".repeat(900);
                i
            })
            .collect();
        let v = discord(&a);
        assert!(v["content"].as_str().unwrap().chars().count() <= 2000);
        let embeds = v["embeds"].as_array().unwrap();
        assert!(embeds.len() <= 10);
        let total: usize = embeds
            .iter()
            .map(|e| {
                let f: usize = e["fields"]
                    .as_array()
                    .map(|fs| {
                        fs.iter()
                            .map(|f| {
                                f["name"].as_str().unwrap().chars().count()
                                    + f["value"].as_str().unwrap().chars().count()
                            })
                            .sum()
                    })
                    .unwrap_or(0);
                f + e["title"].as_str().map_or(0, |t| t.chars().count())
                    + e["description"].as_str().map_or(0, |t| t.chars().count())
                    + e["footer"]["text"]
                        .as_str()
                        .map_or(0, |t| t.chars().count())
            })
            .sum();
        assert!(total <= 6000, "{total}");
        let fields = embeds[0]["fields"].as_array().unwrap();
        assert!(fields.len() <= 25);
        assert!(
            fields.last().unwrap()["value"]
                .as_str()
                .unwrap()
                .contains("more")
        );
    }

    #[test]
    fn a_teams_202_is_accepted_not_delivered() {
        assert_eq!(accepted_or_delivered(Format::Teams, 202), "accepted");
        assert_eq!(accepted_or_delivered(Format::Teams, 200), "delivered");
        assert_eq!(accepted_or_delivered(Format::Slack, 202), "delivered");
    }

    #[test]
    fn slack_escapes_control_characters() {
        assert_eq!(slack_escape("a <b> & c"), "a &lt;b&gt; &amp; c");
    }
}
