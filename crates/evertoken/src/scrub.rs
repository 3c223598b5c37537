//! The one scrubber for text from outside the process. Every secret value the run
//! knows (each [`crate::secret::Secret`] registers itself when created; webhook
//! URL paths and passwords, SMTP passwords and keys are registered by their
//! readers) is replaced by its prefix form, and control characters are escaped,
//! before provider or webhook bodies, errors, alerts and log lines are shown,
//! logged or sent.
//!
//! It owns the registry of known secret values and the escaping rules. It never
//! logs, and never returns a registered value whole.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, OnceLock, PoisonError};

use secrecy::{ExposeSecret, SecretString};

use crate::secret::Prefix;

/// Values shorter than this are not scrubbed: they are not secrets evertoken
/// holds (tokens, client secrets and keys are longer) and would mangle ordinary words.
pub const MIN_LEN: usize = 8;
/// The registry key: the first bytes of each value.
const KEY: usize = 8;

#[derive(Default)]
struct Registry {
    /// Values by their first bytes, longest first within a bucket, no repeats.
    by_head: HashMap<[u8; KEY], Vec<SecretString>>,
    /// Values registered since the last scrub: indexed (sorted, deduplicated)
    /// only when text is scrubbed, so a run that reads 20,000 tokens and
    /// scrubs nothing (`auth status`) pays one push per value.
    pending: Vec<SecretString>,
    /// One bit per possible first two bytes of a value: the scan looks a
    /// position up in `by_head` only when its two bytes start some value.
    lead: Vec<u64>,
}

/// The bit of `lead` for the two bytes `a`, `b`: (word, mask).
fn lead_bit(a: u8, b: u8) -> (usize, u64) {
    let i = (usize::from(a) << 8) | usize::from(b);
    (i / 64, 1u64 << (i % 64))
}

impl Registry {
    /// Moves the pending values into their buckets, then restores each touched
    /// bucket's order (longest first, so a value that extends another is
    /// replaced whole) and drops repeats.
    fn settle(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        if self.lead.is_empty() {
            self.lead = vec![0; 65536 / 64];
        }
        let mut touched = HashSet::new();
        for v in std::mem::take(&mut self.pending) {
            let mut head = [0u8; KEY];
            head.copy_from_slice(&v.expose_secret().as_bytes()[..KEY]);
            self.by_head.entry(head).or_default().push(v);
            touched.insert(head);
            let (w, m) = lead_bit(head[0], head[1]);
            self.lead[w] |= m;
        }
        for head in touched {
            if let Some(list) = self.by_head.get_mut(&head) {
                list.sort_by(|a, b| {
                    let (a, b) = (a.expose_secret(), b.expose_secret());
                    b.len().cmp(&a.len()).then_with(|| a.cmp(b))
                });
                list.dedup_by(|a, b| a.expose_secret() == b.expose_secret());
            }
        }
    }
}

fn registry() -> &'static Mutex<Registry> {
    static R: OnceLock<Mutex<Registry>> = OnceLock::new();
    R.get_or_init(Default::default)
}

/// Makes `value` (and its URL-encoded form) known to the scrubber for the rest of
/// the process. Short values are ignored (see [`MIN_LEN`]).
pub fn register(value: &str) {
    let v = value.trim();
    if v.len() < MIN_LEN {
        return;
    }
    // The forms a provider may echo it in: as it is, URL-encoded (upper- and
    // lowercase hex: .NET's `UrlEncode` writes `%2f`), and with `/` escaped as
    // JSON allows (`1\/\/0g…`, PHP's default).
    // (Most tokens have none of these characters: one form, no extra work.)
    let mut forms = vec![v.to_owned()];
    if let std::borrow::Cow::Owned(encoded) = urlencoding::encode(v) {
        let lower_hex = lowercase_escapes(&encoded);
        if lower_hex != encoded {
            forms.push(lower_hex);
        }
        forms.push(encoded);
    }
    if v.contains('/') {
        forms.push(v.replace('/', "\\/"));
    }
    let mut r = registry().lock().unwrap_or_else(PoisonError::into_inner);
    for f in forms {
        r.pending.push(SecretString::from(f));
    }
}

/// `%2F` → `%2f`: the hex digits of each percent-escape in lowercase.
fn lowercase_escapes(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len());
    let mut hex_left = 0;
    for c in encoded.chars() {
        if hex_left > 0 {
            out.push(c.to_ascii_lowercase());
            hex_left -= 1;
        } else {
            if c == '%' {
                hex_left = 2;
            }
            out.push(c);
        }
    }
    out
}

/// Registers each piece of a multi-line secret (a PEM key) long enough to matter.
pub fn register_lines(value: &str) {
    register(value);
    for line in value.lines() {
        if line.len() >= 16 && !line.starts_with("-----") {
            register(line);
        }
    }
}

/// Registers the secret parts of a URL: the password, the username when a
/// password is present, each path segment of 16 characters or more (webhook URLs
/// carry their secret in the path) and each query value.
pub fn register_url(url: &str) {
    let Ok(u) = url::Url::parse(url.trim()) else {
        register(url);
        return;
    };
    if let Some(p) = u.password() {
        register(p);
        if let Ok(p) = urlencoding::decode(p) {
            register(&p);
        }
        register(u.username());
    }
    if let Some(segs) = u.path_segments() {
        for s in segs.filter(|s| s.len() >= 16) {
            register(s);
        }
    }
    let path = u.path();
    if path.len() >= 16 {
        register(path.trim_start_matches('/'));
    }
    for (_, v) in u.query_pairs() {
        register(&v);
    }
}

/// Replaces every known secret in `text` by its prefix form, and every JWT
/// (`eyJ….….…`, such as the GitHub App's bearer JWT or an `id_token`, which no
/// registry sees) too. Control characters are left alone (see [`external`]).
pub fn secrets(text: &str) -> String {
    secrets_in(text).into_owned()
}

/// [`secrets`], borrowing `text` when it holds none (the common case: no
/// allocation for each cell of a 10,000-row table).
fn secrets_in(text: &str) -> Cow<'_, str> {
    match registered(text, prefix_form) {
        Cow::Borrowed(t) => jwts(t, prefix_form),
        Cow::Owned(t) => Cow::Owned(jwts(&t, prefix_form).into_owned()),
    }
}

/// For alerts, which carry no part of a secret, not even its prefix: every known
/// secret and every JWT replaced by `[token]`, controls escaped.
pub fn hidden(text: &str) -> String {
    let token = |_: &str| "[token]".to_owned();
    escape_controls(&jwts(&registered(text, token), token)).into_owned()
}

fn prefix_form(hit: &str) -> String {
    Prefix::of(hit).as_str().to_owned()
}

/// Replaces JWT-shaped runs (three base64url segments, the first starting `eyJ`).
fn jwts(text: &str, replace: impl Fn(&str) -> String) -> Cow<'_, str> {
    if !text.contains("eyJ") {
        return Cow::Borrowed(text);
    }
    let b64 = |c: u8| c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
    let bytes = text.as_bytes();
    // Allocated at the first hit: most text holds no secret.
    let mut out = String::new();
    let mut copied = 0;
    let mut from = 0;
    while let Some(rel) = text[from..].find("eyJ") {
        let start = from + rel;
        // Three segments of at least 4 characters, separated by single dots.
        let mut i = start;
        let mut segments = 0;
        loop {
            let seg_start = i;
            while i < bytes.len() && b64(bytes[i]) {
                i += 1;
            }
            if i - seg_start < 4 {
                break;
            }
            segments += 1;
            if segments == 3 || i >= bytes.len() || bytes[i] != b'.' {
                break;
            }
            i += 1;
        }
        let starts_word = start == 0 || !b64(bytes[start - 1]);
        if segments == 3 && starts_word {
            if out.is_empty() {
                out.reserve(text.len());
            }
            out.push_str(&text[copied..start]);
            out.push_str(&replace(&text[start..i]));
            copied = i;
            from = i;
        } else {
            from = start + 3;
        }
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

fn registered(text: &str, replace: impl Fn(&str) -> String) -> Cow<'_, str> {
    // A panic elsewhere while the registry was held does not switch scrubbing
    // off: the values in it are still the ones to hide.
    let mut r = registry().lock().unwrap_or_else(PoisonError::into_inner);
    r.settle();
    if r.by_head.is_empty() || text.len() < MIN_LEN {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    // Allocated at the first hit: most text holds no secret.
    let mut out = String::new();
    let mut i = 0;
    let mut copied = 0;
    while i + KEY <= bytes.len() {
        let (w, m) = lead_bit(bytes[i], bytes[i + 1]);
        if r.lead[w] & m == 0 {
            i += 1;
            continue;
        }
        if text.is_char_boundary(i) {
            let mut head = [0u8; KEY];
            head.copy_from_slice(&bytes[i..i + KEY]);
            if let Some(list) = r.by_head.get(&head)
                && let Some(hit) = list
                    .iter()
                    .map(|s| s.expose_secret())
                    .find(|s| text[i..].starts_with(s))
            {
                if out.is_empty() {
                    out.reserve(text.len());
                }
                out.push_str(&text[copied..i]);
                out.push_str(&replace(hit));
                i += hit.len();
                copied = i;
                continue;
            }
        }
        i += 1;
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// True for characters that must never reach a terminal raw from outside text:
/// C0 and C1 controls (ESC, BEL, CR, NUL, …), the line and paragraph separators
/// (U+2028, U+2029: line breaks to JavaScript and some log viewers) and the
/// invisible bidi/format characters that reorder or hide text.
fn dangerous(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// Escapes every dangerous character, newlines and tabs included (`\u{1b}`, `\n`),
/// so text from outside is one inert line.
pub fn escape_controls(s: &str) -> Cow<'_, str> {
    let clean = if s.is_ascii() {
        !s.bytes().any(|b| b < 0x20 || b == 0x7f)
    } else {
        !s.chars().any(dangerous)
    };
    if clean {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if dangerous(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Escapes dangerous characters but keeps `\n` (for multi-line messages evertoken
/// builds itself, whose parts from outside were already made inert).
pub fn escape_controls_keep_newlines(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c != '\n' && dangerous(c)) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.split('\n')
            .map(escape_controls)
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

/// A JSON document made inert for a terminal: every dangerous character that
/// JSON does not escape itself (DEL, C1 controls, bidi and zero-width
/// characters, U+2028/U+2029) written as its `\uXXXX` escape. They can only
/// stand inside strings, where the escape means the same character, so the
/// document's data is unchanged.
pub fn json_inert(json: &str) -> Cow<'_, str> {
    // Below U+0020 JSON escapes inside strings itself; what is left there is
    // the document's own whitespace.
    let unescaped = |c: char| u32::from(c) >= 0x20 && dangerous(c);
    if !json.chars().any(unescaped) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if unescaped(c) {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Text from outside (a provider or webhook body, an error a library built from
/// one): known secrets replaced by their prefix form, controls escaped.
pub fn external(text: &str) -> Cow<'_, str> {
    match secrets_in(text) {
        Cow::Borrowed(t) => escape_controls(t),
        Cow::Owned(t) => Cow::Owned(escape_controls(&t).into_owned()),
    }
}

/// [`external`], then cut to `max_chars` (with `…`): scrubbed first, so a cut
/// never leaves most of a secret behind.
pub fn external_cut(text: &str, max_chars: usize) -> String {
    let clean = external(text);
    match clean.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}…", &clean[..i]),
        None => clean.into_owned(),
    }
}

/// A line about to be shown, logged or alerted: known secrets replaced, controls
/// escaped except line breaks.
pub fn shown(text: &str) -> String {
    escape_controls_keep_newlines(&secrets_in(text)).into_owned()
}

/// The log sink: each formatted log line is scrubbed of known secrets (and, when
/// colour is off, of control characters) before it reaches stderr.
#[derive(Clone, Copy, Debug)]
pub struct LogWriter {
    /// Escape control characters (off when the log itself is coloured).
    pub escape: bool,
}

/// One log event's bytes, scrubbed and written on drop.
pub struct LogLine {
    buf: Vec<u8>,
    escape: bool,
}

impl std::io::Write for LogLine {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.buf);
        let text = if self.escape {
            shown(&text)
        } else {
            secrets(&text)
        };
        let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), text.as_bytes());
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogLine;
    fn make_writer(&'a self) -> LogLine {
        LogLine {
            buf: Vec::new(),
            escape: self.escape,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn known_secrets_become_prefixes_and_escapes_are_inert() {
        register("rft.scrub-test-refresh-token-0123456789");
        let s = external(
            "invalid_grant: token rft.scrub-test-refresh-token-0123456789 \u{1b}]0;owned\u{7}\u{1b}[2J\nall good",
        );
        assert!(!s.contains("refresh-token-0123456789"), "{s}");
        assert!(s.contains("rft.scru…"), "{s}");
        assert!(!s.chars().any(|c| c.is_control()), "{s}");
        assert!(s.contains("\\u{1b}"), "{s}");
    }

    #[test]
    fn echoed_forms_of_a_secret_are_scrubbed_too() {
        // Google-style refresh tokens hold `/`: PHP's JSON writes `\/`, .NET's
        // UrlEncode lowercase `%2f`, others uppercase `%2F`.
        register("1//0gSCRUBtestRefreshTOKENvalue0123456789");
        for echoed in [
            "1//0gSCRUBtestRefreshTOKENvalue0123456789",
            "1\\/\\/0gSCRUBtestRefreshTOKENvalue0123456789",
            "1%2f%2f0gSCRUBtestRefreshTOKENvalue0123456789",
            "1%2F%2F0gSCRUBtestRefreshTOKENvalue0123456789",
        ] {
            let s = secrets(&format!("{{\"message\":\"invalid token {echoed}\"}}"));
            assert!(!s.contains("RefreshTOKENvalue0123456789"), "{echoed}: {s}");
        }
    }

    #[test]
    fn a_cut_comes_after_the_scrub() {
        register("IGQVJscrubCUTtestTOKENvalue0123456789abcdef");
        let msg = format!(
            "{} IGQVJscrubCUTtestTOKENvalue0123456789abcdef",
            "x".repeat(154)
        );
        let s = external_cut(&msg, 200);
        assert!(!s.contains("TOKENvalue0123456789"), "{s}");
        let long = external_cut(&"y".repeat(300), 200);
        assert_eq!(long.chars().count(), 201, "200 characters and the ellipsis");
        assert!(long.ends_with('…'));
    }

    #[test]
    fn json_documents_are_made_inert_without_changing_their_data() {
        let v = serde_json::json!({"account": "c1\u{9b}2J del\u{7f}x bidi\u{202e}evil\u{2066} zw\u{200b}", "n": 1});
        let text = serde_json::to_string_pretty(&v).unwrap();
        let inert = json_inert(&text);
        assert!(!inert.chars().any(|c| c != '\n' && dangerous(c)), "{inert}");
        let back: serde_json::Value = serde_json::from_str(&inert).unwrap();
        assert_eq!(back, v, "the same data");
        assert!(matches!(json_inert("{\n  \"a\": 1\n}"), Cow::Borrowed(_)));
    }

    #[test]
    fn jwts_are_scrubbed_without_registration() {
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOjQyNDIsImV4cCI6MX0.c2lnbmF0dXJlLWJ5dGVzLWhlcmU";
        let s = secrets(&format!("Bearer {jwt} rejected"));
        assert!(!s.contains("c2lnbmF0dXJl"), "{s}");
        assert!(s.starts_with("Bearer eyJhbGci…"), "{s}");
        assert_eq!(secrets("eyJ only.short"), "eyJ only.short");
    }

    #[test]
    fn url_secrets_are_registered() {
        register_url(
            "https://user:p%40ssw0rd-webhook-pass@hooks.example/services/T000/B000/XXXXscrubtestpathsecret",
        );
        let s =
            secrets("POST failed: 500 invalid XXXXscrubtestpathsecret for p@ssw0rd-webhook-pass");
        assert!(!s.contains("XXXXscrubtestpathsecret"), "{s}");
        assert!(!s.contains("p@ssw0rd-webhook-pass"), "{s}");
    }

    proptest! {
        #[test]
        fn never_panics_and_never_leaves_a_registered_value(pre in "\\PC{0,40}", post in "\\PC{0,40}", secret in "[A-Za-z0-9._-]{8,40}") {
            register(&secret);
            let s = external(&format!("{pre}{secret}{post}")).into_owned();
            prop_assert!(!s.chars().any(dangerous));
            let wrapped = format!("<{}>", secret);
            let scrubbed = secrets(&wrapped);
            prop_assert!(!scrubbed.contains(&secret));
        }
    }
}
