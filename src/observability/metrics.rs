//! Prometheus metrics, in a registry owned by the process (no global statics) and
//! served on the admin listener's `/metrics`. Counters survive reloads: they live
//! beside the snapshot, not in it. A capability with counters of its own registers
//! them through [`Metrics::counter_vec`], without a field here.

use prometheus::{Encoder, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};
use std::collections::HashMap;
use std::sync::Mutex;

pub struct Metrics {
    registry: Registry,
    /// Counter families registered by name through `counter_vec`.
    registered: Mutex<HashMap<String, IntCounterVec>>,
    auth_decisions: IntCounterVec,
    jwks_fetches: IntCounterVec,
    rate_limits: IntCounterVec,
    rate_limit_store_errors: IntCounterVec,
    rate_limit_keys: IntGaugeVec,
    rate_limit_untracked: IntGaugeVec,
    tls_handshakes: IntCounterVec,
    tls_handshake_failures: IntCounterVec,
    certificate_expiry: IntGaugeVec,
    /// The label sets of file certificates in `certificate_expiry`, replaced on reload.
    file_certificates: Mutex<Vec<(String, String)>>,
    ip_denied: IntCounterVec,
    body_too_large: IntCounterVec,
    deprecated_requests: IntCounterVec,
    jail_bans: IntCounterVec,
    jail_active_bans: IntGaugeVec,
    jail_store_errors: IntCounterVec,
    config_reloads: IntCounterVec,
    config_last_reload_success: prometheus::IntGauge,
    client_timeouts: IntCounterVec,
    connections_refused: IntCounterVec,
    dns_resolutions: IntCounterVec,
    upstream_ejections: IntCounterVec,
    upstream_retries: IntCounterVec,
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
        let rate_limits = IntCounterVec::new(
            Opts::new(
                "ratelimit_decisions_total",
                "Rate-limit decisions by policy and outcome",
            ),
            &["policy", "outcome"],
        )?;
        let rate_limit_store_errors = IntCounterVec::new(
            Opts::new(
                "ratelimit_store_errors_total",
                "Calls to a shared (Redis) store that failed or timed out",
            ),
            &["policy"],
        )?;
        let rate_limit_keys = IntGaugeVec::new(
            Opts::new(
                "ratelimit_keys",
                "Buckets tracked per policy, after the last sweep",
            ),
            &["policy"],
        )?;
        let rate_limit_untracked = IntGaugeVec::new(
            Opts::new("ratelimit_untracked_keys", "New keys admitted without a bucket because the policy's store was full, since start"),
            &["policy"],
        )?;
        let tls_handshakes = IntCounterVec::new(
            Opts::new(
                "tls_handshakes_total",
                "Completed TLS handshakes by listener and protocol version",
            ),
            &["listener", "version"],
        )?;
        let tls_handshake_failures = IntCounterVec::new(
            Opts::new(
                "tls_handshake_failures_total",
                "Failed downstream TLS handshakes by cause",
            ),
            &["cause"],
        )?;
        let certificate_expiry = IntGaugeVec::new(
            Opts::new(
                "certificate_expiry_seconds",
                "Expiry (Unix time) of every listener certificate in use: from a file \
                 (certificate: its path) or ordered by ACME (certificate: its first domain)",
            ),
            &["listener", "certificate", "source"],
        )?;
        let ip_denied = IntCounterVec::new(
            Opts::new(
                "ip_denied_total",
                "Requests refused by an IP list, by route (empty: server-wide) and list",
            ),
            &["route", "list"],
        )?;
        let body_too_large = IntCounterVec::new(
            Opts::new(
                "body_too_large_total",
                "Requests refused (413) because their body was over max_body",
            ),
            &["route"],
        )?;
        let deprecated_requests = IntCounterVec::new(
            Opts::new(
                "deprecated_requests_total",
                "Requests to deprecated routes, by consumer (empty: unauthenticated)",
            ),
            &["route", "consumer"],
        )?;
        let jail_bans = IntCounterVec::new(
            Opts::new("jail_bans_total", "Keys banned by a jail"),
            &["jail"],
        )?;
        let jail_active_bans = IntGaugeVec::new(
            Opts::new("jail_active_bans", "Bans in force per jail"),
            &["jail"],
        )?;
        let jail_store_errors = IntCounterVec::new(
            Opts::new(
                "jail_store_errors_total",
                "Calls to a jail's shared (Redis) store that failed or timed out",
            ),
            &["jail"],
        )?;
        let config_reloads = IntCounterVec::new(
            Opts::new("config_reloads_total", "Config reloads by result"),
            &["result"],
        )?;
        let config_last_reload_success = prometheus::IntGauge::with_opts(Opts::new(
            "config_last_reload_success_timestamp_seconds",
            "When the config was last loaded successfully (Unix time; the start counts)",
        ))?;
        let client_timeouts = IntCounterVec::new(
            Opts::new(
                "client_timeouts_total",
                "Client connections cut off (408) because the request head (header_timeout) or body (body_min_rate) came too slowly",
            ),
            &["phase"],
        )?;
        let connections_refused = IntCounterVec::new(
            Opts::new(
                "connections_refused_total",
                "Client connections closed at accept, by reason",
            ),
            &["reason"],
        )?;
        let dns_resolutions = IntCounterVec::new(
            Opts::new(
                "dns_resolutions_total",
                "Background resolutions of upstream target names, by outcome (ok, error)",
            ),
            &["upstream", "outcome"],
        )?;
        registry.register(Box::new(dns_resolutions.clone()))?;
        let upstream_ejections = IntCounterVec::new(
            Opts::new(
                "upstream_ejections_total",
                "Targets taken out by passive health (consecutive failed requests)",
            ),
            &["upstream"],
        )?;
        registry.register(Box::new(upstream_ejections.clone()))?;
        let upstream_retries = IntCounterVec::new(
            Opts::new(
                "upstream_retries_total",
                "Retries after a request reached a target (retry_on), by outcome (retried, over_budget)",
            ),
            &["upstream", "outcome"],
        )?;
        registry.register(Box::new(upstream_retries.clone()))?;
        registry.register(Box::new(client_timeouts.clone()))?;
        registry.register(Box::new(connections_refused.clone()))?;
        registry.register(Box::new(config_reloads.clone()))?;
        registry.register(Box::new(config_last_reload_success.clone()))?;
        registry.register(Box::new(jail_bans.clone()))?;
        registry.register(Box::new(jail_active_bans.clone()))?;
        registry.register(Box::new(jail_store_errors.clone()))?;
        registry.register(Box::new(body_too_large.clone()))?;
        registry.register(Box::new(deprecated_requests.clone()))?;
        registry.register(Box::new(ip_denied.clone()))?;
        registry.register(Box::new(certificate_expiry.clone()))?;
        registry.register(Box::new(tls_handshakes.clone()))?;
        registry.register(Box::new(tls_handshake_failures.clone()))?;
        registry.register(Box::new(auth_decisions.clone()))?;
        registry.register(Box::new(jwks_fetches.clone()))?;
        registry.register(Box::new(rate_limits.clone()))?;
        registry.register(Box::new(rate_limit_store_errors.clone()))?;
        registry.register(Box::new(rate_limit_keys.clone()))?;
        registry.register(Box::new(rate_limit_untracked.clone()))?;
        Ok(Self {
            registry,
            registered: Mutex::default(),
            auth_decisions,
            jwks_fetches,
            rate_limits,
            rate_limit_store_errors,
            rate_limit_keys,
            rate_limit_untracked,
            tls_handshakes,
            tls_handshake_failures,
            certificate_expiry,
            file_certificates: Mutex::default(),
            ip_denied,
            body_too_large,
            deprecated_requests,
            jail_bans,
            jail_active_bans,
            jail_store_errors,
            config_reloads,
            config_last_reload_success,
            client_timeouts,
            connections_refused,
            dns_resolutions,
            upstream_ejections,
            upstream_retries,
        })
    }

    pub fn upstream_retry(&self, upstream: &str, outcome: &str) {
        self.upstream_retries
            .with_label_values(&[upstream, outcome])
            .inc();
    }

    pub fn upstream_ejection(&self, upstream: &str) {
        self.upstream_ejections.with_label_values(&[upstream]).inc();
    }

    pub fn dns_resolution(&self, upstream: &str, outcome: &str) {
        self.dns_resolutions
            .with_label_values(&[upstream, outcome])
            .inc();
    }

    /// The counter of client connections cut off in `phase` ("header" or "body").
    pub fn client_timeouts(&self, phase: &str) -> prometheus::IntCounter {
        self.client_timeouts.with_label_values(&[phase])
    }

    /// The counter of connections refused at accept for `reason`.
    pub fn connections_refused(&self, reason: &str) -> prometheus::IntCounter {
        self.connections_refused.with_label_values(&[reason])
    }

    /// Replaces the file certificates' expiry gauges with `certs` (listener, file,
    /// expiry); ACME's stay.
    pub fn tls_certificates<'a>(&self, certs: impl Iterator<Item = (&'a str, &'a str, i64)>) {
        let mut files = self
            .file_certificates
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for (listener, file) in files.drain(..) {
            let _ = self
                .certificate_expiry
                .remove_label_values(&[&listener, &file, "file"]);
        }
        for (listener, file, not_after) in certs {
            self.certificate_expiry(listener, file, "file", not_after);
            files.push((listener.to_owned(), file.to_owned()));
        }
    }

    pub fn certificate_expiry(
        &self,
        listener: &str,
        certificate: &str,
        source: &str,
        not_after: i64,
    ) {
        self.certificate_expiry
            .with_label_values(&[listener, certificate, source])
            .set(not_after);
    }

    /// An ACME order's end: `issued`, `renewed` or `failed`.
    pub fn acme_order(&self, result: &str) {
        match self.counter_vec(
            "acme_orders_total",
            "ACME orders by result (issued, renewed, failed)",
            &["result"],
        ) {
            Ok(family) => family.with_label_values(&[result]).inc(),
            Err(e) => log::warn!("metric acme_orders_total: {e}"),
        }
    }

    pub fn tls_handshake(&self, listener: &str, version: &str) {
        self.tls_handshakes
            .with_label_values(&[listener, version])
            .inc();
    }

    pub fn tls_handshake_failure(&self, cause: &str) {
        self.tls_handshake_failures
            .with_label_values(&[cause])
            .inc();
    }

    pub fn ip_denied(&self, route: &str, list: &str) {
        self.ip_denied.with_label_values(&[route, list]).inc();
    }

    pub fn body_too_large(&self, route: &str) {
        self.body_too_large.with_label_values(&[route]).inc();
    }

    pub fn deprecated_request(&self, route: &str, consumer: &str) {
        self.deprecated_requests
            .with_label_values(&[route, consumer])
            .inc();
    }

    /// The counter of a deprecated route's requests without a consumer, for the
    /// route's policy to keep (no label lookup per request).
    pub fn deprecated_anonymous(&self, route: &str) -> prometheus::IntCounter {
        self.deprecated_requests.with_label_values(&[route, ""])
    }

    /// A reload's outcome.
    pub fn config_reload(&self, success: bool) {
        let result = if success { "success" } else { "failure" };
        self.config_reloads.with_label_values(&[result]).inc();
        if success {
            self.config_loaded();
        }
    }

    /// The config in use was loaded now (at start, or by a reload).
    pub fn config_loaded(&self) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.config_last_reload_success
            .set(i64::try_from(now).unwrap_or(i64::MAX));
    }

    pub fn jail_ban(&self, jail: &str) {
        self.jail_bans.with_label_values(&[jail]).inc();
    }

    pub fn jail_active_bans(&self, jail: &str, bans: usize) {
        self.jail_active_bans
            .with_label_values(&[jail])
            .set(i64::try_from(bans).unwrap_or(i64::MAX));
    }

    pub fn jail_store_error(&self, jail: &str) {
        self.jail_store_errors.with_label_values(&[jail]).inc();
    }

    pub fn auth_decision(&self, authenticator: &str, outcome: &str, reason: &str) {
        self.auth_decisions
            .with_label_values(&[authenticator, outcome, reason])
            .inc();
    }

    pub fn jwks_fetch(&self, url: &str, outcome: &str) {
        self.jwks_fetches.with_label_values(&[url, outcome]).inc();
    }

    pub fn rate_limit(&self, policy: &str, outcome: &str) {
        self.rate_limits.with_label_values(&[policy, outcome]).inc();
    }

    pub fn rate_limit_store_error(&self, policy: &str) {
        self.rate_limit_store_errors
            .with_label_values(&[policy])
            .inc();
    }

    pub fn rate_limit_keys(&self, policy: &str, keys: usize, untracked: u64) {
        let gauge = |n| i64::try_from(n).unwrap_or(i64::MAX);
        self.rate_limit_keys
            .with_label_values(&[policy])
            .set(gauge(keys as u64));
        self.rate_limit_untracked
            .with_label_values(&[policy])
            .set(gauge(untracked));
    }

    /// The counter family `tollgate_NAME` with `labels`, registered on first use; the
    /// same family every time after (a capability rebuilt by a reload keeps counting).
    pub fn counter_vec(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> Result<IntCounterVec, prometheus::Error> {
        let mut registered = self.registered.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(family) = registered.get(name) {
            return Ok(family.clone());
        }
        let family = IntCounterVec::new(Opts::new(name, help), labels)?;
        self.registry.register(Box::new(family.clone()))?;
        registered.insert(name.to_owned(), family.clone());
        Ok(family)
    }

    /// The gauge `tollgate_NAME`, registered now: for a capability that exists once a
    /// process, not rebuilt by reloads.
    pub fn gauge(&self, name: &str, help: &str) -> Result<prometheus::IntGauge, prometheus::Error> {
        let gauge = prometheus::IntGauge::new(name, help)?;
        self.registry.register(Box::new(gauge.clone()))?;
        Ok(gauge)
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

/// A label value as Prometheus's text format writes it (backslash, double quote and
/// newline escaped), for metrics rendered as text at scrape time.
pub fn label_value(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_family_registered_twice_is_one_family() {
        let metrics = Metrics::new().expect("metrics");
        let first = metrics
            .counter_vec("things_total", "Things", &["kind"])
            .expect("registered");
        first.with_label_values(&["a"]).inc();
        let again = metrics
            .counter_vec("things_total", "Things", &["kind"])
            .expect("the same family");
        again.with_label_values(&["a"]).inc();
        assert!(metrics
            .render()
            .contains("tollgate_things_total{kind=\"a\"} 2"));
    }
}
