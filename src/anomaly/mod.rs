//! Anomaly detection (`[anomaly]`): the anomaly stage, first of every listener's
//! stages with the stats one, hands each finished request to the [`Engine`]
//! (`engine`: counts per route, consumer and client address, baselines, detectors),
//! and each anomaly found at a bucket's end becomes an `anomaly` security event
//! (detector, subject, observed, baseline, window), a count in
//! `tollgate_anomalies_total{detector}`, an entry of `GET /anomalies` (the console's
//! list), and, where its detector names a jail, a ban there (a `jail_ban` event with
//! the detector as its reason). Detect-only unless a detector names a jail. The
//! engine's state lives as long as the process (reloads keep the baselines); time
//! comes from the injectable clock. Nothing here fails a request.

mod baseline;
mod engine;
mod stage;
#[cfg(test)]
mod tests;

pub use engine::{Anomaly, Detector, Engine, Observation, Subject};
pub use stage::{install, Parts};

use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::{Mutex, MutexGuard};

/// The engine, shared by every snapshot's anomaly stage, and the process's key for
/// fingerprints (random: a fingerprint means nothing outside this process).
#[derive(Default)]
pub struct Detection {
    engine: Mutex<Engine>,
    key: RandomState,
}

impl Detection {
    /// A fingerprint of `value` (a path, a credential).
    pub fn fingerprint(&self, value: impl Hash) -> u64 {
        self.key.hash_one(value)
    }

    pub fn engine(&self) -> MutexGuard<'_, Engine> {
        self.engine.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The last anomalies, newest first, as JSON.
    pub fn recent_json(&self) -> serde_json::Value {
        let engine = self.engine();
        let mut recent: Vec<serde_json::Value> = (engine.recent())
            .map(|a| {
                let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(a.at);
                let mut v = serde_json::to_value(a).unwrap_or_default();
                v["at"] = humantime::format_rfc3339_seconds(at).to_string().into();
                v
            })
            .collect();
        recent.reverse();
        recent.into()
    }
}
