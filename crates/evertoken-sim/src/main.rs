//! `evertoken-sim [--port N] [--latency-ms N] [--lenient]
//!  [--github-app-id N --github-installation-id N [--github-account LOGIN]]`
//!
//! Prints exactly one line, `listening on http://127.0.0.1:PORT`, then serves
//! until killed. Seed and steer it through the `/_sim/` control API.

use std::io::Write as _;
use std::time::Duration;

use evertoken_sim::{SimOptions, SimServer, test_rsa_keypair};

const USAGE: &str = "usage: evertoken-sim [--port N] [--latency-ms N] [--lenient] \
[--github-app-id N --github-installation-id N [--github-account LOGIN]]";

struct Args {
    port: u16,
    latency_ms: u64,
    lenient: bool,
    app_id: Option<u64>,
    installation_id: Option<u64>,
    account: String,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        port: 0,
        latency_ms: 0,
        lenient: false,
        app_id: None,
        installation_id: None,
        account: "sim-org".to_string(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        let num = |name: &str, v: String| -> Result<u64, String> {
            v.parse::<u64>()
                .map_err(|_| format!("{name}: `{v}` is not a number\n{USAGE}"))
        };
        match flag.as_str() {
            "--port" => {
                let v = value("--port")?;
                a.port = u16::try_from(num("--port", v)?)
                    .map_err(|_| "--port: too large".to_string())?;
            }
            "--latency-ms" => {
                let v = value("--latency-ms")?;
                a.latency_ms = num("--latency-ms", v)?;
            }
            "--lenient" => a.lenient = true,
            "--github-app-id" => {
                let v = value("--github-app-id")?;
                a.app_id = Some(num("--github-app-id", v)?);
            }
            "--github-installation-id" => {
                let v = value("--github-installation-id")?;
                a.installation_id = Some(num("--github-installation-id", v)?);
            }
            "--github-account" => a.account = value("--github-account")?,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    if a.installation_id.is_some() && a.app_id.is_none() {
        return Err(format!(
            "--github-installation-id needs --github-app-id\n{USAGE}"
        ));
    }
    Ok(a)
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("evertoken-sim: {e}");
            std::process::exit(2);
        }
    };
    let opts = SimOptions {
        latency: Duration::from_millis(args.latency_ms),
        lenient: args.lenient,
    };
    let server = match SimServer::start_on_port(opts, args.port).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "evertoken-sim: cannot listen on 127.0.0.1:{}: {e}",
                args.port
            );
            std::process::exit(1);
        }
    };
    if let Some(app_id) = args.app_id {
        let sim = server.sim();
        sim.github_add_app(app_id, &format!("Iv23sim{app_id}"), &test_rsa_keypair().1);
        if let Some(inst) = args.installation_id {
            sim.github_add_installation(app_id, inst, &args.account, "Organization", Vec::new());
        }
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on {}", server.base_url());
    let _ = out.flush();
    drop(out);
    let _ = tokio::signal::ctrl_c().await;
    drop(server);
}
