//! Platforms, accounts and the variable names a publisher reads.

use std::fmt;

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Instagram,
    Youtube,
    Tiktok,
    Linkedin,
}

impl Platform {
    pub const ALL: [Platform; 4] = [
        Platform::Instagram,
        Platform::Youtube,
        Platform::Tiktok,
        Platform::Linkedin,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Platform::Instagram => "instagram",
            Platform::Youtube => "youtube",
            Platform::Tiktok => "tiktok",
            Platform::Linkedin => "linkedin",
        }
    }

    pub fn display_name(self) -> &'static str {
        match self {
            Platform::Instagram => "Instagram",
            Platform::Youtube => "YouTube",
            Platform::Tiktok => "TikTok",
            Platform::Linkedin => "LinkedIn",
        }
    }

    pub fn parse(s: &str) -> Option<Platform> {
        Platform::ALL.into_iter().find(|p| p.name() == s)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One account of one platform. `name` is `None` when the platform lists no
/// `accounts:` (the single, unnamed account, shown as `default`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Account {
    pub platform: Platform,
    pub name: Option<String>,
}

impl Account {
    pub fn new(platform: Platform, name: Option<String>) -> Self {
        Self { platform, name }
    }

    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or("default")
    }

    /// The variable a publisher reads for this account: `TIKTOK_REFRESH_TOKEN`, or
    /// `TIKTOK_REFRESH_TOKEN_BRAND_A` for account `brand-a`.
    pub fn var(&self, base: &str) -> String {
        match &self.name {
            None => base.to_owned(),
            Some(name) => format!("{base}_{}", upper_snake(name)),
        }
    }

    /// A file-name-safe key, for locks and journal entries.
    pub fn key(&self) -> String {
        match &self.name {
            None => self.platform.name().to_owned(),
            Some(name) => format!(
                "{}-{}",
                self.platform.name(),
                upper_snake(name).to_lowercase()
            ),
        }
    }
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            None => write!(f, "{}", self.platform),
            Some(n) => write!(f, "{}:{n}", self.platform),
        }
    }
}

/// `brand-a` → `BRAND_A`; every character outside `[A-Za-z0-9]` becomes `_`.
pub fn upper_snake(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// What `auth refresh|status` was asked to look at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    All,
    Platform(Platform),
    Account(Platform, String),
}

impl Target {
    pub fn parse(s: &str) -> Result<Target, String> {
        if s == "all" {
            return Ok(Target::All);
        }
        let (p, account) = match s.split_once(':') {
            Some((p, a)) => (p, Some(a)),
            None => (s, None),
        };
        let platform = Platform::parse(p).ok_or_else(|| {
            let names: Vec<_> = Platform::ALL.iter().map(|p| p.name()).collect();
            format!(
                "unknown target `{s}`: expected `all`, a platform ({}) or `platform:account`",
                names.join(", ")
            )
        })?;
        match account {
            None => Ok(Target::Platform(platform)),
            Some("") => Err(format!("target `{s}` names no account after `:`")),
            Some(a) => Ok(Target::Account(platform, a.to_owned())),
        }
    }

    pub fn includes(&self, account: &Account) -> bool {
        match self {
            Target::All => true,
            Target::Platform(p) => *p == account.platform,
            Target::Account(p, a) => *p == account.platform && account.label() == a,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_names_follow_the_spec() {
        let a = Account::new(Platform::Tiktok, Some("brand-a".into()));
        assert_eq!(
            a.var("TIKTOK_REFRESH_TOKEN"),
            "TIKTOK_REFRESH_TOKEN_BRAND_A"
        );
        let d = Account::new(Platform::Tiktok, None);
        assert_eq!(d.var("TIKTOK_REFRESH_TOKEN"), "TIKTOK_REFRESH_TOKEN");
        assert_eq!(a.to_string(), "tiktok:brand-a");
        assert_eq!(d.label(), "default");
    }

    #[test]
    fn targets_parse() {
        assert_eq!(Target::parse("all").unwrap(), Target::All);
        assert_eq!(
            Target::parse("tiktok").unwrap(),
            Target::Platform(Platform::Tiktok)
        );
        assert_eq!(
            Target::parse("tiktok:brand-a").unwrap(),
            Target::Account(Platform::Tiktok, "brand-a".into())
        );
        assert!(
            Target::parse("myspace")
                .unwrap_err()
                .contains("unknown target")
        );
        assert!(Target::parse("tiktok:").is_err());
    }
}
