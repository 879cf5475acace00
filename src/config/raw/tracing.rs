//! `[tracing]`: OpenTelemetry traces, exported over OTLP/HTTP (protobuf).

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TracingSection {
    /// The collector's OTLP/HTTP traces URL, e.g. `http://127.0.0.1:4318/v1/traces`.
    pub endpoint: String,
    /// The `service.name` of the spans.
    #[serde(default = "service_name")]
    pub service_name: String,
    /// The share of requests without a parent that are sampled (0 to 1); a parent's
    /// decision is always honoured.
    #[serde(default = "sample_ratio")]
    pub sample_ratio: f64,
    /// Headers sent with every export, their values taken from the environment (so
    /// no secret is in the file): `{ "x-api-key" = { env = "OTLP_KEY" } }`.
    #[serde(default)]
    pub headers: BTreeMap<String, FromEnv>,
}

/// A value read from the environment variable `env` when the config is loaded.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FromEnv {
    pub env: String,
}

fn service_name() -> String {
    "tollgate".to_owned()
}

fn sample_ratio() -> f64 {
    1.0
}
