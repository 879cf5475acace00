//! tollgate: an edge proxy and API gateway on Cloudflare's Pingora.
//!
//! The binary (`main.rs`) only parses the command line; everything else lives here:
//! `config` reads the TOML file, `state` compiles it into the immutable `Snapshot`
//! that requests read, `proxy` plugs the request phases into Pingora: it runs the
//! request through `edge` (hygiene, normalization), `routing`, the listener's and the
//! route's `stage`s (built by `policy`, over `auth`, `ratelimit`, `jail`, `waf`, ...) and an
//! `upstream` attempt, and `bootstrap` assembles the server.

pub mod acme;
pub mod admin;
pub mod anomaly;
pub mod auth;
pub mod base;
pub mod bootstrap;
pub mod cli;
pub mod config;
pub mod connection;
pub mod edge;
pub mod fleet;
pub mod jail;
pub mod observability;
pub mod policy;
pub mod proxy;
pub mod ratelimit;
pub mod routing;
pub mod stage;
pub mod state;
pub mod stats;
pub mod tls;
pub mod tracing;
pub mod upgrade;
pub mod upstream;
pub mod waf;
