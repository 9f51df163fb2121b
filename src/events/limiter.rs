//! The door's invalid-scan limiter: counts invalid scans per staff key and per address
//! (both as digests) in one-minute windows, and salts the address digests stored with
//! scans. In memory, per process: a burst is refused before it reaches the database.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Invalid scans one staff key or one address may make per minute before it is
/// refused for the rest of that minute: guessing tokens is hopeless at 256 bits, but
/// a burst is a broken or hostile scanner and should not fill the scan log.
pub const INVALID_PER_MINUTE: u32 = 20;

const WINDOW: Duration = Duration::from_secs(60);

/// The salt is drawn when the daemon starts, so a stored digest cannot be reversed by
/// hashing every IPv4 address.
pub struct Limiter {
    salt: [u8; 32],
    windows: Mutex<HashMap<Vec<u8>, (Instant, u32)>>,
}

impl Limiter {
    pub fn new() -> Self {
        let mut salt = [0u8; 32];
        if getrandom::fill(&mut salt).is_err() {
            // No OS randomness: a v4 UUID (itself random) still makes digests unlinkable.
            salt[..16].copy_from_slice(Uuid::new_v4().as_bytes());
        }
        Self {
            salt,
            windows: Mutex::new(HashMap::new()),
        }
    }

    pub fn ip_hash(&self, ip: IpAddr) -> Vec<u8> {
        let mut h = Sha256::new();
        h.update(self.salt);
        h.update(ip.to_string().as_bytes());
        h.finalize().to_vec()
    }

    /// Whether any of `keys` used up its invalid scans this minute.
    pub fn blocked(&self, keys: &[&[u8]]) -> bool {
        let windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        keys.iter().any(|k| {
            windows
                .get(*k)
                .is_some_and(|(start, n)| start.elapsed() < WINDOW && *n >= INVALID_PER_MINUTE)
        })
    }

    pub fn note_invalid(&self, keys: &[&[u8]]) {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() > 10_000 {
            windows.retain(|_, (start, _)| start.elapsed() < WINDOW);
        }
        for k in keys {
            let entry = windows.entry(k.to_vec()).or_insert((Instant::now(), 0));
            if entry.0.elapsed() >= WINDOW {
                *entry = (Instant::now(), 0);
            }
            entry.1 += 1;
        }
    }
}

impl Default for Limiter {
    fn default() -> Self {
        Self::new()
    }
}
