//! Every environment variable evertoken reads, declared once. The book's table
//! (docs/src/reference/env-vars.md)
//! is checked against [`ALL`] by a test, so the two never drift.

/// Path of the configuration file (after `--config`).
pub const EVERTOKEN_CONFIG: &str = "EVERTOKEN_CONFIG";
/// Fixes the clock (RFC 3339). For tests and reproducible dry-runs.
pub const EVERTOKEN_NOW: &str = "EVERTOKEN_NOW";
/// Log filter, `tracing` syntax (overrides -v/-q).
pub const EVERTOKEN_LOG: &str = "EVERTOKEN_LOG";
/// Test builds only: abort (SIGKILL) at a named step of a rotation (`NAME`), or
/// pause there for MS milliseconds (`pause:NAME:MS`, for the signal tests).
pub const EVERTOKEN_FAILPOINT: &str = "EVERTOKEN_FAILPOINT";
/// Set by CI systems; turns progress bars off.
pub const CI: &str = "CI";
pub const XDG_CONFIG_HOME: &str = "XDG_CONFIG_HOME";
pub const XDG_STATE_HOME: &str = "XDG_STATE_HOME";
/// Where systemd keeps the refresh timer's last-run stamp (`systemd/timers/`), read
/// by `github status`.
pub const XDG_DATA_HOME: &str = "XDG_DATA_HOME";
/// `auth refresh --shard ci`: this job's 1-based index and the job count (GitLab
/// `parallel:`).
pub const CI_NODE_INDEX: &str = "CI_NODE_INDEX";
pub const CI_NODE_TOTAL: &str = "CI_NODE_TOTAL";
pub const HOME: &str = "HOME";
/// GitLab write-back: API token with `api` scope (sent as `PRIVATE-TOKEN`).
pub const GITLAB_TOKEN: &str = "GITLAB_TOKEN";
/// GitLab's predefined variables, used as defaults in a pipeline.
pub const CI_PROJECT_ID: &str = "CI_PROJECT_ID";
pub const CI_API_V4_URL: &str = "CI_API_V4_URL";
pub const CI_JOB_TOKEN: &str = "CI_JOB_TOKEN";
/// Vault / OpenBao write-back.
pub const VAULT_ADDR: &str = "VAULT_ADDR";
pub const VAULT_TOKEN: &str = "VAULT_TOKEN";
pub const VAULT_ROLE_ID: &str = "VAULT_ROLE_ID";
pub const VAULT_SECRET_ID: &str = "VAULT_SECRET_ID";
/// Vault Enterprise / OpenBao namespace (sent as `X-Vault-Namespace`).
pub const VAULT_NAMESPACE: &str = "VAULT_NAMESPACE";
/// PEM file of the CA that signed the Vault server's certificate.
pub const VAULT_CACERT: &str = "VAULT_CACERT";
/// Alerts.
pub const ALERT_WEBHOOK_URL: &str = "ALERT_WEBHOOK_URL";
pub const ALERT_SMTP_USERNAME: &str = "ALERT_SMTP_USERNAME";
pub const ALERT_SMTP_PASSWORD: &str = "ALERT_SMTP_PASSWORD";
/// `auth login`: a desktop session, so a browser can be opened.
pub const DISPLAY: &str = "DISPLAY";
pub const WAYLAND_DISPLAY: &str = "WAYLAND_DISPLAY";
/// GitHub App defaults.
pub const GITHUB_APP_ID: &str = "GITHUB_APP_ID";
pub const GITHUB_APP_INSTALLATION_ID: &str = "GITHUB_APP_INSTALLATION_ID";
pub const GITHUB_APP_PRIVATE_KEY_PATH: &str = "GITHUB_APP_PRIVATE_KEY_PATH";
/// GitHub Actions: set on runners; a mint then emits `::add-mask::`.
pub const GITHUB_ACTIONS: &str = "GITHUB_ACTIONS";
/// GitHub Actions secrets write-back token.
pub const GITHUB_TOKEN: &str = "GITHUB_TOKEN";
pub const GH_TOKEN: &str = "GH_TOKEN";
/// gh's config directory (where a plain-text `hosts.yml` would live).
pub const GH_CONFIG_DIR: &str = "GH_CONFIG_DIR";
/// Set on Actions runners: defaults of the github-actions write-back.
pub const GITHUB_REPOSITORY: &str = "GITHUB_REPOSITORY";
pub const GITHUB_API_URL: &str = "GITHUB_API_URL";
/// GitHub Actions with `id-token: write`: where and with what the job asks for its
/// OIDC ID token (`github token --broker`). Set by the runner, not by users.
pub const ACTIONS_ID_TOKEN_REQUEST_URL: &str = "ACTIONS_ID_TOKEN_REQUEST_URL";
pub const ACTIONS_ID_TOKEN_REQUEST_TOKEN: &str = "ACTIONS_ID_TOKEN_REQUEST_TOKEN";

/// Every variable above, with a one-line description for `--help` and the README.
pub const ALL: &[(&str, &str)] = &[
    (
        XDG_DATA_HOME,
        "github status: where systemd keeps the refresh timer's last-run stamp (systemd/timers/)",
    ),
    (
        CI_NODE_INDEX,
        "auth refresh --shard ci: this job's 1-based index (GitLab `parallel:`)",
    ),
    (
        CI_NODE_TOTAL,
        "auth refresh --shard ci: the number of parallel jobs (GitLab `parallel:`)",
    ),
    (
        ACTIONS_ID_TOKEN_REQUEST_URL,
        "github token --broker in GitHub Actions: where the job asks for its OIDC ID token (set by the runner)",
    ),
    (
        ACTIONS_ID_TOKEN_REQUEST_TOKEN,
        "github token --broker in GitHub Actions: the bearer for that request (set by the runner)",
    ),
    (
        EVERTOKEN_CONFIG,
        "configuration file path, used when --config is not given",
    ),
    (
        EVERTOKEN_NOW,
        "fix the clock (RFC 3339), for tests and reproducible dry-runs",
    ),
    (
        EVERTOKEN_LOG,
        "log filter in tracing syntax, e.g. evertoken=debug",
    ),
    (
        EVERTOKEN_FAILPOINT,
        "debug builds only: SIGKILL the process at a named rotation step (`NAME`), or pause there (`pause:NAME:MS`)",
    ),
    (CI, "set by CI systems: no progress bars"),
    (
        XDG_CONFIG_HOME,
        "where the default config lives (evertoken/config.yaml)",
    ),
    (
        XDG_STATE_HOME,
        "where the rotation journal, locks and alert state live (evertoken/)",
    ),
    (GITLAB_TOKEN, "GitLab write-back: token with api scope"),
    (CI_PROJECT_ID, "GitLab write-back: default project"),
    (CI_API_V4_URL, "GitLab write-back: default API URL"),
    (VAULT_ADDR, "Vault write-back: server address"),
    (VAULT_TOKEN, "Vault write-back: token"),
    (VAULT_ROLE_ID, "Vault write-back: AppRole role id"),
    (VAULT_SECRET_ID, "Vault write-back: AppRole secret id"),
    // Write-back stores (gitlab, vault, github-actions):
    (
        CI_JOB_TOKEN,
        "GitLab write-back: only read to explain that job tokens cannot write variables",
    ),
    (
        VAULT_NAMESPACE,
        "Vault write-back: namespace (X-Vault-Namespace) when the config has none",
    ),
    (
        VAULT_CACERT,
        "Vault write-back: CA certificate file (PEM) when the config has no ca_file",
    ),
    (
        GITHUB_TOKEN,
        "github-actions write-back: token allowed to write Actions secrets (see token_env)",
    ),
    (
        GITHUB_REPOSITORY,
        "github-actions write-back: default repository (owner/repo), set on runners",
    ),
    (
        GITHUB_API_URL,
        "github-actions write-back: default API URL, set on runners",
    ),
    (
        ALERT_WEBHOOK_URL,
        "webhook alerts: the incoming-webhook URL",
    ),
    (ALERT_SMTP_USERNAME, "email alerts: SMTP user"),
    (ALERT_SMTP_PASSWORD, "email alerts: SMTP password"),
    (
        DISPLAY,
        "auth login: a graphical session (X11); without it or WAYLAND_DISPLAY the URL is printed, not opened",
    ),
    (WAYLAND_DISPLAY, "auth login: a graphical session (Wayland)"),
    (GITHUB_APP_ID, "GitHub App: app id when the config has none"),
    (
        GITHUB_APP_INSTALLATION_ID,
        "GitHub App: installation id when the config has none",
    ),
    (
        GITHUB_APP_PRIVATE_KEY_PATH,
        "GitHub App: private key path when the config has none",
    ),
    (
        GITHUB_ACTIONS,
        "set on GitHub Actions runners: tokens printed by github token, auth token and auth env are masked with ::add-mask:: first",
    ),
    // GitHub App tokens (github …):
    (
        GH_TOKEN,
        "github status: when set, it overrides gh's stored auth and is reported as a problem",
    ),
    (
        GH_CONFIG_DIR,
        "github: gh's config directory, checked for a plain-text hosts.yml",
    ),
];

#[cfg(test)]
mod tests {
    #[test]
    fn the_reference_documents_every_variable() {
        let page = include_str!("../../../docs/src/reference/env-vars.md");
        for (var, _) in super::ALL {
            assert!(
                page.contains(&format!("| `{var}` |")),
                "docs/src/reference/env-vars.md lacks {var}"
            );
        }
    }
}
