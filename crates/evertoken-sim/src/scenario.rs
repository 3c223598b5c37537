//! Scenarios: one builder for the set-ups the tests and `evertoken demo` share
//! (platforms × store × tokens × clock). A [`Scenario`] says which platforms are
//! configured, how old each token is and when it expires relative to a chosen
//! clock, and which store holds them; from that it seeds the simulator
//! ([`Scenario::seed`]), writes the config ([`Scenario::config_yaml`]) and the
//! store's contents ([`Scenario::store_files`]), and lists every secret it made
//! ([`Scenario::secrets`]) so a test can check no output leaks one.
//!
//! A login test's platform is [`login`]`(key)`: its app registered (of the
//! [`Client`] kind and with the redirect URIs it is told), `auth_url` at the
//! simulator, the client secret stored, no token yet.
//!
//! A platform is one entry in [`PLATFORMS`]: its config section, the variable of
//! the credential it seeds, its app (client id and secret), its default token and
//! how the simulator learns them. Adding a platform is one entry there.
//!
//! ```no_run
//! # fn demo(sim: &evertoken_sim::Sim, base_url: &str) {
//! use evertoken_sim::scenario::{Scenario, Store, platform};
//! let now = "2026-11-23T09:00:00Z".parse().unwrap();
//! let s = Scenario::at(now)
//!     .with(platform("instagram").issued_days_ago(50).expires_in_days(10))
//!     .with(platform("tiktok").accounts(&["brand-a"]))
//!     .store(Store::local().keychain_auto());
//! s.seed(sim);
//! let config = s.config_yaml(base_url);
//! for f in s.store_files() { /* write f.contents to f.path */ }
//! # }
//! ```

use std::fmt::Write as _;

use jiff::{Timestamp, ToSpan};

use crate::Sim;

/// A platform's app as the simulator and the config know it. `{label}` in any
/// value is replaced by the scenario's label (`test`, `demo`).
#[derive(Debug)]
pub struct App {
    /// The config key naming the client (`client_id`, `client_key`, `app_id`).
    pub id_key: &'static str,
    pub id: &'static str,
    /// The variable holding the client secret, and its value.
    pub secret_var: &'static str,
    pub secret: &'static str,
}

/// The kinds of client a platform's console registers, where it has several.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Client {
    /// The usual kind: TikTok's web app, LinkedIn's standard app.
    #[default]
    Standard,
    /// TikTok's desktop app: loopback redirects only, hex PKCE required.
    Desktop,
    /// LinkedIn's partner app: the code exchange issues a refresh token too.
    Partner,
}

/// An app as [`Descriptor::seed_app`] registers it with the simulator.
#[derive(Debug)]
pub struct ClientSeed<'a> {
    pub id: &'a str,
    pub secret: &'a str,
    pub kind: Client,
    /// The redirect URIs registered in its console (none: any the provider takes).
    pub redirects: &'a [&'a str],
}

impl ClientSeed<'_> {
    /// Registers the redirect URIs with the simulator's `provider`
    /// ([`Sim::oauth_register_redirect`]).
    pub fn register_redirects(&self, sim: &Sim, provider: &str) {
        for uri in self.redirects {
            sim.oauth_register_redirect(provider, self.id, uri);
        }
    }
}

/// One token as seeded: its value and its times on the scenario's clock.
#[derive(Debug, Clone)]
pub struct Seed {
    pub value: String,
    pub issued_at: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
}

/// How one platform takes part in a scenario. One entry per platform in
/// [`PLATFORMS`].
#[derive(Debug)]
pub struct Descriptor {
    /// The platform's key: its `platforms:` section and its name in reports.
    pub key: &'static str,
    /// The variable of the credential a scenario seeds (`_ACCOUNT` appended for a
    /// named account).
    pub token_var: &'static str,
    /// The start of the seeded token's value, before `-not-a-real-secret`.
    pub token: &'static str,
    pub app: Option<App>,
    /// The app `auth login` signs in with where a refresh needs none (Instagram's).
    pub login_app: Option<App>,
    /// The [`Client`] kinds its console offers besides [`Client::Standard`].
    pub clients: &'static [Client],
    /// Settings every scenario gives this platform's config section.
    pub settings: &'static str,
    /// The default token's age and remaining life, in days (`None`: unknown).
    pub issued_days_ago: Option<i64>,
    pub expires_in_days: Option<i64>,
    /// Whether the store records the token's expiry by default (a LinkedIn token
    /// pasted from the developer portal comes without one).
    pub store_records_expiry: bool,
    /// Registers the app with the simulator.
    pub seed_app: fn(&Sim, &ClientSeed),
    /// Registers one token with the simulator (client id, token).
    pub seed_token: fn(&Sim, &str, &Seed),
    /// Whether the simulator accepts `token` now.
    pub is_live: fn(&Sim, &str) -> bool,
    /// What a first `auth refresh` does with the default token (a report state
    /// such as `rotated`), and why, for `evertoken demo`.
    pub demo: (&'static str, &'static str),
}

fn or_now(sim: &Sim, t: Option<Timestamp>) -> Timestamp {
    t.unwrap_or_else(|| sim.now())
}

fn or_days(sim: &Sim, t: Option<Timestamp>, days: i64) -> Timestamp {
    t.unwrap_or_else(|| days_from(sim.now(), days))
}

/// Every platform the simulator serves, with the config keys and variable names
/// the client's platform modules read (`client_id`, `client_key`, `app_id`;
/// `X_CLIENT_SECRET`, `THREADS_CLIENT_SECRET`, `PINTEREST_CLIENT_SECRET`). The X app is
/// a confidential client (the default `client_type`).
pub static PLATFORMS: &[Descriptor] = &[
    Descriptor {
        key: "instagram",
        token_var: "INSTAGRAM_ACCESS_TOKEN",
        token: "{label}-ig-token",
        app: None,
        login_app: Some(App {
            id_key: "app_id",
            id: "{label}-instagram-app",
            secret_var: "INSTAGRAM_APP_SECRET",
            secret: "{label}-instagram-app-secret",
        }),
        clients: &[],
        settings: "",
        issued_days_ago: Some(50),
        expires_in_days: Some(10),
        store_records_expiry: true,
        seed_app: |sim, c| {
            sim.instagram_add_app(c.id, c.secret);
            c.register_redirects(sim, "instagram");
        },
        seed_token: |sim, _, t| {
            sim.instagram_add_token(
                &t.value,
                or_now(sim, t.issued_at),
                or_days(sim, t.expires_at, 60),
            );
        },
        is_live: |sim, t| sim.instagram_is_valid(t),
        demo: (
            "refreshed",
            "the Instagram token was inside refresh_before_days (15), so it was refreshed in place for another 60 days",
        ),
    },
    Descriptor {
        key: "youtube",
        token_var: "YOUTUBE_REFRESH_TOKEN",
        token: "{label}-yt-refresh",
        app: Some(App {
            id_key: "client_id",
            id: "{label}-client.apps.googleusercontent.com",
            secret_var: "YOUTUBE_CLIENT_SECRET",
            secret: "{label}-google-client-secret",
        }),
        login_app: None,
        clients: &[],
        settings: "",
        issued_days_ago: None,
        expires_in_days: None,
        store_records_expiry: true,
        seed_app: |sim, c| {
            sim.google_add_client(c.id, c.secret);
            c.register_redirects(sim, "google");
        },
        seed_token: |sim, id, t| sim.google_add_refresh_token(id, &t.value),
        is_live: |sim, t| sim.google_is_valid(t),
        demo: (
            "ok",
            "the YouTube refresh token still works: Google answered the refresh grant",
        ),
    },
    Descriptor {
        key: "tiktok",
        token_var: "TIKTOK_REFRESH_TOKEN",
        token: "rft.{label}-tiktok-refresh",
        app: Some(App {
            id_key: "client_key",
            id: "{label}-client-key",
            secret_var: "TIKTOK_CLIENT_SECRET",
            secret: "{label}-tiktok-client-secret",
        }),
        login_app: None,
        clients: &[Client::Desktop],
        settings: "",
        issued_days_ago: None,
        expires_in_days: Some(120),
        store_records_expiry: true,
        seed_app: |sim, c| {
            match c.kind {
                Client::Desktop => sim.tiktok_add_desktop_client(c.id, c.secret),
                _ => sim.tiktok_add_client(c.id, c.secret),
            }
            c.register_redirects(sim, "tiktok");
        },
        seed_token: |sim, id, t| {
            sim.tiktok_add_refresh_token(id, &t.value, or_days(sim, t.expires_at, 365));
        },
        is_live: |sim, t| sim.tiktok_is_live(t),
        demo: (
            "rotated",
            "TikTok issued a new refresh token and killed the old one; evertoken journaled it, then wrote it to credentials.yaml (mode 0600) before anything else",
        ),
    },
    Descriptor {
        key: "linkedin",
        token_var: "LINKEDIN_ACCESS_TOKEN",
        token: "{label}-li-access",
        app: Some(App {
            id_key: "client_id",
            id: "{label}-linkedin-client",
            secret_var: "LINKEDIN_CLIENT_SECRET",
            secret: "{label}-linkedin-client-secret",
        }),
        login_app: None,
        clients: &[Client::Partner],
        settings: "warn_before_days: 14",
        issued_days_ago: None,
        expires_in_days: Some(5),
        store_records_expiry: false,
        seed_app: |sim, c| {
            sim.linkedin_add_client(c.id, c.secret);
            if c.kind == Client::Partner {
                sim.linkedin_set_programmatic_refresh(c.id, true);
            }
            c.register_redirects(sim, "linkedin");
        },
        seed_token: |sim, _, t| {
            sim.linkedin_add_access_token(&t.value, or_days(sim, t.expires_at, 60));
        },
        is_live: |sim, t| sim.linkedin_is_valid_access(t),
        demo: (
            "reauth_required",
            "LinkedIn cannot refresh a standard app's token; introspection found the expiry inside warn_before_days, so a human must re-authorise by that date (a real run exits 1 and alerts)",
        ),
    },
    Descriptor {
        key: "x",
        token_var: "X_REFRESH_TOKEN",
        token: "{label}-x-refresh",
        app: Some(App {
            id_key: "client_id",
            id: "{label}-x-client",
            secret_var: "X_CLIENT_SECRET",
            secret: "{label}-x-client-secret",
        }),
        login_app: None,
        clients: &[],
        settings: "",
        issued_days_ago: None,
        expires_in_days: None,
        store_records_expiry: true,
        seed_app: |sim, c| sim.x_add_client(c.id, Some(c.secret), c.redirects),
        seed_token: |sim, id, t| sim.x_add_refresh_token(id, &t.value),
        is_live: |sim, t| sim.x_is_live(t),
        demo: (
            "rotated",
            "X rotates its refresh token on every refresh and the old one dies at once; evertoken journaled the new one, then wrote it to credentials.yaml before anything else",
        ),
    },
    Descriptor {
        key: "threads",
        token_var: "THREADS_ACCESS_TOKEN",
        token: "{label}-th-token",
        app: Some(App {
            id_key: "app_id",
            id: "{label}-threads-app",
            secret_var: "THREADS_CLIENT_SECRET",
            secret: "{label}-threads-app-secret",
        }),
        login_app: None,
        clients: &[],
        settings: "",
        issued_days_ago: Some(50),
        expires_in_days: Some(10),
        store_records_expiry: true,
        seed_app: |sim, c| sim.threads_add_app(c.id, c.secret, c.redirects),
        seed_token: |sim, _, t| {
            sim.threads_add_token(
                &t.value,
                or_now(sim, t.issued_at),
                or_days(sim, t.expires_at, 60),
            );
        },
        is_live: |sim, t| sim.threads_is_valid(t),
        demo: (
            "refreshed",
            "the Threads token was older than 24 hours and inside refresh_before_days (15), so it was refreshed in place for another 60 days",
        ),
    },
    Descriptor {
        key: "pinterest",
        token_var: "PINTEREST_REFRESH_TOKEN",
        token: "pinr.{label}-pinterest-refresh",
        app: Some(App {
            id_key: "client_id",
            id: "{label}-pinterest-app",
            secret_var: "PINTEREST_CLIENT_SECRET",
            secret: "{label}-pinterest-app-secret",
        }),
        login_app: None,
        clients: &[],
        settings: "",
        issued_days_ago: None,
        expires_in_days: Some(60),
        store_records_expiry: true,
        seed_app: |sim, c| sim.pinterest_add_app(c.id, c.secret, c.redirects),
        seed_token: |sim, id, t| {
            sim.pinterest_add_refresh_token(id, &t.value, or_days(sim, t.expires_at, 60), true);
        },
        is_live: |sim, t| sim.pinterest_is_live(t),
        demo: (
            "rotated",
            "evertoken asked Pinterest for continuous refresh: a new 60-day refresh token replaced the old one, persisted before anything else",
        ),
    },
];

/// The platforms `evertoken demo` and the multi-platform tests configure: the
/// ones the client supports, each with its default token, which makes each do
/// its characteristic thing (Instagram inside its refresh window: refreshed in
/// place; YouTube healthy: health-checked; TikTok with no access token: rotated;
/// LinkedIn 5 days from expiry without a refresh token: re-auth required).
pub const DEMO_PLATFORMS: &[&str] = &["instagram", "youtube", "tiktok", "linkedin"];

/// The descriptor of `key`; panics on an unknown key (a typo in a test).
pub fn descriptor(key: &str) -> &'static Descriptor {
    PLATFORMS
        .iter()
        .find(|d| d.key == key)
        .unwrap_or_else(|| panic!("scenario: no platform `{key}` in PLATFORMS"))
}

/// `now` + `days` days (negative: before).
pub fn days_from(now: Timestamp, days: i64) -> Timestamp {
    now.checked_add((days * 24).hours()).expect("in range")
}

/// `key` with its default token, for [`Scenario::with`].
pub fn platform(key: &str) -> Platform {
    let d = descriptor(key);
    Platform {
        d,
        accounts: Vec::new(),
        value: None,
        issued_days_ago: d.issued_days_ago,
        expires_in_days: d.expires_in_days,
        records_expiry: d.store_records_expiry,
        secret_in_store: true,
        settings: Vec::new(),
        tokens: true,
        signs_in: false,
        client: Client::Standard,
        redirects: Vec::new(),
    }
}

/// `key` before its first `auth login`: [`Platform::signs_in`] with no token.
pub fn login(key: &str) -> Platform {
    platform(key).signs_in().no_token()
}

/// One platform in a scenario: its accounts and their token's times.
#[derive(Debug, Clone)]
pub struct Platform {
    d: &'static Descriptor,
    accounts: Vec<String>,
    value: Option<String>,
    issued_days_ago: Option<i64>,
    expires_in_days: Option<i64>,
    records_expiry: bool,
    secret_in_store: bool,
    settings: Vec<String>,
    tokens: bool,
    signs_in: bool,
    client: Client,
    redirects: Vec<String>,
}

impl Platform {
    /// Named accounts (`accounts: [...]`, variables `VAR_ACCOUNT`), each with its
    /// own token of the same times. Without, the one default account.
    pub fn accounts(mut self, names: &[&str]) -> Self {
        self.accounts = names.iter().map(|s| s.to_string()).collect();
        self
    }
    /// The token's value (one account only); by default a generated fake.
    pub fn value(mut self, v: &str) -> Self {
        self.value = Some(v.to_owned());
        self
    }
    pub fn issued_days_ago(mut self, days: i64) -> Self {
        self.issued_days_ago = Some(days);
        self
    }
    /// The token's age is unknown: the simulator sees it issued now and the
    /// store has no `updated_at`.
    pub fn issued_unknown(mut self) -> Self {
        self.issued_days_ago = None;
        self
    }
    pub fn expires_in_days(mut self, days: i64) -> Self {
        self.expires_in_days = Some(days);
        self
    }
    /// Whether the store records the token's expiry (`expires_at`).
    pub fn store_records_expiry(mut self, yes: bool) -> Self {
        self.records_expiry = yes;
        self
    }
    /// The client secret is registered with the simulator but not written to the
    /// store (the caller passes it in the environment, or tests its absence).
    pub fn client_secret_not_stored(mut self) -> Self {
        self.secret_in_store = false;
        self
    }
    /// One more `key: value` in the platform's config section.
    pub fn setting(mut self, s: &str) -> Self {
        self.settings.push(s.to_owned());
        self
    }
    /// No token is seeded or stored (the app and its secret still are).
    pub fn no_token(mut self) -> Self {
        self.tokens = false;
        self
    }
    /// `auth login` signs in at the simulator (`auth_url`), with the app it
    /// takes ([`Descriptor::login_app`] where a refresh needs none).
    pub fn signs_in(mut self) -> Self {
        self.signs_in = true;
        self
    }
    /// The kind of client the app is registered as; panics on one the platform
    /// does not have.
    pub fn client(mut self, kind: Client) -> Self {
        assert!(
            kind == Client::Standard || self.d.clients.contains(&kind),
            "scenario: `{}` has no {kind:?} client",
            self.d.key
        );
        self.client = kind;
        self
    }
    /// One more redirect URI registered for the app, as its console stores it.
    pub fn redirect(mut self, uri: &str) -> Self {
        self.redirects.push(uri.to_owned());
        self
    }
    /// The platform's key (`tiktok`).
    pub fn key(&self) -> &'static str {
        self.d.key
    }
    fn app(&self) -> Option<&'static App> {
        match &self.d.login_app {
            Some(app) if self.signs_in => Some(app),
            _ => self.d.app.as_ref(),
        }
    }
}

/// The GitLab project and group the simulator serves to a [`Store::gitlab_project`]
/// or [`Store::gitlab_group`] scenario: (id, path).
pub const GITLAB_PROJECT: (u64, &str) = (4242, "acme/publisher");
pub const GITLAB_GROUP: (u64, &str) = (77, "acme");
/// The API token of the GitLab store (`GITLAB_TOKEN`).
pub const GITLAB_TOKEN: &str = "test-gitlab-api-token-not-a-real-secret";
/// The owner, repository and environment the simulator's Actions API knows; the
/// organization is the owner.
pub const ACTIONS_REPO: (&str, &str, &str) = ("acme", "publisher", "production");
/// The token of the GitHub Actions store (`GITHUB_TOKEN`).
pub const ACTIONS_TOKEN: &str = "test-actions-secrets-token-not-a-real-secret";

/// Where the tokens live, and the `auth.writeback` block that says so.
#[derive(Debug, Clone)]
pub enum Store {
    /// The local store: the credentials file (YAML, mode 0600), with or without
    /// the OS keychain in front (`keychain: off | auto | required`).
    Local {
        keychain: &'static str,
        file: Option<String>,
    },
    /// `KEY=value` lines (systemd `EnvironmentFile=`).
    EnvFile { path: String },
    /// GitLab CI/CD variables in the simulator: the `gitlab:` block's `fields`
    /// (the simulator's `api_url` added); none: no block (a pipeline's `CI_*`
    /// variables say where).
    GitLab { fields: Vec<String> },
    /// A Vault/OpenBao KV v2 mount (`secret`, path `evertoken`) at `address`,
    /// reached with `token` (`VAULT_TOKEN`).
    Vault {
        address: String,
        token: String,
        fields: Vec<String>,
    },
    /// GitHub Actions secrets in the simulator: the `github_actions:` block's
    /// `fields` (the simulator's `api_url` added). Secrets cannot be read back:
    /// the workflow passes them in its environment.
    GitHubActions { fields: Vec<String> },
}

impl Store {
    /// The credentials file `credentials.yaml`, keychain off.
    pub fn local() -> Store {
        Store::Local {
            keychain: "off",
            file: None,
        }
    }
    pub fn env_file(path: &str) -> Store {
        Store::EnvFile {
            path: path.to_owned(),
        }
    }
    /// The variables of [`GITLAB_PROJECT`], by `project` (its path or id).
    pub fn gitlab_project(project: &str) -> Store {
        Store::gitlab_from_pipeline().setting(&format!("project: \"{project}\""))
    }
    /// The variables of [`GITLAB_GROUP`].
    pub fn gitlab_group() -> Store {
        Store::gitlab_from_pipeline().setting(&format!("group: {}", GITLAB_GROUP.1))
    }
    /// `backend: gitlab` alone: the pipeline's environment names the project.
    pub fn gitlab_from_pipeline() -> Store {
        Store::GitLab { fields: Vec::new() }
    }
    pub fn vault(address: &str, token: &str) -> Store {
        Store::Vault {
            address: address.to_owned(),
            token: token.to_owned(),
            fields: vec!["mount: secret".to_owned(), "path: evertoken".to_owned()],
        }
    }
    /// The secrets of the repository `repo` (`owner/name`).
    pub fn github_repository(repo: &str) -> Store {
        Store::GitHubActions { fields: Vec::new() }.setting(&format!("repository: {repo}"))
    }
    /// The organization secrets of [`ACTIONS_REPO`]'s owner.
    pub fn github_organization() -> Store {
        Store::GitHubActions { fields: Vec::new() }
            .setting(&format!("organization: {}", ACTIONS_REPO.0))
    }
    /// One more `key: value` in a remote store's block (`environment_scope:
    /// production`, `lock_timeout_seconds: 2`, `visibility: all`).
    pub fn setting(mut self, s: &str) -> Store {
        match &mut self {
            Store::GitLab { fields }
            | Store::Vault { fields, .. }
            | Store::GitHubActions { fields } => fields.push(s.to_owned()),
            Store::Local { .. } | Store::EnvFile { .. } => {
                panic!("scenario: `{s}` is a remote store's setting")
            }
        }
        self
    }
    /// `keychain: auto` (a headless machine falls back to the file).
    pub fn keychain_auto(self) -> Store {
        self.keychain("auto")
    }
    /// `keychain: off | auto | required`.
    pub fn keychain(self, mode: &'static str) -> Store {
        match self {
            Store::Local { file, .. } => Store::Local {
                keychain: mode,
                file,
            },
            s => s,
        }
    }
    /// The credentials file at `path` (relative to the config's directory).
    pub fn file(self, path: &str) -> Store {
        match self {
            Store::Local { keychain, .. } => Store::Local {
                keychain,
                file: Some(path.to_owned()),
            },
            s => s,
        }
    }

    /// The store's own credential: (variable, value) the run needs to reach it.
    fn credential(&self) -> Option<(&str, &str)> {
        match self {
            Store::GitLab { .. } => Some(("GITLAB_TOKEN", GITLAB_TOKEN)),
            Store::Vault { token, .. } => Some(("VAULT_TOKEN", token)),
            Store::GitHubActions { .. } => Some(("GITHUB_TOKEN", ACTIONS_TOKEN)),
            Store::Local { .. } | Store::EnvFile { .. } => None,
        }
    }

    /// The `auth.writeback` block, the simulator at `base_url`.
    fn writeback_yaml(&self, base_url: &str) -> String {
        let block =
            |key: &str, fields: &[String]| format!("    {key}: {{ {} }}\n", fields.join(", "));
        let with_api = |fields: &[String], api_url: String| {
            let mut f = fields.to_vec();
            f.push(format!("api_url: \"{api_url}\""));
            f
        };
        match self {
            Store::Local { keychain, file } => {
                let file = file
                    .as_ref()
                    .map(|f| format!(", file: {f}"))
                    .unwrap_or_default();
                format!("    backend: local\n    local: {{ keychain: {keychain}{file} }}\n")
            }
            Store::EnvFile { path } => {
                format!("    backend: env-file\n    env_file: {{ path: {path} }}\n")
            }
            Store::GitLab { fields } if fields.is_empty() => "    backend: gitlab\n".to_owned(),
            Store::GitLab { fields } => {
                let fields = with_api(fields, format!("{base_url}/api/v4"));
                format!("    backend: gitlab\n{}", block("gitlab", &fields))
            }
            Store::Vault {
                address, fields, ..
            } => {
                let mut f = vec![format!("address: \"{address}\"")];
                f.extend(fields.iter().cloned());
                format!("    backend: vault\n{}", block("vault", &f))
            }
            Store::GitHubActions { fields } => {
                let fields = with_api(fields, base_url.to_owned());
                format!(
                    "    backend: github-actions\n{}",
                    block("github_actions", &fields)
                )
            }
        }
    }

    /// Registers the store's credential and places with the simulator.
    fn seed(&self, sim: &Sim) {
        match self {
            Store::GitLab { .. } => {
                sim.gitlab_add_token(GITLAB_TOKEN);
                sim.gitlab_add_project(GITLAB_PROJECT.0, GITLAB_PROJECT.1);
                sim.gitlab_add_group(GITLAB_GROUP.0, GITLAB_GROUP.1);
            }
            Store::GitHubActions { .. } => {
                let (owner, repo, env) = ACTIONS_REPO;
                sim.actions_add_token(ACTIONS_TOKEN);
                sim.actions_add_environment(owner, repo, env);
                sim.actions_add_org(owner);
            }
            Store::Local { .. } | Store::EnvFile { .. } | Store::Vault { .. } => {}
        }
    }
}

/// A file of the store: its path relative to the config's directory, and its
/// contents (write it private: it holds secrets).
#[derive(Debug, Clone)]
pub struct StoreFile {
    pub path: String,
    pub contents: String,
}

/// Platforms × store × tokens × clock. See the module docs.
#[derive(Debug, Clone)]
pub struct Scenario {
    now: Timestamp,
    pinned: bool,
    label: String,
    platforms: Vec<Platform>,
    store: Store,
    auth: Vec<String>,
    http: Option<String>,
    extra: String,
}

impl Scenario {
    /// A scenario on a fixed clock: the simulator's clock is pinned to `now` and
    /// the caller runs evertoken with the same time (`EVERTOKEN_NOW`).
    pub fn at(now: Timestamp) -> Scenario {
        Scenario::new(now, true)
    }

    /// A scenario on the real clock (the simulator keeps real time).
    pub fn wall_clock() -> Scenario {
        Scenario::new(Timestamp::now(), false)
    }

    fn new(now: Timestamp, pinned: bool) -> Scenario {
        Scenario {
            now,
            pinned,
            label: "test".to_owned(),
            platforms: Vec::new(),
            store: Store::local(),
            auth: Vec::new(),
            http: None,
            extra: String::new(),
        }
    }

    /// The word every generated client id, secret and token starts with
    /// (default `test`).
    pub fn label(mut self, label: &str) -> Self {
        self.label = label.to_owned();
        self
    }

    /// Adds `p`, or replaces the platform of the same key where it stands.
    pub fn with(mut self, p: Platform) -> Self {
        match self.platforms.iter_mut().find(|q| q.d.key == p.d.key) {
            Some(q) => *q = p,
            None => self.platforms.push(p),
        }
        self
    }

    /// Adds each of `keys` with its default token.
    pub fn platforms(self, keys: &[&str]) -> Self {
        keys.iter().fold(self, |s, k| s.with(platform(k)))
    }

    /// [`DEMO_PLATFORMS`], each with its default token.
    pub fn demo_platforms(self) -> Self {
        self.platforms(DEMO_PLATFORMS)
    }

    pub fn store(mut self, store: Store) -> Self {
        self.store = store;
        self
    }

    /// One more line of the `auth:` block (`journal_dir: state`).
    pub fn auth_setting(mut self, line: &str) -> Self {
        self.auth.push(line.to_owned());
        self
    }

    /// The `http:` block's settings (`timeout_seconds: 5, retries: 1`).
    pub fn http(mut self, settings: &str) -> Self {
        self.http = Some(settings.to_owned());
        self
    }

    /// YAML appended to the config as is (top-level sections such as `github:`).
    pub fn extra_config(mut self, yaml: &str) -> Self {
        self.extra.push_str(yaml);
        self
    }

    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// `now` + `days` days.
    pub fn days(&self, days: i64) -> Timestamp {
        days_from(self.now, days)
    }

    fn labelled(&self, s: &str) -> String {
        s.replace("{label}", &self.label)
    }

    fn get(&self, key: &str) -> &Platform {
        self.platforms
            .iter()
            .find(|p| p.d.key == key)
            .unwrap_or_else(|| panic!("scenario: `{key}` is not in this scenario"))
    }

    /// (account name, variable suffix) of each account of `p`.
    fn accounts(p: &Platform) -> Vec<(Option<&str>, String)> {
        if p.accounts.is_empty() {
            return vec![(None, String::new())];
        }
        p.accounts
            .iter()
            .map(|a| {
                let suffix = a.to_ascii_uppercase().replace(['-', '.'], "_");
                (Some(a.as_str()), format!("_{suffix}"))
            })
            .collect()
    }

    fn seeds(&self, p: &Platform) -> Vec<(String, Seed)> {
        Self::accounts(p)
            .into_iter()
            .filter(|_| p.tokens)
            .map(|(account, suffix)| {
                let value = match (&p.value, account) {
                    (Some(v), _) => v.clone(),
                    (None, None) => format!("{}-not-a-real-secret", self.labelled(p.d.token)),
                    (None, Some(a)) => {
                        format!("{}-{a}-not-a-real-secret", self.labelled(p.d.token))
                    }
                };
                let seed = Seed {
                    value,
                    issued_at: p.issued_days_ago.map(|d| self.days(-d)),
                    expires_at: p.expires_in_days.map(|d| self.days(d)),
                };
                (format!("{}{suffix}", p.d.token_var), seed)
            })
            .collect()
    }

    /// The seeded token of `key`'s default (or only) account.
    pub fn token(&self, key: &str) -> String {
        let p = self.get(key);
        let mut seeds = self.seeds(p).into_iter();
        let (_, first) = seeds
            .next()
            .unwrap_or_else(|| panic!("scenario: `{key}` has no token"));
        first.value
    }

    /// The seeded token of `key`'s account `account`.
    pub fn account_token(&self, key: &str, account: &str) -> String {
        let p = self.get(key);
        let i = p
            .accounts
            .iter()
            .position(|a| a == account)
            .unwrap_or_else(|| panic!("scenario: `{key}` has no account `{account}`"));
        self.seeds(p).remove(i).1.value
    }

    /// The client id of `key`'s app.
    pub fn client_id(&self, key: &str) -> String {
        let app = self.get(key).app().expect("the platform has an app");
        self.labelled(app.id)
    }

    /// The client secret of `key`'s app.
    pub fn client_secret(&self, key: &str) -> String {
        let app = self.get(key).app().expect("the platform has an app");
        self.labelled(app.secret)
    }

    /// Every secret the scenario made: tokens and client secrets.
    pub fn secrets(&self) -> Vec<String> {
        let mut v = Vec::new();
        for p in &self.platforms {
            v.extend(self.seeds(p).into_iter().map(|(_, s)| s.value));
            if let Some(app) = p.app() {
                v.push(self.labelled(app.secret));
            }
        }
        v.extend(self.store.credential().map(|(_, c)| c.to_owned()));
        v
    }

    /// What the store holds: (variable, value) of each token and of each client
    /// secret not left to the environment. A remote store's test seeds these
    /// (GitLab variables, Vault KV entries, keychain items); the local stores'
    /// are in [`Scenario::store_files`].
    pub fn store_vars(&self) -> Vec<(String, String)> {
        let mut v = Vec::new();
        for p in &self.platforms {
            v.extend(self.seeds(p).into_iter().map(|(var, s)| (var, s.value)));
            if let Some(app) = p.app().filter(|_| p.secret_in_store) {
                v.push((app.secret_var.to_owned(), self.labelled(app.secret)));
            }
        }
        v
    }

    /// What the run's environment holds, as a CI job or a service unit has it:
    /// the store's credential (`GITLAB_TOKEN`, `VAULT_TOKEN`, `GITHUB_TOKEN`),
    /// the client secrets the store does not hold, and for GitHub Actions, whose
    /// secrets cannot be read back, every value of [`Scenario::store_vars`].
    pub fn env_vars(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = self
            .store
            .credential()
            .map(|(k, c)| (k.to_owned(), c.to_owned()))
            .into_iter()
            .collect();
        for p in self.platforms.iter().filter(|p| !p.secret_in_store) {
            if let Some(app) = p.app() {
                v.push((app.secret_var.to_owned(), self.labelled(app.secret)));
            }
        }
        if let Store::GitHubActions { .. } = self.store {
            v.extend(self.store_vars());
        }
        v
    }

    /// Seeds the simulator: each app (its client kind, its redirect URIs), each
    /// token, and (on a fixed clock) the simulator's clock.
    pub fn seed(&self, sim: &Sim) {
        if self.pinned {
            sim.set_now(Some(self.now));
        }
        self.store.seed(sim);
        for p in &self.platforms {
            let id = p.app().map(|a| self.labelled(a.id));
            assert!(
                p.redirects.is_empty() || p.app().is_some(),
                "{}: redirect URIs belong to an app; this platform has none here (use `signs_in()`)",
                p.d.key
            );
            if let Some(app) = p.app() {
                let redirects: Vec<&str> = p.redirects.iter().map(String::as_str).collect();
                (p.d.seed_app)(
                    sim,
                    &ClientSeed {
                        id: &self.labelled(app.id),
                        secret: &self.labelled(app.secret),
                        kind: p.client,
                        redirects: &redirects,
                    },
                );
            }
            for (_, seed) in self.seeds(p) {
                (p.d.seed_token)(sim, id.as_deref().unwrap_or(""), &seed);
            }
        }
    }

    /// Whether the simulator accepts `token` as `key`'s credential now.
    pub fn is_live(&self, sim: &Sim, key: &str, token: &str) -> bool {
        (descriptor(key).is_live)(sim, token)
    }

    /// The config file, with every platform pointed at `base_url`.
    pub fn config_yaml(&self, base_url: &str) -> String {
        let mut y = String::from("platforms:\n");
        for p in &self.platforms {
            let mut fields = vec![
                "enabled: true".to_owned(),
                format!("base_url: \"{base_url}\""),
            ];
            if p.signs_in {
                fields.push(format!("auth_url: \"{base_url}\""));
            }
            if let Some(app) = p.app() {
                fields.push(format!("{}: {}", app.id_key, self.labelled(app.id)));
            }
            if !p.d.settings.is_empty() {
                fields.push(p.d.settings.to_owned());
            }
            if !p.accounts.is_empty() {
                fields.push(format!("accounts: [{}]", p.accounts.join(", ")));
            }
            fields.extend(p.settings.iter().cloned());
            let _ = writeln!(y, "  {}: {{ {} }}", p.d.key, fields.join(", "));
        }
        y.push_str("auth:\n");
        for line in &self.auth {
            let _ = writeln!(y, "  {line}");
        }
        y.push_str("  writeback:\n");
        y.push_str(&self.store.writeback_yaml(base_url));
        if let Some(http) = &self.http {
            let _ = writeln!(y, "http: {{ {http} }}");
        }
        y.push_str(&self.extra);
        y
    }

    /// The store's files: the tokens (with the metadata the store records) and
    /// the client secrets. A remote store has none.
    pub fn store_files(&self) -> Vec<StoreFile> {
        let path = match &self.store {
            Store::Local { file, .. } => file.clone().unwrap_or("credentials.yaml".to_owned()),
            Store::EnvFile { path } => path.clone(),
            Store::GitLab { .. } | Store::Vault { .. } | Store::GitHubActions { .. } => {
                return Vec::new();
            }
        };
        let mut text = String::new();
        for p in &self.platforms {
            for (var, seed) in self.seeds(p) {
                text.push_str(&self.entry(p, &var, &seed));
            }
            if let Some(app) = p.app().filter(|_| p.secret_in_store) {
                let secret = self.labelled(app.secret);
                text.push_str(&match self.store {
                    Store::Local { .. } => format!("{}: \"{secret}\"\n", app.secret_var),
                    _ => format!("{}={secret}\n", app.secret_var),
                });
            }
        }
        vec![StoreFile {
            path,
            contents: text,
        }]
    }

    fn entry(&self, p: &Platform, var: &str, seed: &Seed) -> String {
        let Store::Local { .. } = self.store else {
            return format!("{var}={}\n", seed.value);
        };
        let mut meta = String::new();
        if let Some(e) = seed.expires_at.filter(|_| p.records_expiry) {
            let _ = write!(meta, "\n  expires_at: {e}");
        }
        if let Some(i) = seed.issued_at {
            let _ = write!(meta, "\n  updated_at: {i}");
        }
        if meta.is_empty() {
            format!("{var}: \"{}\"\n", seed.value)
        } else {
            format!("{var}:\n  value: \"{}\"{meta}\n", seed.value)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-11-23T09:00:00Z".parse().unwrap()
    }

    #[test]
    fn every_platform_seeds_a_token_the_simulator_accepts() {
        let sim = Sim::new(std::time::Duration::ZERO, false);
        let keys: Vec<&str> = PLATFORMS.iter().map(|d| d.key).collect();
        let s = Scenario::at(now()).platforms(&keys);
        assert!(!s.is_live(&sim, "tiktok", &s.token("tiktok")));
        s.seed(&sim);
        assert_eq!(sim.now(), now());
        for k in keys {
            assert!(s.is_live(&sim, k, &s.token(k)), "{k}");
        }
        let secrets = s.secrets();
        assert_eq!(
            secrets.len(),
            PLATFORMS.len() * 2 - 1,
            "a token per platform and a secret per app: {secrets:?}"
        );
    }

    #[test]
    fn config_and_store_say_what_the_builder_was_told() {
        let s = Scenario::at(now())
            .demo_platforms()
            .with(platform("tiktok").accounts(&["brand-a", "brand-b"]))
            .with(platform("instagram").issued_unknown().expires_in_days(50))
            .store(Store::local().keychain_auto())
            .auth_setting("journal_dir: state")
            .http("timeout_seconds: 5");
        let y = s.config_yaml("http://127.0.0.1:1");
        assert!(y.starts_with("platforms:\n  instagram: { enabled: true, base_url: \"http://127.0.0.1:1\" }\n  youtube:"), "{y}");
        assert!(y.contains("  tiktok: { enabled: true, base_url: \"http://127.0.0.1:1\", client_key: test-client-key, accounts: [brand-a, brand-b] }\n"), "{y}");
        assert!(
            y.contains("client_id: test-linkedin-client, warn_before_days: 14 }"),
            "{y}"
        );
        assert!(y.contains("auth:\n  journal_dir: state\n  writeback:\n    backend: local\n    local: { keychain: auto }\nhttp: { timeout_seconds: 5 }\n"), "{y}");
        let files = s.store_files();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].path, "credentials.yaml");
        let c = &files[0].contents;
        assert!(c.contains(&format!("INSTAGRAM_ACCESS_TOKEN:\n  value: \"test-ig-token-not-a-real-secret\"\n  expires_at: {}\n", s.days(50))), "{c}");
        assert!(!c.contains("updated_at"), "{c}");
        assert!(c.contains("TIKTOK_REFRESH_TOKEN_BRAND_B:\n  value: \"rft.test-tiktok-refresh-brand-b-not-a-real-secret\"\n"), "{c}");
        assert!(
            c.contains("LINKEDIN_ACCESS_TOKEN: \"test-li-access-not-a-real-secret\"\n"),
            "{c}"
        );
        assert!(
            c.contains("YOUTUBE_CLIENT_SECRET: \"test-google-client-secret\"\n"),
            "{c}"
        );

        let e = Scenario::at(now())
            .with(platform("tiktok").client_secret_not_stored())
            .store(Store::env_file("tokens.env"));
        assert!(
            e.config_yaml("x")
                .contains("backend: env-file\n    env_file: { path: tokens.env }")
        );
        let f = &e.store_files()[0];
        assert_eq!(f.path, "tokens.env");
        assert_eq!(
            f.contents,
            "TIKTOK_REFRESH_TOKEN=rft.test-tiktok-refresh-not-a-real-secret\n"
        );
    }

    #[test]
    fn a_login_platform_registers_its_client_and_stores_only_the_secret() {
        let s = Scenario::at(now())
            .with(
                login("tiktok")
                    .client(Client::Desktop)
                    .redirect("http://127.0.0.1:*/callback"),
            )
            .with(login("instagram"))
            .with(platform("linkedin").signs_in().client(Client::Partner));
        let y = s.config_yaml("http://h");
        assert!(y.contains("  tiktok: { enabled: true, base_url: \"http://h\", auth_url: \"http://h\", client_key: test-client-key }\n"), "{y}");
        assert!(
            y.contains("auth_url: \"http://h\", app_id: test-instagram-app }"),
            "{y}"
        );
        let c = &s.store_files()[0].contents;
        assert!(c.starts_with("TIKTOK_CLIENT_SECRET: \"test-tiktok-client-secret\"\nINSTAGRAM_APP_SECRET: \"test-instagram-app-secret\"\nLINKEDIN_ACCESS_TOKEN:"), "{c}");
        assert_eq!(
            s.secrets().len(),
            4,
            "three client secrets, LinkedIn's token"
        );
        let sim = Sim::new(std::time::Duration::ZERO, false);
        s.seed(&sim);
        let st = sim.lock();
        assert!(st.tiktok.desktop.contains("test-client-key"));
        assert!(st.instagram.apps.contains_key("test-instagram-app"));
        assert!(st.linkedin.clients["test-linkedin-client"].refresh_enabled);
        let key = ("tiktok".to_owned(), "test-client-key".to_owned());
        assert_eq!(st.oauth.registered[&key], ["http://127.0.0.1:*/callback"]);
    }

    #[test]
    fn remote_stores_say_their_block_and_where_each_variable_goes() {
        let tiktok = || platform("tiktok").client_secret_not_stored();
        let g = Scenario::at(now())
            .with(tiktok())
            .store(Store::gitlab_project("4242").setting("environment_scope: production"));
        assert!(g.config_yaml("http://h").contains("    backend: gitlab\n    gitlab: { project: \"4242\", environment_scope: production, api_url: \"http://h/api/v4\" }\n"));
        assert!(g.store_files().is_empty());
        let token = ("TIKTOK_REFRESH_TOKEN".to_owned(), g.token("tiktok"));
        assert_eq!(g.store_vars(), std::slice::from_ref(&token));
        let secret = ("TIKTOK_CLIENT_SECRET".to_owned(), g.client_secret("tiktok"));
        let gitlab = ("GITLAB_TOKEN".to_owned(), GITLAB_TOKEN.to_owned());
        assert_eq!(g.env_vars(), [gitlab, secret.clone()]);
        assert!(g.secrets().contains(&GITLAB_TOKEN.to_owned()));
        let pipeline = g.clone().store(Store::gitlab_from_pipeline());
        assert!(
            pipeline
                .config_yaml("x")
                .ends_with("  writeback:\n    backend: gitlab\n")
        );

        let v = Scenario::at(now())
            .platforms(&["tiktok"])
            .store(Store::vault("http://bao", "root").setting("namespace: team-a"));
        assert!(v.config_yaml("x").contains("    backend: vault\n    vault: { address: \"http://bao\", mount: secret, path: evertoken, namespace: team-a }\n"));
        assert_eq!(v.store_vars(), [token.clone(), secret.clone()]);
        assert_eq!(
            v.env_vars(),
            [("VAULT_TOKEN".to_owned(), "root".to_owned())]
        );

        let a = Scenario::at(now())
            .with(tiktok())
            .store(Store::github_organization().setting("visibility: all"));
        assert!(a.config_yaml("http://h").contains("    backend: github-actions\n    github_actions: { organization: acme, visibility: all, api_url: \"http://h\" }\n"));
        let github = ("GITHUB_TOKEN".to_owned(), ACTIONS_TOKEN.to_owned());
        assert_eq!(a.env_vars(), [github, secret, token]);

        let k = Scenario::at(now()).store(Store::local().keychain("required"));
        assert!(k.config_yaml("x").contains("local: { keychain: required }"));
    }
}
