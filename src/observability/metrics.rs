//! Prometheus metrics, in a registry owned by the process (no global statics) and
//! served on the admin listener's `/metrics`. Counters survive reloads: they live
//! beside the snapshot, not in it.

use prometheus::{Encoder, IntCounterVec, Opts, Registry, TextEncoder};

pub struct Metrics {
    registry: Registry,
    auth_decisions: IntCounterVec,
    jwks_fetches: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("tollgate".into()), None)?;
        let auth_decisions = IntCounterVec::new(
            Opts::new(
                "auth_decisions_total",
                "Authentication and authorization decisions",
            ),
            &["authenticator", "outcome", "reason"],
        )?;
        let jwks_fetches = IntCounterVec::new(
            Opts::new("jwks_fetches_total", "JWKS fetches by URL and outcome"),
            &["url", "outcome"],
        )?;
        registry.register(Box::new(auth_decisions.clone()))?;
        registry.register(Box::new(jwks_fetches.clone()))?;
        Ok(Self {
            registry,
            auth_decisions,
            jwks_fetches,
        })
    }

    pub fn auth_decision(&self, authenticator: &str, outcome: &str, reason: &str) {
        self.auth_decisions
            .with_label_values(&[authenticator, outcome, reason])
            .inc();
    }

    pub fn jwks_fetch(&self, url: &str, outcome: &str) {
        self.jwks_fetches.with_label_values(&[url, outcome]).inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            log::warn!("cannot encode metrics: {e}");
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}
