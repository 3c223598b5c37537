//! What the simulator's tests share, so that each test reads as "this provider,
//! this request, this answer":
//!
//! - [`Env`]: a started simulator, its [`Sim`] handle and an [`Http`] client
//!   pointed at it; [`Env::seeded`] and [`Env::seeded_app`] start one from a
//!   [`Scenario`](evertoken_sim::scenario::Scenario), the simulator's own
//!   builder of apps, tokens, stores and clock, and [`Env::register`] adds an
//!   app with its redirect URIs where a scenario does not say them;
//! - [`Provider`] and [`App`]: each provider's OAuth endpoints, client-id
//!   parameter, client-authentication style (form body or HTTP Basic), PKCE
//!   challenge encoding (RFC 7636 base64url, TikTok's hex) and refresh style
//!   (the `refresh_token` grant, or Meta's Graph `GET`);
//! - the authorize → code → token flow ([`Http::authorize`], [`Http::code`],
//!   [`Http::exchange`], [`Http::login`]) and the refresh grant
//!   ([`Http::refresh`]), each sending the app's client authentication;
//! - [`Call`] and [`Answer`]: send a request and check its status and the fields
//!   of its JSON body in one line ([`Answer::check`], with [`STRING`], [`I64`],
//!   [`ABSENT`]… for fields checked by kind);
//! - table-driven runners for checks of the same shape on several providers
//!   ([`Http::authorize_statuses`], [`Http::rejects_client_auth`],
//!   [`Http::controls`], [`graph_refresh_rules`]).

use std::collections::HashMap;
use std::future::Future;
use std::ops::Deref;

use base64::Engine as _;
use evertoken_sim::scenario::Scenario;
use evertoken_sim::{Sim, SimOptions, SimServer};
use jiff::{SignedDuration, Timestamp};
use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, Response};
use sha2::Digest as _;

pub use reqwest::Method;
pub use serde_json::{Value, json};

// ------------------------------------------------------------------ values

/// A PKCE verifier, and a wrong one of the same length.
pub const VERIFIER: &str = "sim-verifier-0123456789-0123456789-0123456789";
pub const WRONG_VERIFIER: &str = "wrong-verifier-wrong-verifier-wrong-verifier";
/// The `state` every authorize request sends.
pub const STATE: &str = "st";
/// A loopback redirect, as a native app registers it.
pub const LOOPBACK: &str = "http://127.0.0.1:9/cb";
/// The clock of the tests that pin it.
pub const NOW: &str = "2026-11-23T09:00:00Z";

/// RFC 7636 `S256`: base64url(SHA-256(verifier)).
pub fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}

/// TikTok's `S256`: hex(SHA-256(verifier)).
pub fn hexed(verifier: &str) -> String {
    hex::encode(sha2::Sha256::digest(verifier))
}

pub fn fixed_now() -> Timestamp {
    NOW.parse().expect("timestamp")
}

pub fn hours(n: i64) -> SignedDuration {
    SignedDuration::from_hours(n)
}

pub fn days(n: i64) -> SignedDuration {
    SignedDuration::from_hours(24 * n)
}

/// The HTTP client of every test: redirects are answers to look at, not follow.
pub fn client() -> reqwest::Client {
    evertoken_sim::install_client_crypto();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Runs `f` to completion on a runtime of its own (for the `#[test]`s that talk
/// to a simulator serving from another thread or process).
pub fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

// --------------------------------------------------------------- providers

/// How a client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// The client id and secret in the form body.
    Body,
    /// HTTP Basic (`client_secret_basic`).
    Basic,
}

/// One provider's OAuth endpoints and conventions.
#[derive(Debug, Clone, Copy)]
pub struct Provider {
    /// Its name: how [`Env::register`] tells the simulator of its apps.
    pub name: &'static str,
    pub authorize: &'static str,
    pub token: &'static str,
    /// `client_id`, or TikTok's `client_key`.
    pub id_param: &'static str,
    pub style: Style,
    /// The `code_challenge` of a verifier.
    pub challenge: fn(&str) -> String,
    /// Meta's Graph API (Instagram, Threads): `GET`s with the token in the
    /// query, grants named with this prefix (`ig_refresh_token`,
    /// `th_exchange_token`). `None`: the `refresh_token` grant at `token`.
    pub graph: Option<&'static str>,
}

impl Provider {
    /// These conventions under `name`, at these endpoints.
    const fn at(self, name: &'static str, authorize: &'static str, token: &'static str) -> Self {
        Provider {
            name,
            authorize,
            token,
            ..self
        }
    }

    /// Meta's grant `{prefix}_{what}_token`.
    pub fn grant(&self, what: &str) -> String {
        let prefix = self.graph.expect("a Graph provider");
        format!("{prefix}_{what}_token")
    }
}

/// What most providers do: `client_id` and the secret in the body, RFC 7636
/// `S256`, the `refresh_token` grant.
const OAUTH: Provider = Provider {
    name: "",
    authorize: "",
    token: "",
    id_param: "client_id",
    style: Style::Body,
    challenge: s256,
    graph: None,
};
/// TikTok's: `client_key`, a hex challenge.
const TIKTOK_WAYS: Provider = Provider {
    id_param: "client_key",
    challenge: hexed,
    ..OAUTH
};
/// HTTP Basic for a confidential client (X, Pinterest).
const BASIC: Provider = Provider {
    style: Style::Basic,
    ..OAUTH
};
/// Meta's Graph API with the grants' prefix.
const fn meta(prefix: &'static str) -> Provider {
    Provider {
        graph: Some(prefix),
        ..OAUTH
    }
}

pub const GOOGLE: Provider = OAUTH.at("google", "/o/oauth2/v2/auth", "/token");
/// A TikTok web app (https redirects only).
pub const TIKTOK: Provider = TIKTOK_WAYS.at("tiktok", "/v2/auth/authorize/", "/v2/oauth/token/");
/// A TikTok desktop app (loopback redirects, PKCE required).
pub const TIKTOK_DESKTOP: Provider = Provider {
    name: "tiktok-desktop",
    ..TIKTOK
};
pub const LINKEDIN: Provider = OAUTH.at(
    "linkedin",
    "/oauth/v2/authorization",
    "/oauth/v2/accessToken",
);
pub const INSTAGRAM: Provider =
    meta("ig").at("instagram", "/oauth/authorize", "/oauth/access_token");
/// Threads: Instagram's paths, its own apps, tokens and grants.
pub const THREADS: Provider = meta("th").at("threads", "/oauth/authorize", "/oauth/access_token");
pub const X: Provider = BASIC.at("x", "/i/oauth2/authorize", "/2/oauth2/token");
pub const PINTEREST: Provider = BASIC.at("pinterest", "/oauth/", "/v5/oauth/token");

/// How the simulator seeds a Meta provider's token (value, issued, expires), and
/// says whether one is valid and when it expires.
type MetaTokens = (
    fn(&Sim, &str, Timestamp, Timestamp),
    fn(&Sim, &str) -> bool,
    fn(&Sim, &str) -> Option<Timestamp>,
);

fn meta_tokens(p: &Provider) -> MetaTokens {
    match p.name {
        "instagram" => (
            Sim::instagram_add_token,
            Sim::instagram_is_valid,
            Sim::instagram_expires_at,
        ),
        "threads" => (
            Sim::threads_add_token,
            Sim::threads_is_valid,
            Sim::threads_expires_at,
        ),
        other => panic!("`{other}` is not a Meta provider"),
    }
}

/// How one request authenticates its client, where a test sends something
/// other than what its [`App`] would.
#[derive(Debug, Clone, Copy)]
pub enum ClientAuth<'a> {
    Basic(&'a str, &'a str),
    /// The id (under the provider's `id_param`) and the secret, if any, in the body.
    Body(&'a str, Option<&'a str>),
    Nothing,
}

/// An app registered with a provider: a confidential client (with a secret,
/// authenticating in the provider's [`Style`]) or a public one (its id in the
/// body, no secret).
#[derive(Debug, Clone, Copy)]
pub struct App {
    pub p: &'static Provider,
    pub id: &'static str,
    pub secret: Option<&'static str>,
    /// The scope its authorize requests ask for.
    pub scope: &'static str,
}

impl App {
    /// A confidential app; it asks for no scope until [`App::scoped`].
    pub const fn new(p: &'static Provider, id: &'static str, secret: &'static str) -> App {
        App {
            p,
            id,
            secret: Some(secret),
            scope: "",
        }
    }

    /// A public app (no secret).
    pub const fn public(p: &'static Provider, id: &'static str) -> App {
        App {
            p,
            id,
            secret: None,
            scope: "",
        }
    }

    /// The same app asking for `scope`.
    pub const fn scoped(self, scope: &'static str) -> App {
        App { scope, ..self }
    }

    /// The same app sending another secret.
    pub const fn with_secret(self, secret: &'static str) -> App {
        App {
            secret: Some(secret),
            ..self
        }
    }

    /// The app the scenario seeded for its platform `key` (its id and secret
    /// leaked: a few bytes a test).
    pub fn seeded(p: &'static Provider, s: &Scenario, key: &str) -> App {
        let secret = s.client_secret(key).leak();
        App::new(p, s.client_id(key).leak(), secret)
    }

    pub fn secret(&self) -> &'static str {
        self.secret.expect("a confidential app")
    }

    /// What its token requests send.
    pub fn auth(&self) -> ClientAuth<'static> {
        match (self.secret, self.p.style) {
            (None, _) => ClientAuth::Body(self.id, None),
            (Some(s), Style::Body) => ClientAuth::Body(self.id, Some(s)),
            (Some(s), Style::Basic) => ClientAuth::Basic(self.id, s),
        }
    }
}

// --------------------------------------------------------------- answers

/// Field checks by kind, for [`Answer::check`] and [`assert_fields`].
pub const STRING: &str = "<any string>";
pub const I64: &str = "<any i64>";
pub const U64: &str = "<any u64>";
pub const OBJECT: &str = "<any object>";
/// The field is not there at all.
pub const ABSENT: &str = "<absent>";

fn fields_match(got: &Value, want: &Value, at: &str) -> Result<(), String> {
    let kind = |ok: bool, what: &str| match ok {
        true => Ok(()),
        false => Err(format!("{at}: want {what}, got {got}")),
    };
    match want {
        Value::Object(fields) => {
            for (k, w) in fields {
                let here = format!("{at}/{k}");
                match got.get(k) {
                    None if w == ABSENT => {}
                    Some(v) if w == ABSENT => return Err(format!("{here}: want absent, got {v}")),
                    v => fields_match(v.unwrap_or(&Value::Null), w, &here)?,
                }
            }
            Ok(())
        }
        Value::Array(items) => {
            for (i, w) in items.iter().enumerate() {
                fields_match(got.get(i).unwrap_or(&Value::Null), w, &format!("{at}/{i}"))?;
            }
            Ok(())
        }
        Value::String(s) if s == STRING => kind(got.is_string(), "a string"),
        Value::String(s) if s == I64 => kind(got.is_i64(), "an i64"),
        Value::String(s) if s == U64 => kind(got.is_u64(), "a u64"),
        Value::String(s) if s == OBJECT => kind(got.is_object(), "an object"),
        w => kind(got == w, &w.to_string()),
    }
}

/// Asserts that `got` has every field of `want`, recursively (other fields, and
/// array items past `want`'s, may be there too): equal values, or of the kind
/// [`STRING`], [`I64`]… says.
#[track_caller]
pub fn assert_fields(got: &Value, want: &Value) {
    if let Err(m) = fields_match(got, want, "") {
        panic!("{m}\nin {got}");
    }
}

/// A response: its status, headers and JSON body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    /// Reads `r`, whose body must be JSON.
    pub async fn of(r: Response) -> Answer {
        let (status, headers) = (r.status().as_u16(), r.headers().clone());
        let body = r.json().await.expect("a JSON body");
        Answer {
            status,
            headers,
            body,
        }
    }

    /// Asserts the status and the body's `fields` ([`assert_fields`]); the body.
    #[track_caller]
    pub fn check(&self, status: u16, fields: Value) -> &Value {
        assert_eq!(self.status, status, "{}", self.body);
        assert_fields(&self.body, &fields);
        &self.body
    }

    /// Asserts the status and the whole body.
    #[track_caller]
    pub fn exactly(&self, status: u16, body: Value) {
        assert_eq!((self.status, &self.body), (status, &body));
    }

    /// Asserts a 200; the body.
    #[track_caller]
    pub fn ok(&self) -> &Value {
        self.check(200, json!({}))
    }

    /// The string field `key`.
    #[track_caller]
    pub fn str(&self, key: &str) -> String {
        let v = self.body[key].as_str();
        v.unwrap_or_else(|| panic!("no string `{key}` in {}", self.body))
            .to_owned()
    }
}

/// Sending a request, `.expect`ing it to be answered.
pub trait Call {
    fn sent(self) -> impl Future<Output = Response> + Send;
    /// The status and JSON body.
    fn answer(self) -> impl Future<Output = Answer> + Send;
    /// The status alone (the body is not read).
    fn status(self) -> impl Future<Output = u16> + Send;
    /// The status and text body.
    fn text(self) -> impl Future<Output = (u16, String)> + Send;
}

impl Call for RequestBuilder {
    async fn sent(self) -> Response {
        self.send().await.expect("send")
    }
    async fn answer(self) -> Answer {
        Answer::of(self.sent().await).await
    }
    async fn status(self) -> u16 {
        self.sent().await.status().as_u16()
    }
    async fn text(self) -> (u16, String) {
        let r = self.sent().await;
        (r.status().as_u16(), r.text().await.expect("text"))
    }
}

// ------------------------------------------------------------ environment

/// The answer to an authorize request: its status, its `Location` (empty when
/// there is none) and that redirect's query pairs.
#[derive(Debug)]
pub struct Authz {
    pub status: u16,
    pub loc: String,
    pub q: HashMap<String, String>,
}

impl Authz {
    /// Asserts a redirect carrying a code and the request's [`STATE`]; the code.
    #[track_caller]
    pub fn code(&self) -> String {
        assert_eq!(self.status, 302, "{}", self.loc);
        assert_eq!(
            self.q.get("state").map(String::as_str),
            Some(STATE),
            "{}",
            self.loc
        );
        let code = self.q.get("code");
        code.unwrap_or_else(|| panic!("no code in {}", self.loc))
            .clone()
    }

    /// Asserts a redirect carrying `error` and no code.
    #[track_caller]
    pub fn error_redirect(&self, error: &str) {
        assert_eq!(self.status, 302, "{}", self.loc);
        assert_eq!(self.q.get("error").map(String::as_str), Some(error));
        assert!(!self.q.contains_key("code"), "{}", self.loc);
    }
}

/// An HTTP client pointed at a simulator: requests by path, the OAuth flows and
/// the control API.
#[derive(Clone)]
pub struct Http {
    pub c: reqwest::Client,
    pub base: String,
}

impl Http {
    pub fn new(base: String) -> Http {
        Http { c: client(), base }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.c.request(method, self.url(path))
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.req(Method::GET, path)
    }

    pub fn post(&self, path: &str) -> RequestBuilder {
        self.req(Method::POST, path)
    }

    /// A GitLab API request (`/api/v4/{path}`) with a `PRIVATE-TOKEN`.
    pub fn gitlab(&self, method: Method, path: &str, token: &str) -> RequestBuilder {
        let r = self.req(method, &format!("/api/v4/{path}"));
        r.header("PRIVATE-TOKEN", token)
    }

    /// POSTs `body` to the control API; the status.
    pub async fn control(&self, path: &str, body: Value) -> u16 {
        self.post(path).json(&body).status().await
    }

    /// [`Http::control`] for each row of the table `rows`, a JSON array of
    /// `[path, body, expected status]`.
    pub async fn controls(&self, rows: Value) {
        for row in rows.as_array().expect("an array of rows") {
            let path = row[0].as_str().expect("a path");
            let got = self.control(path, row[1].clone()).await;
            assert_eq!(Some(u64::from(got)), row[2].as_u64(), "{row}");
        }
    }

    /// GETs a JSON document (the control API's views).
    pub async fn inspect(&self, path: &str) -> Value {
        let r = self.get(path).sent().await;
        r.json().await.expect("json")
    }

    /// An authorize request: the app's id, `redirect`, `response_type=code`, its
    /// scope, [`STATE`] and, given a `challenge`, PKCE `S256`; `extra` adds
    /// parameters or replaces those.
    pub async fn authorize(
        &self,
        app: &App,
        redirect: &str,
        challenge: Option<&str>,
        extra: &[(&str, &str)],
    ) -> Authz {
        let mut q = vec![
            (app.p.id_param, app.id),
            ("redirect_uri", redirect),
            ("response_type", "code"),
            ("scope", app.scope),
            ("state", STATE),
        ];
        if let Some(ch) = challenge {
            q.extend([("code_challenge", ch), ("code_challenge_method", "S256")]);
        }
        for &(k, v) in extra {
            match q.iter_mut().find(|(have, _)| *have == k) {
                Some(p) => p.1 = v,
                None => q.push((k, v)),
            }
        }
        let r = self.get(app.p.authorize).query(&q).sent().await;
        let loc = r.headers().get("location");
        let loc = loc.map(|v| v.to_str().expect("ascii").to_owned());
        let loc = loc.unwrap_or_default();
        let q = match url::Url::parse(&loc) {
            Ok(u) => u.query_pairs().into_owned().collect(),
            Err(_) => HashMap::new(),
        };
        let status = r.status().as_u16();
        Authz { status, loc, q }
    }

    /// Authorizes with `verifier`'s challenge in the provider's encoding (none
    /// without one); asserts a code comes back and returns it.
    pub async fn code(&self, app: &App, redirect: &str, verifier: Option<&str>) -> String {
        let challenge = verifier.map(app.p.challenge);
        let a = self.authorize(app, redirect, challenge.as_deref(), &[]);
        a.await.code()
    }

    /// The `authorization_code` grant, with `redirect_uri` and `code_verifier`
    /// where given.
    pub async fn exchange(
        &self,
        app: &App,
        code: &str,
        redirect: Option<&str>,
        verifier: Option<&str>,
    ) -> Answer {
        let mut form = vec![("grant_type", "authorization_code"), ("code", code)];
        form.extend(redirect.map(|r| ("redirect_uri", r)));
        form.extend(verifier.map(|v| ("code_verifier", v)));
        self.token(app, &form).await
    }

    /// The whole flow: [`Http::code`] then [`Http::exchange`] with the same
    /// redirect and verifier.
    pub async fn login(&self, app: &App, redirect: &str, verifier: Option<&str>) -> Answer {
        let code = self.code(app, redirect, verifier).await;
        self.exchange(app, &code, Some(redirect), verifier).await
    }

    /// POSTs `form` to the token endpoint with the app's client authentication.
    pub async fn token(&self, app: &App, form: &[(&str, &str)]) -> Answer {
        self.token_as(app.p, app.auth(), form).await
    }

    /// POSTs `form` to `p`'s token endpoint authenticated as `auth` says.
    pub async fn token_as(
        &self,
        p: &Provider,
        auth: ClientAuth<'_>,
        form: &[(&str, &str)],
    ) -> Answer {
        self.token_request(p, auth, form).answer().await
    }

    /// The request [`Http::token_as`] sends.
    pub fn token_request(
        &self,
        p: &Provider,
        auth: ClientAuth<'_>,
        form: &[(&str, &str)],
    ) -> RequestBuilder {
        let mut form = form.to_vec();
        let mut req = self.post(p.token);
        match auth {
            ClientAuth::Basic(id, secret) => req = req.basic_auth(id, Some(secret)),
            ClientAuth::Body(id, secret) => {
                form.push((p.id_param, id));
                form.extend(secret.map(|s| ("client_secret", s)));
            }
            ClientAuth::Nothing => {}
        }
        req.form(&form)
    }

    /// Refreshes `token` in the provider's way: the `refresh_token` grant, or
    /// Meta's Graph `GET`.
    pub async fn refresh(&self, app: &App, token: &str) -> Answer {
        self.refresh_with(app, token, &[]).await
    }

    /// [`Http::refresh`] with more form fields.
    pub async fn refresh_with(&self, app: &App, token: &str, extra: &[(&str, &str)]) -> Answer {
        match app.p.graph {
            Some(_) => self.meta_refresh(app.p, token).await,
            None => self.refresh_request(app, token, extra).answer().await,
        }
    }

    /// The request of the `refresh_token` grant, with more form fields.
    pub fn refresh_request(
        &self,
        app: &App,
        token: &str,
        extra: &[(&str, &str)],
    ) -> RequestBuilder {
        let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", token)];
        form.extend_from_slice(extra);
        self.token_request(app.p, app.auth(), &form)
    }

    /// Meta's refresh of `token` at `p` (Instagram, Threads), which needs no app.
    pub async fn meta_refresh(&self, p: &Provider, token: &str) -> Answer {
        let grant = p.grant("refresh");
        self.graph_refresh("/refresh_access_token", &grant, token)
            .await
    }

    /// Meta's refresh: `GET path?grant_type=grant&access_token=token`.
    pub async fn graph_refresh(&self, path: &str, grant: &str, token: &str) -> Answer {
        let q = [("grant_type", grant), ("access_token", token)];
        self.get(path).query(&q).answer().await
    }

    /// Meta's exchange of a short-lived token for a long-lived one, with the
    /// app's secret.
    pub async fn long_lived(&self, app: &App, short: &str) -> Answer {
        let grant = app.p.grant("exchange");
        let q = [
            ("grant_type", grant.as_str()),
            ("client_secret", app.secret()),
            ("access_token", short),
        ];
        self.get("/access_token").query(&q).answer().await
    }

    /// Authorizes with each (redirect, expected status); a refusal (400) never
    /// redirects.
    pub async fn authorize_statuses(
        &self,
        app: &App,
        challenge: Option<&str>,
        cases: &[(&str, u16)],
    ) {
        for &(redirect, want) in cases {
            let a = self.authorize(app, redirect, challenge, &[]).await;
            assert_eq!(a.status, want, "{redirect}: {}", a.loc);
            if want == 302 {
                // Accepted means a code comes back, not an error redirect.
                assert!(
                    !a.loc.contains("error="),
                    "{redirect}: accepted, yet redirected with an error: {}",
                    a.loc
                );
            }
            if want == 400 {
                assert!(
                    a.loc.is_empty(),
                    "never redirects to a refused URI: {}",
                    a.loc
                );
            }
        }
    }

    /// Sends `form` to `p`'s token endpoint once per client authentication in
    /// `auths`: each is refused with `status` and `fields`.
    pub async fn rejects_client_auth(
        &self,
        p: &Provider,
        form: &[(&str, &str)],
        auths: &[ClientAuth<'_>],
        status: u16,
        fields: Value,
    ) {
        for &auth in auths {
            let a = self.token_as(p, auth, form).await;
            assert_eq!(a.status, status, "{auth:?}: {}", a.body);
            assert_fields(&a.body, &fields);
        }
    }
}

/// A simulator for one test: the server (stopped on drop), its state and an
/// [`Http`] client (what `Env` derefs to).
pub struct Env {
    /// Kept for its drop, which stops the simulator.
    _server: SimServer,
    pub sim: Sim,
    pub http: Http,
}

impl Deref for Env {
    type Target = Http;
    fn deref(&self) -> &Http {
        &self.http
    }
}

impl Env {
    pub async fn start() -> Env {
        Env::with(SimOptions::default()).await
    }

    /// A simulator that accepts unknown clients and tokens.
    pub async fn lenient() -> Env {
        Env::with(SimOptions {
            lenient: true,
            ..Default::default()
        })
        .await
    }

    pub async fn with(opts: SimOptions) -> Env {
        let server = SimServer::start(opts).await.expect("start");
        Env::of(server)
    }

    pub fn of(server: SimServer) -> Env {
        let http = Http::new(server.base_url());
        Env {
            sim: server.sim(),
            http,
            _server: server,
        }
    }

    /// A simulator seeded with `s`'s apps, tokens and clock.
    pub async fn seeded(s: &Scenario) -> Env {
        let e = Env::start().await;
        s.seed(&e.sim);
        e
    }

    /// A simulator whose clock stands at [`NOW`].
    pub async fn at_fixed_now() -> Env {
        let e = Env::start().await;
        e.sim.set_now(Some(fixed_now()));
        e
    }

    /// Registers `app` with its provider, with `redirects`: with the app where
    /// the provider keeps them there, else in the simulator's shared registry.
    pub fn register(&self, app: &App, redirects: &[&str]) {
        let (sim, id) = (&self.sim, app.id);
        let registry = match app.p.name {
            "threads" => return sim.threads_add_app(id, app.secret(), redirects),
            "pinterest" => return sim.pinterest_add_app(id, app.secret(), redirects),
            "x" => return sim.x_add_client(id, app.secret, redirects),
            "google" => Sim::google_add_client,
            "tiktok" => Sim::tiktok_add_client,
            "tiktok-desktop" => Sim::tiktok_add_desktop_client,
            "linkedin" => Sim::linkedin_add_client,
            "instagram" => Sim::instagram_add_app,
            other => panic!("no registration for `{other}`"),
        };
        registry(sim, id, app.secret());
        let name = app.p.name.trim_end_matches("-desktop");
        for uri in redirects {
            sim.oauth_register_redirect(name, id, uri);
        }
    }

    /// A simulator seeded with `s`, and the app `s` made for its platform
    /// `key` (served by `p`).
    pub async fn seeded_app(s: &Scenario, p: &'static Provider, key: &str) -> (Env, App) {
        (Env::seeded(s).await, App::seeded(p, s, key))
    }
}

// ---------------------------------------------------------------- runners

/// Meta's refresh rules, the same for Instagram and Threads (on a
/// simulator at [`NOW`]; `p` Instagram or Threads): a token younger than 24 hours is refused
/// (`OAuthException`, code 10); an older one gets a new token of 60 days, and
/// lives on until its own expiry; an expired one is refused with 190/463 and an
/// unknown one with 190. Returns the new token.
pub async fn graph_refresh_rules(e: &Env, p: &Provider) -> String {
    let (add_token, is_valid, expires_at) = meta_tokens(p);
    let now = fixed_now();
    let seed = |t: &str, issued: SignedDuration, expires: SignedDuration| {
        add_token(&e.sim, t, now - issued, now + expires)
    };
    seed("sim-young", hours(2), days(59));
    seed("sim-old", days(40), days(20));
    seed("sim-dead", days(70), -days(1));

    let young = e.meta_refresh(p, "sim-young").await;
    let young = young.check(
        400,
        json!({"error": {"type": "OAuthException", "code": 10}}),
    );
    assert_fields(
        &young["error"],
        &json!({"message": STRING, "fbtrace_id": STRING}),
    );
    let message = young["error"]["message"].as_str().expect("message");
    assert!(message.contains("24 hours"), "{message}");

    let old = e.meta_refresh(p, "sim-old").await;
    let fields = json!({"token_type": "bearer", "expires_in": 60 * 86_400});
    let new = old.check(200, fields)["access_token"]
        .as_str()
        .expect("token");
    assert_ne!(new, "sim-old");
    assert!(is_valid(&e.sim, new));
    assert_eq!(expires_at(&e.sim, new), Some(now + days(60)));
    assert!(
        is_valid(&e.sim, "sim-old"),
        "old token lives until its own expiry"
    );

    let expired = json!({"error": {"code": 190, "error_subcode": 463}});
    e.meta_refresh(p, "sim-dead").await.check(400, expired);
    let unknown = e.meta_refresh(p, "sim-never-issued").await;
    unknown.check(400, json!({"error": {"code": 190}}));
    new.to_owned()
}
