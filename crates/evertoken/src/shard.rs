//! Sharding one fleet of accounts over several CI jobs (`auth refresh --shard K/N`):
//! shard K of N (1-based) holds the accounts whose stable hash of
//! `platform:account` falls in it. Shards are disjoint and together cover every
//! account, and an account stays in its shard whatever else is configured, on any
//! machine and any build (SHA-256, not the standard library's per-process hasher).
//!
//! `--shard ci` takes K and N from `CI_NODE_INDEX` / `CI_NODE_TOTAL` (GitLab's
//! `parallel: N`), only when asked: GitLab's `parallel: matrix:` sets them too, for
//! jobs that must not be sharded. This module is pure: it never reads the
//! environment itself (the caller passes a lookup) and never touches an account.

use sha2::{Digest, Sha256};

use crate::env_vars;

/// The most shards accepted (GitLab allows `parallel:` up to 200).
pub const MAX_SHARDS: u32 = 10_000;

/// Shard `index` (1-based) of `total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub total: u32,
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.total)
    }
}

/// The 1-based shard of `platform:account` among `total`.
pub fn shard_of(platform: &str, account: &str, total: u32) -> u32 {
    let digest = Sha256::new()
        .chain_update(platform.as_bytes())
        .chain_update(b":")
        .chain_update(account.as_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % u64::from(total.max(1))) as u32 + 1
}

impl Shard {
    pub fn new(index: u32, total: u32) -> Result<Shard, String> {
        if total == 0 || total > MAX_SHARDS {
            return Err(format!(
                "the shard count must be between 1 and {MAX_SHARDS}, not {total}"
            ));
        }
        if index == 0 || index > total {
            return Err(format!(
                "shard {index} of {total} does not exist: shards are numbered 1 to {total}"
            ));
        }
        Ok(Shard { index, total })
    }

    /// `K/N`, or `ci` for `CI_NODE_INDEX`/`CI_NODE_TOTAL` looked up with `env`.
    pub fn parse(arg: &str, env: impl Fn(&str) -> Option<String>) -> Result<Shard, String> {
        let arg = arg.trim();
        if arg.eq_ignore_ascii_case("ci") {
            let get = |var: &str| {
                let v = env(var).filter(|v| !v.trim().is_empty()).ok_or_else(|| {
                    format!(
                        "`--shard ci` needs {} and {}, and {var} is not set (GitLab sets both for a job with `parallel: N`)",
                        env_vars::CI_NODE_INDEX,
                        env_vars::CI_NODE_TOTAL
                    )
                })?;
                v.trim()
                    .parse::<u32>()
                    .map_err(|_| format!("{var}={v:?} is not a whole number"))
            };
            return Shard::new(get(env_vars::CI_NODE_INDEX)?, get(env_vars::CI_NODE_TOTAL)?);
        }
        let (k, n) = arg
            .split_once('/')
            .ok_or_else(|| format!("`{arg}` is not K/N (for example 2/4) or `ci`"))?;
        let num = |s: &str| {
            s.trim()
                .parse::<u32>()
                .map_err(|_| format!("`{arg}` is not K/N (for example 2/4) or `ci`"))
        };
        Shard::new(num(k)?, num(n)?)
    }

    /// Whether `platform:account` belongs to this shard.
    pub fn contains(&self, platform: &str, account: &str) -> bool {
        shard_of(platform, account, self.total) == self.index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts(n: usize) -> Vec<(String, String)> {
        let platforms = ["tiktok", "instagram", "youtube", "linkedin"];
        (0..n)
            .map(|i| (platforms[i % 4].to_owned(), format!("acct-{i}")))
            .collect()
    }

    #[test]
    fn shards_are_disjoint_and_cover_every_account() {
        let all = accounts(2_000);
        for total in [1, 2, 3, 4, 7, 16] {
            let mut seen = vec![0u32; all.len()];
            for index in 1..=total {
                let s = Shard::new(index, total).unwrap();
                for (i, (p, a)) in all.iter().enumerate() {
                    if s.contains(p, a) {
                        seen[i] += 1;
                    }
                }
            }
            assert!(
                seen.iter().all(|&n| n == 1),
                "with {total} shards every account is in exactly one"
            );
        }
    }

    #[test]
    fn shards_are_balanced_enough() {
        let all = accounts(10_000);
        for index in 1..=4 {
            let s = Shard::new(index, 4).unwrap();
            let n = all.iter().filter(|(p, a)| s.contains(p, a)).count();
            assert!((2_200..=2_800).contains(&n), "shard {index}/4 holds {n}");
        }
    }

    #[test]
    fn the_partition_is_stable() {
        // Fixed values: a change here moves accounts between CI jobs, so it must be
        // deliberate (and then two runs may briefly disagree, which the stores'
        // locks make safe).
        let got: Vec<u32> = ["tiktok:default", "tiktok:brand-a", "instagram:shop"]
            .iter()
            .map(|k| {
                let (p, a) = k.split_once(':').unwrap();
                shard_of(p, a, 4)
            })
            .collect();
        // SHA-256 of the key, first 8 bytes big-endian, mod 4, plus 1 (checked
        // independently with Python's hashlib).
        assert_eq!(got, [3, 4, 2]);
        // The platform is part of the key.
        let same_name: Vec<u32> = (0..64)
            .map(|i| shard_of("tiktok", &format!("a{i}"), 8))
            .collect();
        let other_platform: Vec<u32> = (0..64)
            .map(|i| shard_of("youtube", &format!("a{i}"), 8))
            .collect();
        assert_ne!(same_name, other_platform);
    }

    #[test]
    fn parsing_k_of_n_and_ci() {
        let none = |_: &str| None;
        assert_eq!(Shard::parse("2/4", none), Ok(Shard { index: 2, total: 4 }));
        assert_eq!(
            Shard::parse(" 1/1 ", none),
            Ok(Shard { index: 1, total: 1 })
        );
        for bad in ["0/4", "5/4", "1/0", "x/4", "2", "2/4/6", "-1/4", ""] {
            assert!(Shard::parse(bad, none).is_err(), "{bad}");
        }
        let ci = |v: &str| match v {
            "CI_NODE_INDEX" => Some("3".to_owned()),
            "CI_NODE_TOTAL" => Some("5".to_owned()),
            _ => None,
        };
        assert_eq!(Shard::parse("ci", ci), Ok(Shard { index: 3, total: 5 }));
        let e = Shard::parse("ci", none).unwrap_err();
        assert!(e.contains("CI_NODE_INDEX") && e.contains("parallel"), "{e}");
        let zero = |v: &str| {
            (v == "CI_NODE_INDEX")
                .then(|| "0".to_owned())
                .or(Some("2".into()))
        };
        assert!(Shard::parse("ci", zero).is_err());
    }
}
