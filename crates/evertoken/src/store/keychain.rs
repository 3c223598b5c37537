//! The OS keychain (service `evertoken`, account = variable name), through the
//! `keyring` crate: Keychain Services on macOS, Credential Manager on Windows, the
//! Secret Service on Linux. On a headless Linux host there is no Secret Service;
//! [`probe`] finds that out once so the local store can fall back to the file.

use crate::secret::Secret;

pub const SERVICE: &str = "evertoken";
const PROBE_ACCOUNT: &str = "__evertoken_probe__";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Use the keychain when one works, else the credentials file (and say so).
    #[default]
    Auto,
    /// Never use the keychain.
    Off,
    /// Use the keychain; fail if there is none.
    Required,
}

/// A keychain that answered the probe.
#[derive(Debug)]
pub struct Keychain;

/// Checks whether a keychain is usable here: the store initialises and a read of
/// a probe entry answers "no entry" rather than failing.
pub fn probe() -> Result<Keychain, String> {
    if let Err(e) = keyring::Entry::store_status() {
        return Err(format!("no OS keychain is available ({e})"));
    }
    let entry = keyring::Entry::new(SERVICE, PROBE_ACCOUNT)
        .map_err(|e| format!("the OS keychain cannot be used ({e})"))?;
    match entry.get_password() {
        Ok(_) | Err(keyring::Error::NoEntry) => Ok(Keychain),
        Err(e) => Err(format!("the OS keychain cannot be used ({e})")),
    }
}

impl Keychain {
    pub fn get(&self, var: &str) -> Result<Option<Secret>, String> {
        let entry =
            keyring::Entry::new(SERVICE, var).map_err(|e| format!("keychain entry {var}: {e}"))?;
        match entry.get_password() {
            Ok(v) => Ok(Some(Secret::from_outside(
                v,
                &format!("{var} in the keychain"),
            ))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(format!("keychain read of {var} failed: {e}")),
        }
    }

    pub fn set(&self, var: &str, value: &Secret) -> Result<(), String> {
        let entry =
            keyring::Entry::new(SERVICE, var).map_err(|e| format!("keychain entry {var}: {e}"))?;
        entry
            .set_password(value.expose())
            .map_err(|e| format!("keychain write of {var} failed: {e}"))
    }
}
