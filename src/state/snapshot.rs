//! The compiled config. Immutable once built; a request loads it once (into its ctx)
//! and keeps that `Arc` to the end, so a reload never changes a request mid-way.

use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::sync::Arc;

use crate::acme::Managed;
use crate::auth::compile::CompiledAuth;
use crate::base::background::Background;
use crate::config::source::ConfigSource;
use crate::connection::ClientLimits;
use crate::edge::forwarded::TrustedProxies;
use crate::edge::hygiene::RequestLimits;
use crate::edge::path::PathRules;
use crate::jail::Jails;
use crate::ratelimit::{Policy, RedisStore};
use crate::routing::Router;
use crate::stage::Stages;
use crate::tls::ListenerTls;
use crate::upstream::Pool;

pub struct Snapshot {
    pub router: Router,
    pub request_limits: RequestLimits,
    pub path_rules: PathRules,
    pub trusted_proxies: TrustedProxies,
    /// The stages of each listener, by name.
    pub listener_stages: HashMap<String, Arc<Stages>>,
    /// The server-wide stages, for a listener the config no longer names.
    pub server_stages: Arc<Stages>,
    /// The file this snapshot was compiled from, as `GET /config` shows it.
    pub source: Arc<ConfigSource>,
    /// Seconds an idle client connection waits for its next request.
    pub keepalive_timeout_secs: u64,
    /// The slow-client and per-IP limits of client connections.
    pub client_limits: Arc<ClientLimits>,
    /// Bytes of request bodies held before proxying, all requests together, at most.
    pub request_buffer_memory: u64,
    /// Automatic bans, by name.
    pub jails: Jails,
    /// Response stages of replies to requests no route took.
    pub unrouted_stages: Stages,
    /// Every pool of the config, by upstream name (routes hold their own `Arc`).
    pub pools: HashMap<String, Arc<Pool>>,
    /// Authenticators, their remote key sets and the identity headers they set.
    pub auth: CompiledAuth,
    /// Rate-limit policies with their buckets, by name.
    pub rate_limits: HashMap<String, Arc<Policy>>,
    /// The `[redis]` store, if any (one entry).
    pub redis: HashMap<String, Arc<RedisStore>>,
    /// The background chores its stages asked for, by name.
    pub background: HashMap<String, Arc<Background>>,
    /// Certificates and client-certificate settings of TLS listeners, by name.
    pub tls: HashMap<String, Arc<ListenerTls>>,
    /// The sets of domains certified by ACME, each kept by its chore.
    pub acme: Vec<Arc<Managed>>,
    /// Whether `[anomaly]` detection runs (`GET /anomalies`).
    pub anomaly: bool,
    /// Problems worth an operator's attention that do not refuse the config
    /// (certificates close to expiry), as `place: message`.
    pub warnings: Vec<String>,
}

/// The one swap point between reloads and requests.
pub type SharedSnapshot = Arc<ArcSwap<Snapshot>>;
