//! Configuration: where it is found, how it is parsed, and the errors a
//! user sees. Unknown keys are errors that name the key's path and suggest the
//! closest known key; every error names the file. Each provider, store and alert
//! channel owns the struct of its own block; this module only assembles them.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::http::Http;
use crate::section::{Ctx, Site};
use crate::{alert, env_vars, files, github, provider, store};

/// The whole file, as written by the user.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub platforms: provider::PlatformsConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub github: github::GithubConfig,
    #[serde(default)]
    pub http: HttpConfig,
    /// `evertoken broker serve` (issue 16).
    #[serde(default)]
    pub broker: Option<crate::broker::BrokerConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Where the rotation journal, locks and alert state live.
    #[serde(default)]
    pub journal_dir: Option<String>,
    #[serde(default)]
    pub writeback: store::WritebackConfig,
    #[serde(default)]
    pub alerts: alert::AlertsConfig,
}

/// Shared HTTP behaviour for every provider call.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Per-request timeout.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: f64,
    /// Retries after the first attempt, for transient failures.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Longest `Retry-After` evertoken waits for before giving up on that call.
    #[serde(default = "default_max_retry_after")]
    pub max_retry_after_seconds: u64,
}

fn default_timeout() -> f64 {
    30.0
}
fn default_retries() -> u32 {
    3
}
fn default_max_retry_after() -> u64 {
    60
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            timeout_seconds: default_timeout(),
            retries: default_retries(),
            max_retry_after_seconds: default_max_retry_after(),
        }
    }
}

/// A loaded configuration and where it came from.
#[derive(Debug)]
pub struct Config {
    pub file: FileConfig,
    /// The file it was read from; `None` when no file exists (defaults only).
    pub path: Option<PathBuf>,
    /// Relative paths in the config resolve against this directory.
    pub base_dir: PathBuf,
    /// The file and directory, as sections see them.
    pub site: Site,
    /// `auth.writeback`, resolved once at load: the selected store's settings.
    pub writeback: store::Writeback,
    /// `auth.alerts`, resolved once at load: the channel's settings, if any.
    pub alerts: alert::Alerts,
}

impl Config {
    /// Finds the config file: `--config`, `$EVERTOKEN_CONFIG`, `./evertoken.yaml`,
    /// `$XDG_CONFIG_HOME/evertoken/config.yaml`. A path given explicitly must exist.
    pub fn locate(explicit: Option<&Path>) -> Result<Option<PathBuf>> {
        if let Some(p) = explicit {
            return exists_or_error(p, "--config");
        }
        if let Some(p) = std::env::var_os(env_vars::EVERTOKEN_CONFIG).filter(|v| !v.is_empty()) {
            return exists_or_error(Path::new(&p), env_vars::EVERTOKEN_CONFIG);
        }
        let cwd = PathBuf::from("evertoken.yaml");
        if cwd.is_file() {
            return Ok(Some(std::path::absolute(&cwd).unwrap_or(cwd)));
        }
        let xdg = files::default_config_dir().join("config.yaml");
        Ok(xdg.is_file().then_some(xdg))
    }

    /// Where `locate` looked, for the "no configuration found" message.
    pub fn search_order() -> String {
        format!(
            "--config, ${}, ./evertoken.yaml, {}",
            env_vars::EVERTOKEN_CONFIG,
            files::default_config_dir().join("config.yaml").display()
        )
    }

    /// Loads the config file found by [`Config::locate`], or the defaults if none.
    pub fn load(explicit: Option<&Path>) -> Result<Config> {
        match Self::locate(explicit)? {
            Some(path) => Self::load_file(&path),
            None => Self::resolve(
                FileConfig::default(),
                None,
                std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
            ),
        }
    }

    pub fn load_file(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::config(format!("cannot read config file {}: {e}", path.display()))
                .with_hint("check the path and its permissions")
        })?;
        let file = parse(&text, path)?;
        let base_dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Self::resolve(file, Some(path.to_path_buf()), base_dir)
    }

    /// A config from YAML text, as if read from `/test/evertoken.yaml` (unit tests).
    #[cfg(test)]
    pub(crate) fn from_text(text: &str) -> Result<Config> {
        let path = Path::new("/test/evertoken.yaml");
        Self::resolve(parse(text, path)?, Some(path.to_path_buf()), "/test".into())
    }

    /// Checks the file and resolves its sections, once: building the resolved
    /// values is the validation, so an invalid combination is an error (exit 2)
    /// naming its key, and never a value later code must re-check.
    fn resolve(file: FileConfig, path: Option<PathBuf>, base_dir: PathBuf) -> Result<Config> {
        let site = Site::new(path.as_deref(), &base_dir);
        let mut cfg = Config {
            file,
            path,
            base_dir,
            site,
            writeback: store::Writeback::default(),
            alerts: alert::Alerts::default(),
        };
        cfg.check_ranges()?;
        provider::validate(&cfg)?;
        cfg.writeback = store::Writeback::resolve(&cfg.file.auth.writeback, &cfg.site)?;
        cfg.alerts = alert::Alerts::resolve(&cfg.file.auth.alerts, &cfg.site)?;
        github::validate(&cfg)?;
        let h = &cfg.file.http;
        if !(h.timeout_seconds > 0.0 && h.timeout_seconds.is_finite()) {
            return Err(cfg
                .error_at(
                    "http.timeout_seconds",
                    "must be a positive number of seconds",
                )
                .with_hint("for example `timeout_seconds: 30`"));
        }
        Ok(cfg)
    }

    /// Writes back to `backend` instead of the configured one (`auth login
    /// --store`): its section is resolved again, with the same checks.
    pub fn use_backend(&mut self, backend: store::Backend) -> Result<()> {
        self.file.auth.writeback.backend = backend;
        self.writeback = store::Writeback::resolve(&self.file.auth.writeback, &self.site)?;
        Ok(())
    }

    /// What a store or alert channel is opened with.
    pub fn ctx<'a>(&'a self, http: &'a Http) -> Ctx<'a> {
        Ctx {
            site: &self.site,
            http,
        }
    }

    /// Opens the configured write-back store.
    pub fn open_store(&self, http: &Http) -> Result<std::sync::Arc<dyn store::Store>> {
        self.writeback.open(&self.ctx(http))
    }

    /// Builds the configured alert channel; `Ok(None)` for `backend: none`.
    pub fn notifier(&self, http: &Http) -> Result<Option<Box<dyn alert::Notifier>>> {
        self.alerts.notifier(&self.ctx(http))
    }

    /// The file name for messages: the path, or "(no config file)".
    pub fn display_path(&self) -> String {
        self.site.file.clone()
    }

    /// Resolves a path from the config: `~` expands, relative is relative to the
    /// config file's directory.
    pub fn resolve_path(&self, p: &str) -> PathBuf {
        self.site.resolve_path(p)
    }

    pub fn journal_dir(&self) -> PathBuf {
        match &self.file.auth.journal_dir {
            Some(p) => self.resolve_path(p),
            None => files::default_state_dir(),
        }
    }

    /// A config error at `key`, naming this file.
    pub fn error_at(&self, key: &str, what: impl std::fmt::Display) -> Error {
        self.site.error_at(key, what)
    }
}

/// The documented range of every number in the config file. A value outside it is
/// a config error (exit 2) naming the key, never an overflow or a panic later.
pub const RANGES: &[(&str, f64, f64, &str)] = &[
    (
        "http.timeout_seconds",
        0.001,
        3600.0,
        "seconds per request; the default is 30",
    ),
    (
        "http.retries",
        0.0,
        20.0,
        "attempts after the first; the default is 3",
    ),
    (
        "http.max_retry_after_seconds",
        0.0,
        86_400.0,
        "the longest Retry-After honoured; the default is 120",
    ),
    (
        "platforms.*.concurrency",
        1.0,
        1024.0,
        "accounts refreshed at once; the default is 8",
    ),
    (
        "platforms.*.refresh_before_days",
        0.0,
        3650.0,
        "days before expiry; the default is 15",
    ),
    (
        "platforms.*.warn_before_days",
        0.0,
        3650.0,
        "days before expiry; the default is 14",
    ),
    (
        "auth.alerts.repeat_hours",
        1.0,
        8760.0,
        "hours between repeats of an unchanged alert; the default is 24",
    ),
    (
        "auth.writeback.vault.lock_timeout_seconds",
        1.0,
        86_400.0,
        "seconds to wait for another runner's lock",
    ),
    (
        "auth.writeback.vault.lock_ttl_seconds",
        1.0,
        86_400.0,
        "seconds a lock lives if its runner dies",
    ),
];

impl Config {
    /// Checks every number against [`RANGES`].
    fn check_ranges(&self) -> Result<()> {
        let f = &self.file;
        let mut values: Vec<(String, &str, f64)> = vec![
            (
                "http.timeout_seconds".into(),
                "http.timeout_seconds",
                f.http.timeout_seconds,
            ),
            (
                "http.retries".into(),
                "http.retries",
                f64::from(f.http.retries),
            ),
            (
                "http.max_retry_after_seconds".into(),
                "http.max_retry_after_seconds",
                f.http.max_retry_after_seconds as f64,
            ),
            (
                "auth.alerts.repeat_hours".into(),
                "auth.alerts.repeat_hours",
                f.auth.alerts.repeat_hours as f64,
            ),
        ];
        for (platform, block) in &f.platforms.blocks {
            for (k, v) in block.numbers() {
                let range = match k {
                    "concurrency" => "platforms.*.concurrency",
                    "warn_before_days" => "platforms.*.warn_before_days",
                    _ => "platforms.*.refresh_before_days",
                };
                values.push((format!("platforms.{platform}.{k}"), range, v));
            }
        }
        if let Some(v) = &f.auth.writeback.vault {
            values.push((
                "auth.writeback.vault.lock_timeout_seconds".into(),
                "auth.writeback.vault.lock_timeout_seconds",
                v.lock_timeout_seconds as f64,
            ));
            values.push((
                "auth.writeback.vault.lock_ttl_seconds".into(),
                "auth.writeback.vault.lock_ttl_seconds",
                v.lock_ttl_seconds as f64,
            ));
        }
        for (key, range, v) in values {
            let Some((_, lo, hi, what)) = RANGES.iter().find(|r| r.0 == range) else {
                continue;
            };
            if !(v.is_finite() && v >= *lo && v <= *hi) {
                let shown = if v.fract() == 0.0 && v.abs() < 1e18 {
                    format!("{}", v as i64)
                } else {
                    format!("{v}")
                };
                let bound = if v < *lo {
                    format!("must be at least {lo}")
                } else {
                    format!("must be at most {hi}")
                };
                return Err(self
                    .error_at(&key, format!("{shown} is outside {lo}..={hi}: {bound}"))
                    .with_hint(format!("{what}; use a value between {lo} and {hi}")));
            }
        }
        Ok(())
    }
}

fn exists_or_error(p: &Path, from: &str) -> Result<Option<PathBuf>> {
    let p = files::expand_tilde(&p.to_string_lossy());
    let what = match std::fs::metadata(&p) {
        Ok(m) if m.is_file() => return Ok(Some(p)),
        Ok(m) if m.is_dir() => "is a directory, not a file",
        Ok(_) => "is not a regular file (a fifo, socket or device)",
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "does not exist",
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            "cannot be read (permission denied)"
        }
        Err(_) => "cannot be read",
    };
    Err(
        Error::config(format!("config file {} (from {from}) {what}", p.display())).with_hint(
            "give the path of the YAML config file, or run `evertoken demo` to see a working setup",
        ),
    )
}

/// The deepest `[`/`{` flow nesting any YAML file evertoken reads may have. Real
/// files nest a few levels; checking this before the parser keeps a hostile file
/// (`[[[[…` 100,000 deep) from costing seconds of parsing.
pub const MAX_YAML_NESTING: usize = 64;

/// Rejects YAML whose flow nesting exceeds [`MAX_YAML_NESTING`] (an upper bound:
/// brackets inside quoted strings count too, which no real file comes near).
pub fn check_nesting(text: &str) -> std::result::Result<(), String> {
    let mut depth = 0usize;
    for (i, b) in text.bytes().enumerate() {
        match b {
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_YAML_NESTING {
                    let line = text.as_bytes()[..i].iter().filter(|c| **c == b'\n').count() + 1;
                    return Err(format!(
                        "nesting deeper than {MAX_YAML_NESTING} levels (line {line})"
                    ));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Parses YAML text into the config model, turning serde's errors into ones that
/// name the file, the key's path and the likely fix.
pub fn parse(text: &str, path: &Path) -> Result<FileConfig> {
    if text.trim().is_empty() {
        return Ok(FileConfig::default());
    }
    check_nesting(text).map_err(|e| {
        Error::config(format!("config file {}: {e}", path.display()))
            .with_hint("this is not an evertoken config file; check the path")
    })?;
    let de = serde_norway::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.inner();
        let location = inner
            .location()
            .map(|l| format!(" (line {}, column {})", l.line(), l.column()))
            .unwrap_or_default();
        let msg = strip_location(&inner.to_string());
        describe(&msg, &key, &format!("{}{location}", path.display()))
    })
}

/// serde_norway appends " at line L column C"; the location is shown separately.
fn strip_location(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

fn describe(msg: &str, key: &str, file: &str) -> Error {
    // serde_norway prefixes its own path ("platforms.tiktok: …"); the key is shown apart.
    // A prefix that extends the key (a block parsed on its own, such as a
    // `kind: oauth2` service) is the more precise key.
    let mut key = key.to_owned();
    let msg = match msg.split_once(": ") {
        Some((head, tail)) if !head.contains(' ') => {
            if head.len() > key.len() && head.starts_with(key.as_str()) {
                key = head.to_owned();
            }
            tail
        }
        _ => msg,
    };
    let key = key.as_str();
    if let Some(rest) = msg.strip_prefix("unknown field ") {
        let (unknown, expected) = split_expected(rest);
        let full_key = if key.is_empty() || key == "." {
            unknown.clone()
        } else if key.ends_with(&unknown) {
            key.to_owned()
        } else {
            format!("{key}.{unknown}")
        };
        let err = Error::config(format!("{file}: unknown key `{full_key}`"));
        return match did_you_mean(&unknown, &expected) {
            Some(s) => err.with_hint(format!("did you mean `{s}`?")),
            None if !expected.is_empty() => {
                err.with_hint(format!("known keys here: {}", expected.join(", ")))
            }
            None => err,
        };
    }
    if let Some(rest) = msg.strip_prefix("unknown variant ") {
        let (unknown, expected) = split_expected(rest);
        let err = Error::config(format!("{file}: `{key}`: unknown value `{unknown}`"));
        return match did_you_mean(&unknown, &expected) {
            Some(s) => err.with_hint(format!(
                "did you mean `{s}`? (one of: {})",
                expected.join(", ")
            )),
            None => err.with_hint(format!("expected one of: {}", expected.join(", "))),
        };
    }
    let at = if key.is_empty() || key == "." {
        String::new()
    } else {
        format!("`{key}`: ")
    };
    Error::config(format!("{file}: {at}{msg}")).with_hint(
        "fix the value at that key; the configuration reference (docs/src/reference/config.md) lists every key",
    )
}

/// "`foo`, expected one of `a`, `b`" → ("foo", ["a", "b"]).
fn split_expected(rest: &str) -> (String, Vec<String>) {
    let ticked: Vec<String> = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    let mut it = ticked.into_iter();
    let unknown = it.next().unwrap_or_default();
    (unknown, it.collect())
}

/// The closest candidate, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(input: &str, candidates: &'a [String]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(input, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> Error {
        parse(text, Path::new("/cfg/evertoken.yaml")).unwrap_err()
    }

    #[test]
    fn unknown_key_names_its_path_and_suggests() {
        let e = err("platforms:\n  tiktok:\n    enabeld: true\n    client_key: k\n");
        assert!(
            e.message.contains("unknown key `platforms.tiktok.enabeld`"),
            "{}",
            e.message
        );
        assert!(e.message.contains("/cfg/evertoken.yaml"), "{}", e.message);
        assert!(e.message.contains("line 3"), "{}", e.message);
        assert_eq!(e.hint.as_deref(), Some("did you mean `enabled`?"));
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn unknown_top_level_key() {
        let e = err("platfroms: {}\n");
        assert!(
            e.message.contains("unknown key `platfroms`"),
            "{}",
            e.message
        );
        assert_eq!(e.hint.as_deref(), Some("did you mean `platforms`?"));
    }

    #[test]
    fn unknown_backend_value_suggests() {
        let e = err("auth:\n  writeback:\n    backend: locall\n");
        assert!(
            e.message.contains("auth.writeback.backend"),
            "{}",
            e.message
        );
        assert!(e.hint.unwrap().contains("did you mean `local`?"));
    }

    #[test]
    fn wrong_type_names_the_key() {
        let e = err("platforms:\n  tiktok:\n    concurrency: many\n");
        assert!(
            e.message.contains("platforms.tiktok.concurrency"),
            "{}",
            e.message
        );
    }

    #[test]
    fn empty_file_is_defaults() {
        let c = parse("  \n", Path::new("x")).unwrap();
        assert!(c.platforms.get("tiktok").is_none());
    }
}

/// Resolution at load: `auth.writeback` and `auth.alerts` become the typed
/// [`store::Writeback`] and [`alert::Alerts`]; an invalid combination is a config
/// error (exit 2) naming its key, and a valid one carries only what was chosen.
#[cfg(test)]
mod resolution {
    use super::*;

    fn load(text: &str) -> Result<Config> {
        let dir = std::env::temp_dir().join(format!(
            "evertoken-resolve-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("evertoken.yaml");
        std::fs::write(&path, text).unwrap();
        let r = Config::load_file(&path);
        let _ = std::fs::remove_dir_all(&dir);
        r
    }

    #[test]
    fn invalid_combinations_are_errors_naming_the_key() {
        let cases = [
            (
                "auth:\n  writeback:\n    backend: env-file\n",
                "`auth.writeback.env_file`",
            ),
            (
                "auth:\n  writeback:\n    gitlab: { project: a/b, group: a }\n",
                "`auth.writeback.gitlab`",
            ),
            (
                "auth:\n  writeback:\n    backend: gitlab\n    gitlab: { project: \" \" }\n",
                "`auth.writeback.gitlab.project`",
            ),
            (
                "auth:\n  writeback:\n    github_actions: { repository: o/r, organization: o }\n",
                "`auth.writeback.github_actions`",
            ),
            (
                "auth:\n  writeback:\n    github_actions: { organization: o, environment: prod }\n",
                "`auth.writeback.github_actions.environment`",
            ),
            (
                "auth:\n  writeback:\n    github_actions: { repository: o/r, visibility: all }\n",
                "`auth.writeback.github_actions.visibility`",
            ),
            (
                "auth:\n  writeback:\n    github_actions: { repository: not-a-repo }\n",
                "`auth.writeback.github_actions.repository`",
            ),
            (
                "auth:\n  writeback:\n    backend: vault\n    vault: { mount: \"a/../b\" }\n",
                "`auth.writeback.vault.mount`",
            ),
            (
                "auth:\n  writeback:\n    vault: { address: \"ftp://vault\" }\n",
                "`auth.writeback.vault.address`",
            ),
            (
                "auth:\n  alerts:\n    backend: email\n",
                "`auth.alerts.email`",
            ),
            (
                "auth:\n  alerts:\n    backend: email\n    email: { host: smtp.example.com, from: a@example.com, to: [] }\n",
                "`auth.alerts.email.to`",
            ),
            (
                "auth:\n  alerts:\n    backend: email\n    email: { host: smtp.example.com, from: a@example.com, to: [b@example.com], tls: none }\n",
                "`auth.alerts.email.tls`",
            ),
            (
                "auth:\n  alerts:\n    backend: webhook\n    webhook: { url: \"https://chat.example.com/hook\" }\n",
                "`auth.alerts.webhook.format`",
            ),
            (
                "auth:\n  alerts:\n    backend: webhook\n    webhook: { url: \"not a url\" }\n",
                "`auth.alerts.webhook.url`",
            ),
        ];
        for (text, key) in cases {
            let e = load(text).expect_err(text);
            assert_eq!(e.exit_code(), 2, "{text}: {}", e.message);
            assert!(e.message.contains(key), "{text}: {}", e.message);
            assert!(e.message.contains("evertoken.yaml"), "{}", e.message);
            assert!(
                e.hint.is_some() || key.ends_with(".port`"),
                "{text}: no hint"
            );
        }
    }

    #[test]
    fn a_valid_file_resolves_to_the_chosen_store_and_channel_only() {
        let c = load(
            "auth:\n  writeback:\n    backend: env-file\n    env_file: { path: tokens.env }\n  alerts:\n    backend: webhook\n    webhook: { url: \"https://hooks.slack.com/services/T0/B0/resolve-test\" }\n",
        )
        .unwrap();
        match &c.writeback {
            store::Writeback::EnvFile(s) => {
                assert_eq!(s.path, c.base_dir.join("tokens.env"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(c.writeback.backend(), store::Backend::EnvFile);
        assert_eq!(c.alerts.backend(), alert::Backend::Webhook);
        let shown = format!("{:?}", c.alerts);
        assert!(!shown.contains("resolve-test"), "{shown}");

        let d = load("platforms: {}\n").unwrap();
        assert!(matches!(d.writeback, store::Writeback::Local(_)));
        assert!(d.alerts.channel.is_none());
    }

    #[test]
    fn a_store_chosen_on_the_command_line_is_resolved_with_the_same_checks() {
        let mut c = load("auth:\n  writeback:\n    backend: local\n").unwrap();
        let e = c.use_backend(store::Backend::EnvFile).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.message.contains("`auth.writeback.env_file`"),
            "{}",
            e.message
        );
        c.use_backend(store::Backend::Gitlab).unwrap();
        assert_eq!(c.writeback.backend(), store::Backend::Gitlab);
    }
}

/// Fuzzing the config parser: no input panics; every rejection is a config error
/// (exit 2) naming the file. `PROPTEST_CASES` scales the run (CI: the default;
/// `scripts/reliability`: far more).
#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    use super::*;

    fn keyish() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("platforms".to_owned()),
            Just("auth".to_owned()),
            Just("tiktok".to_owned()),
            Just("enabled".to_owned()),
            Just("client_key".to_owned()),
            Just("writeback".to_owned()),
            Just("backend".to_owned()),
            Just("accounts".to_owned()),
            "[a-z_]{1,12}",
        ]
    }

    fn yamlish() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("true".to_owned()),
            Just("local".to_owned()),
            Just("[a, b]".to_owned()),
            Just("{}".to_owned()),
            Just("~".to_owned()),
            "-?[0-9]{1,4}",
            "\"[^\"\\\\]{0,10}\"",
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop::collection::vec((keyish(), inner), 1..4).prop_map(|kvs| {
                let body: Vec<String> = kvs.into_iter().map(|(k, v)| format!("{k}: {v}")).collect();
                format!("{{ {} }}", body.join(", "))
            })
        })
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
            if let Err(e) = parse(&text, Path::new("/f/evertoken.yaml")) {
                prop_assert_eq!(e.exit_code(), 2);
                prop_assert!(e.message.contains("/f/evertoken.yaml"), "{}", e.message);
            }
        }

        #[test]
        fn structured_yaml_never_panics(doc in yamlish()) {
            if let Err(e) = parse(&doc, Path::new("/f/evertoken.yaml")) {
                prop_assert_eq!(e.exit_code(), 2);
                prop_assert!(e.message.contains("/f/evertoken.yaml"), "{}", e.message);
            }
        }
    }
}

/// `Debug` of every config and secret-holding type redacts: a `{:?}` in a log or a
/// panic message must never carry a secret.
#[cfg(test)]
mod debug_redaction {
    use super::*;

    #[test]
    fn debug_of_the_whole_config_and_of_stored_values_shows_no_secret() {
        let hook =
            "https://hooks.slack.com/services/T0TEST/B0TEST/test-webhook-path-not-a-real-secret";
        let text = format!(
            "platforms:\n  tiktok: {{ client_key: k }}\nauth:\n  alerts:\n    backend: webhook\n    webhook: {{ url: \"{hook}\", format: slack }}\n"
        );
        let file = parse(&text, Path::new("/f/evertoken.yaml")).unwrap();
        let dbg = format!("{file:?}");
        assert!(!dbg.contains("test-webhook-path"), "{dbg}");

        let secret = crate::secret::Secret::new("rft.debug-test-secret-value-0123456789");
        let now = jiff::Timestamp::UNIX_EPOCH;
        let entry = crate::store::Entry {
            var: "V".into(),
            value: secret.clone(),
            expires_at: None,
            updated_at: now,
            durable: true,
        };
        let stored = crate::store::Stored {
            value: secret.clone(),
            expires_at: None,
            updated_at: None,
            source: crate::secret::Source::Keychain,
        };
        let held = crate::provider::Held {
            var: "V".into(),
            value: secret.clone(),
            source: crate::secret::Source::Keychain,
            expires_at: None,
            updated_at: None,
        };
        let grant = crate::provider::Grant {
            access: Some(crate::provider::NewToken {
                value: secret.clone(),
                expires_at: None,
            }),
            refresh: None,
            note: None,
            problem: None,
        };
        for dbg in [
            format!("{entry:?}"),
            format!("{stored:?}"),
            format!("{held:?}"),
            format!("{grant:?}"),
        ] {
            assert!(!dbg.contains("debug-test-secret"), "{dbg}");
        }
    }

    #[test]
    fn nesting_is_capped_before_parsing() {
        assert!(check_nesting("a: [[1, 2], {b: [c]}]\n").is_ok());
        let deep = format!("{}{}", "[".repeat(65), "]".repeat(65));
        assert!(check_nesting(&deep).unwrap_err().contains("deeper than 64"));
        let deep = "[".repeat(100_000);
        assert!(check_nesting(&deep).is_err());
    }
}
