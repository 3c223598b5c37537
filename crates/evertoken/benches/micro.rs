//! Criterion micro-benchmarks (issue 9), so regressions in the hot paths show:
//! GitHub App JWT signing, config parsing, and the credentials file's parse and
//! write-back. Run with `cargo bench -p evertoken --bench micro`; the end-to-end
//! numbers live in BENCHMARKS.md (scripts/bench).

use std::hint::black_box;
use std::path::Path;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use evertoken::github::app::Issuer;
use evertoken::github::jwt;
use evertoken::secret::Secret;
use evertoken::store::Entry;
use evertoken::store::credentials_file::{self, CredentialsFile};

fn jwt_signing(c: &mut Criterion) {
    let (pem, _) = evertoken_sim::test_rsa_keypair();
    let path = Path::new("bench-app.pem");
    c.bench_function("jwt/parse_key", |b| {
        b.iter(|| jwt::parse_key(black_box(pem.as_bytes()), path).unwrap())
    });
    let key = jwt::parse_key(pem.as_bytes(), path).unwrap();
    let issuer = Issuer::AppId(4242);
    c.bench_function("jwt/sign_rs256", |b| {
        b.iter(|| jwt::sign(&key, &issuer, black_box(1_795_000_000)).unwrap())
    });
}

fn accounts(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("acct-{i:05}")).collect()
}

fn config_parsing(c: &mut Criterion) {
    let small = "platforms:\n  tiktok:\n    client_key: bench-client\n    concurrency: 8\n\
                 auth:\n  writeback:\n    backend: local\n    local: { keychain: off }\n";
    let big = format!(
        "platforms:\n  tiktok:\n    client_key: bench-client\n    accounts: [{}]\n",
        accounts(1000).join(", ")
    );
    let path = Path::new("evertoken.yaml");
    c.bench_function("config/parse_one_platform", |b| {
        b.iter(|| evertoken::config::parse(black_box(small), path).unwrap())
    });
    c.bench_function("config/parse_1000_accounts", |b| {
        b.iter(|| evertoken::config::parse(black_box(&big), path).unwrap())
    });
}

fn credentials_text(n: usize) -> String {
    let mut s = String::from("TIKTOK_CLIENT_SECRET: test-bench-client-secret-not-a-real-secret\n");
    for a in accounts(n) {
        let v = a.to_uppercase().replace('-', "_");
        s.push_str(&format!(
            "TIKTOK_REFRESH_TOKEN_{v}:\n  value: test-rt-{a}-not-a-real-secret\n  expires_at: 2027-11-20T09:00:00Z\n  updated_at: 2026-11-23T09:00:00Z\n"
        ));
    }
    s
}

fn credentials_file(c: &mut Criterion) {
    let text = credentials_text(1000);
    let path = Path::new("credentials.yaml");
    c.bench_function("credentials/parse_1000_entries", |b| {
        b.iter(|| credentials_file::parse(black_box(&text), path).unwrap())
    });
    // One write-back into a 1,000-entry file: lock, apply, render, atomic replace
    // with fsync. Disk-bound: compare runs on the same machine only.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("credentials.yaml");
    std::fs::write(&file, &text).unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let creds = CredentialsFile::open(file).unwrap();
    let now: jiff::Timestamp = "2026-11-23T09:00:00Z".parse().unwrap();
    let mut i = 0u64;
    c.bench_function("credentials/write_one_into_1000", |b| {
        b.iter_batched(
            || {
                i += 1;
                vec![Entry {
                    var: "TIKTOK_REFRESH_TOKEN_ACCT_00042".into(),
                    value: Secret::new(format!("test-rt-rotated-{i}-not-a-real-secret")),
                    expires_at: Some(now),
                    updated_at: now,
                    durable: true,
                }]
            },
            |entries| creds.write(&entries, true).unwrap(),
            BatchSize::SmallInput,
        )
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = jwt_signing, config_parsing, credentials_file
}
criterion_main!(benches);
