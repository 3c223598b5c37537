//! `github bootstrap`: installs the app's key (0600 in a 0700 directory), writes
//! the app entry into the config, writes and enables the systemd user timer. The
//! first mint is the caller's next step. Idempotent: each file is written only when
//! its content would change, so a second run changes nothing.
//!
//! The key is the one file evertoken copies, once, from where the user staged it;
//! its bytes never appear in a message.

use std::path::{Path, PathBuf};

use serde_norway::{Mapping, Value};

use super::app::{self, default_key_path, unit_stem};
use super::{jwt, systemd};
use crate::config::{self, Config};
use crate::error::{Error, Result};
use crate::files;

pub struct Request {
    pub app: String,
    pub app_id: u64,
    pub installation_id: Option<u64>,
    pub owner: Option<String>,
    pub private_key: PathBuf,
    /// Use the key where it is (chmod 600) instead of copying it (`--from-takopi-ghauth`).
    pub key_in_place: bool,
    /// `token_env_file` for the entry (the takopi plugin's file).
    pub token_env_file: Option<PathBuf>,
    /// `api_url` for the entry (GitHub Enterprise Server, a simulator).
    pub api_url: Option<String>,
    /// Say what would change; change nothing.
    pub dry_run: bool,
    pub no_systemd: bool,
    pub remove_source: bool,
    pub config_flag: Option<PathBuf>,
    /// The evertoken binary the service runs (absolute).
    pub binary: PathBuf,
    /// Whether `gh` is installed (decides `gh_cli` for a new entry).
    pub gh_available: bool,
}

/// What bootstrap did, for the CLI to report.
#[derive(Debug, Default)]
pub struct Outcome {
    pub config_path: PathBuf,
    /// One line per step: "installed …", "unchanged …".
    pub steps: Vec<String>,
    pub warnings: Vec<String>,
    /// Commands to run by hand when systemd could not be reached.
    pub manual: Vec<String>,
    /// The staged key still exists and should be deleted.
    pub staged_key_left: Option<PathBuf>,
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::failed(format!("cannot {what} {}: {e}", path.display()))
        .with_hint("check the directory's permissions")
}

/// Writes `content` to `path` (0600, atomic) unless it already holds it; with
/// `dry`, only says whether it would.
fn write_if_changed(path: &Path, content: &[u8], dry: bool) -> Result<bool> {
    if std::fs::read(path).ok().as_deref() == Some(content)
        && files::mode_of(path).ok().flatten() == Some(0o600)
    {
        return Ok(false);
    }
    if !dry {
        files::write_file_mode(path, content, 0o600).map_err(|e| io_err("write", path, e))?;
    }
    Ok(true)
}

fn did(dry: bool, done: &str, would: &str) -> String {
    if dry {
        would.to_owned()
    } else {
        done.to_owned()
    }
}

/// The largest private key file read (a 4096-bit PEM is about 3.3 KB).
const MAX_KEY_BYTES: u64 = 1 << 20;
/// The largest `github-app.env` read.
const MAX_ENV_BYTES: u64 = 1 << 20;

pub fn run(req: &Request) -> Result<Outcome> {
    let mut out = Outcome::default();
    // The name becomes part of the key's file name and the unit names: check it
    // before anything is written.
    if !super::app::valid_name(&req.app) {
        return Err(Error::usage(format!(
            "--app `{}`: app names may use letters, digits, `-` and `_` only; nothing was written",
            crate::broker::escape(&req.app)
        ))
        .with_hint("for example `--app default` or `--app ci-bot`"));
    }
    if req.installation_id.is_none() && req.owner.is_none() {
        return Err(Error::usage("bootstrap needs --installation-id N or --owner LOGIN")
            .with_hint("the installation id is the number at the end of github.com/settings/installations/N"));
    }
    // 1. The key: check it, then install it once.
    let src = files::expand_tilde(&req.private_key.to_string_lossy());
    // Deleting a symlink would leave the key it points to behind: refuse up front.
    if req.remove_source
        && std::fs::symlink_metadata(&src).is_ok_and(|m| m.file_type().is_symlink())
    {
        let target = std::fs::canonicalize(&src).unwrap_or_else(|_| src.clone());
        return Err(Error::usage(format!(
            "--remove-source: {} is a symbolic link to {}; evertoken deletes only a plain staged key file, so nothing was done",
            src.display(),
            target.display()
        ))
        .with_hint(format!(
            "pass the key file itself (`--private-key {}`), or run without --remove-source and delete both yourself",
            target.display()
        )));
    }
    // Relative to the working directory, once: the config must name the key by an
    // absolute path (it is resolved against the config's directory otherwise).
    let src = std::path::absolute(&src).unwrap_or(src);
    let pem = files::read_capped(&src, MAX_KEY_BYTES).map_err(|e| {
        Error::usage(format!(
            "cannot read the private key {}: {e}",
            src.display()
        ))
        .with_hint("pass the .pem file downloaded from the GitHub App's settings page")
    })?;
    jwt::parse_key(&pem, &src)?;
    let dry = req.dry_run;
    let dest = if req.key_in_place {
        src.clone()
    } else {
        default_key_path(&req.app)
    };
    let same_file = match (src.canonicalize(), dest.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same_file {
        if files::mode_of(&dest)
            .ok()
            .flatten()
            .is_some_and(files::too_open)
        {
            use std::os::unix::fs::PermissionsExt;
            if !dry {
                std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| io_err("chmod 600", &dest, e))?;
            }
            out.steps.push(format!(
                "{} {} to mode 0600",
                did(dry, "set", "would set"),
                dest.display()
            ));
        } else {
            out.steps
                .push(format!("key already in place at {}", dest.display()));
        }
    } else {
        if files::mode_of(&src)
            .ok()
            .flatten()
            .is_some_and(files::too_open)
        {
            out.warnings.push(format!(
                "the staged key {} is readable by other users; delete it now that it is installed",
                src.display()
            ));
        }
        if write_if_changed(&dest, &pem, dry)? {
            out.steps.push(format!(
                "{} the key as {} (0600)",
                did(dry, "installed", "would install"),
                dest.display()
            ));
        } else {
            out.steps
                .push(format!("key unchanged at {}", dest.display()));
        }
    }
    // 2. The config entry.
    let config_path = match Config::locate(req.config_flag.as_deref())? {
        Some(p) => p,
        None => files::default_config_dir().join("config.yaml"),
    };
    out.config_path = config_path.clone();
    let old_text = match std::fs::read_to_string(&config_path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(Error::config(format!(
                "cannot read config file {}: {e}",
                config_path.display()
            )));
        }
    };
    let new_text = updated_config(old_text.as_deref().unwrap_or(""), req, &dest, &config_path)?;
    if old_text.as_deref() == Some(new_text.as_str()) {
        out.steps
            .push(format!("config unchanged: {}", config_path.display()));
    } else {
        // Check the result is a valid config before it replaces anything.
        config::parse(&new_text, &config_path)?;
        write_if_changed(&config_path, new_text.as_bytes(), dry)?;
        if old_text
            .as_deref()
            .is_some_and(|t| t.lines().any(|l| l.trim_start().starts_with('#')))
        {
            out.warnings.push(format!(
                "{} was rewritten: its comments were not kept",
                config_path.display()
            ));
        }
        out.steps.push(format!(
            "{} github.apps.{} into {}",
            did(dry, "wrote", "would write"),
            req.app,
            config_path.display()
        ));
    }
    if !dry {
        Config::load_file(&config_path)?;
    }
    // 3. The systemd user timer.
    if !req.no_systemd {
        let dir = systemd::user_unit_dir();
        let stem = unit_stem(&req.app);
        let abs_config = std::path::absolute(&config_path).unwrap_or(config_path.clone());
        let service = systemd::service_text(&req.binary, &abs_config, &req.app);
        let timer = systemd::timer_text(&stem, &req.app);
        for (name, text) in [
            (format!("{stem}.service"), service),
            (format!("{stem}.timer"), timer),
        ] {
            let p = dir.join(&name);
            if write_if_changed(&p, text.as_bytes(), dry)? {
                out.steps.push(format!(
                    "{} {}",
                    did(dry, "wrote", "would write"),
                    p.display()
                ));
            } else {
                out.steps.push(format!("unit unchanged: {}", p.display()));
            }
        }
    }
    // 4. The staged key.
    if !same_file && !dry {
        if req.remove_source {
            std::fs::remove_file(&src).map_err(|e| io_err("delete the staged key", &src, e))?;
            out.steps
                .push(format!("deleted the staged key {}", src.display()));
        } else {
            out.staged_key_left = Some(src);
        }
    }
    Ok(out)
}

/// Enables the timer (after `run` wrote it); on failure, the commands to run by hand.
pub async fn enable_timer(app_name: &str, out: &mut Outcome) {
    let timer = format!("{}.timer", unit_stem(app_name));
    match systemd::enable(&timer).await {
        Ok(()) => out.steps.push(format!("enabled and started {timer}")),
        Err(e) => {
            out.warnings
                .push(format!("could not enable the timer: {e}"));
            out.manual.push("systemctl --user daemon-reload".into());
            out.manual
                .push(format!("systemctl --user enable --now {timer}"));
        }
    }
}

fn key_str(s: &str) -> Value {
    Value::String(s.to_owned())
}

/// The config text with `github.apps.<app>` created or updated.
fn updated_config(old: &str, req: &Request, key_path: &Path, config_path: &Path) -> Result<String> {
    let mut root: Value = if old.trim().is_empty() {
        Value::Mapping(Mapping::new())
    } else {
        serde_norway::from_str(old).map_err(|e| {
            Error::config(format!(
                "{}: cannot parse as YAML: {e}",
                config_path.display()
            ))
            .with_hint("fix the file (or move it aside) and run bootstrap again")
        })?
    };
    let not_map = |what: &str| {
        Error::config(format!(
            "{}: `{what}` is not a mapping",
            config_path.display()
        ))
        .with_hint("fix that key in the config, then run bootstrap again")
    };
    let root_map = root
        .as_mapping_mut()
        .ok_or_else(|| not_map("(top level)"))?;
    let github = root_map
        .entry(key_str("github"))
        .or_insert_with(|| Value::Mapping(Mapping::new()));
    let github = github.as_mapping_mut().ok_or_else(|| not_map("github"))?;
    let apps = github
        .entry(key_str("apps"))
        .or_insert_with(|| Value::Mapping(Mapping::new()));
    let apps = apps
        .as_mapping_mut()
        .ok_or_else(|| not_map("github.apps"))?;
    let entry = apps
        .entry(key_str(&req.app))
        .or_insert_with(|| Value::Mapping(Mapping::new()));
    let entry = entry
        .as_mapping_mut()
        .ok_or_else(|| not_map(&format!("github.apps.{}", req.app)))?;
    entry.insert(key_str("app_id"), Value::Number(req.app_id.into()));
    entry.remove("client_id");
    match (&req.installation_id, &req.owner) {
        (Some(id), _) => {
            entry.insert(key_str("installation_id"), Value::Number((*id).into()));
            entry.remove("owner");
            entry.remove("repository");
        }
        (None, Some(o)) => {
            entry.insert(key_str("owner"), key_str(o));
            entry.remove("installation_id");
        }
        (None, None) => {}
    }
    entry.insert(
        key_str("private_key_path"),
        key_str(&key_path.to_string_lossy()),
    );
    entry.remove("signer");
    entry.remove("broker");
    if let Some(f) = &req.token_env_file {
        entry.insert(key_str("token_env_file"), key_str(&f.to_string_lossy()));
    }
    if let Some(u) = &req.api_url {
        entry.insert(key_str("api_url"), key_str(u));
    }
    if !entry.contains_key("max_token_age_minutes") {
        entry.insert(
            key_str("max_token_age_minutes"),
            Value::Number(app::DEFAULT_MAX_AGE_MINUTES.into()),
        );
    }
    if !entry.contains_key("gh_cli") {
        entry.insert(key_str("gh_cli"), Value::Bool(req.gh_available));
    }
    serde_norway::to_string(&root)
        .map_err(|e| Error::failed(format!("cannot write the config as YAML: {e}")))
}

/// The source setup's timer, which must stop minting once evertoken's runs.
pub const TAKOPI_TIMER: &str = "takopi-github-token-refresh.timer";

/// What `~/.config/takopi/github-app.env` says.
#[derive(Debug)]
pub struct TakopiSetup {
    pub env_file: PathBuf,
    pub app_id: u64,
    pub installation_id: u64,
    pub key: PathBuf,
    /// The file the `/ghauth` plugin reads: `~/.config/takopi/github-token.env`.
    pub token_file: PathBuf,
}

/// Reads the source setup's `github-app.env` (`KEY=VALUE` lines, optional
/// `export` and quotes, as the source script writes and sources it).
pub fn read_takopi() -> Result<TakopiSetup> {
    let dir = files::home_dir().join(".config/takopi");
    let env_file = dir.join("github-app.env");
    let text = files::read_capped(&env_file, MAX_ENV_BYTES)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .map_err(|e| {
        Error::usage(format!("cannot read {}: {e}", env_file.display())).with_hint(
            "--from-takopi-ghauth moves a host set up by takopi-ghauth's bootstrap_user_refresh.sh; \
             without that file use `evertoken github bootstrap --app-id N --installation-id N --private-key PATH`",
        )
    })?;
    let mut vars = std::collections::BTreeMap::new();
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let l = l.strip_prefix("export ").unwrap_or(l);
        if let Some((k, v)) = l.split_once('=') {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            vars.insert(k.trim().to_owned(), v.to_owned());
        }
    }
    let num = |k: &str| -> Result<u64> {
        let v = vars.get(k).ok_or_else(|| {
            Error::usage(format!("{} has no {k}", env_file.display())).with_hint(format!(
                "add `{k}=<number>` to it (the app's settings page shows it)"
            ))
        })?;
        v.parse::<u64>().map_err(|_| {
            Error::usage(format!(
                "{}: {k} is `{}`, not a number",
                env_file.display(),
                crate::broker::escape(v)
            ))
            .with_hint("fix the value in that file and run again")
        })
    };
    // A relative path is taken relative to the env file's directory (where the
    // source script keeps the key), never to wherever evertoken happens to run.
    let key = vars
        .get(crate::env_vars::GITHUB_APP_PRIVATE_KEY_PATH)
        .map(|p| files::expand_tilde(p))
        .map(|p| if p.is_relative() { dir.join(p) } else { p })
        .unwrap_or_else(|| dir.join("github-app.pem"));
    Ok(TakopiSetup {
        app_id: num(crate::env_vars::GITHUB_APP_ID)?,
        installation_id: num(crate::env_vars::GITHUB_APP_INSTALLATION_ID)?,
        key,
        token_file: dir.join("github-token.env"),
        env_file,
    })
}

/// Stops and disables the source setup's timer, so exactly one timer mints. When
/// the user manager cannot be reached, the exact command goes to `manual`.
pub async fn retire_takopi_timer(dry: bool, out: &mut Outcome) {
    let disable = format!("systemctl --user disable --now {TAKOPI_TIMER}");
    let enabled = systemd::systemctl(&["is-enabled", TAKOPI_TIMER]).await;
    let active = systemd::systemctl(&["is-active", TAKOPI_TIMER]).await;
    let (enabled, active) = match (enabled, active) {
        (Ok((_, e, _)), Ok((_, a, _))) => (e, a),
        (Err(e), _) | (_, Err(e)) => {
            out.warnings
                .push(format!("cannot ask systemd about {TAKOPI_TIMER}: {e}"));
            out.manual.push(disable);
            return;
        }
    };
    // `is-active` always names a state when the user manager answers; nothing
    // on stdout means systemd could not be asked (no bus, no lingering session).
    let known = [
        "active",
        "inactive",
        "failed",
        "activating",
        "deactivating",
        "reloading",
        "maintenance",
        "refreshing",
    ];
    if !known.contains(&active.as_str()) {
        out.warnings.push(format!(
            "cannot ask systemd about {TAKOPI_TIMER}; stop it by hand so that only one timer mints"
        ));
        out.manual.push(disable);
        return;
    }
    let running = enabled.starts_with("enabled")
        || enabled == "linked"
        || matches!(active.as_str(), "active" | "activating" | "reloading");
    if !running {
        out.steps
            .push(format!("{TAKOPI_TIMER} already stopped and disabled"));
        return;
    }
    if dry {
        out.steps
            .push(format!("would stop and disable {TAKOPI_TIMER}"));
        return;
    }
    match systemd::systemctl(&["disable", "--now", TAKOPI_TIMER]).await {
        Ok((true, _, _)) => out
            .steps
            .push(format!("stopped and disabled {TAKOPI_TIMER}")),
        Ok((false, _, err)) => {
            out.warnings.push(format!(
                "`{disable}` failed: {}",
                err.lines().next().unwrap_or("")
            ));
            out.manual.push(disable);
        }
        Err(e) => {
            out.warnings.push(format!("cannot run systemctl: {e}"));
            out.manual.push(disable);
        }
    }
}

/// A hint when the user's systemd manager does not linger: without lingering the
/// timer runs only while the user is logged in.
pub async fn linger_hint() -> Option<String> {
    let user = std::env::var("USER")
        .ok()
        .or_else(|| std::env::var("LOGNAME").ok())
        .filter(|u| !u.is_empty() && !u.contains('/'))?;
    if Path::new("/var/lib/systemd/linger").join(&user).exists() {
        return None;
    }
    let out = tokio::process::Command::new("loginctl")
        .args(["show-user", &user, "-p", "Linger"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let linger = match tokio::time::timeout(std::time::Duration::from_secs(5), out).await {
        Ok(Ok(o)) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        _ => String::new(),
    };
    if linger == "Linger=yes" {
        return None;
    }
    Some(format!(
        "lingering looks off for {user} ({}): the timer runs only while {user} is logged in; \
         keep it running after logout with `sudo loginctl enable-linger {user}`",
        if linger.is_empty() {
            "loginctl gave no answer"
        } else {
            linger.as_str()
        }
    ))
}
