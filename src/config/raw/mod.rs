//! The config file as serde sees it: one struct per table, `deny_unknown_fields`
//! everywhere, enums for every choice, defaults spelled out in one place
//! (`defaults`). One file per kind of section.
//!
//! These types are plain data. They are never used on the request path: `state::compile`
//! turns a validated [`RawConfig`] into the runtime `Snapshot`.
//!
//! A new section of one table (`[admin]`, `[redis]`) is a field of [`RawConfig`] and a
//! line of [`single_section`]: `config::load` reads such sections through it.

mod acme;
mod anomaly;
mod auth;
mod defaults;
mod fleet;
mod jails;
mod limits;
mod listener;
mod paths;
mod route;
mod server;
mod syslog;
mod tracing;
mod upstream;
mod waf;

pub use acme::*;
pub use anomaly::*;
pub use auth::*;
pub use fleet::*;
pub use jails::*;
pub use limits::*;
pub use listener::*;
pub use route::*;
pub use server::*;
pub use syslog::*;
pub use tracing::*;
pub use upstream::*;
pub use waf::*;

use serde::Deserialize;
use std::collections::BTreeMap;
use toml::de::{Error, ValueDeserializer};

/// The whole file. Sections are deserialized one by one (see `config::load`) so that an
/// error in one listener does not hide an error in a route.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawConfig {
    pub server: ServerSection,
    pub admin: Option<AdminSection>,
    pub listeners: BTreeMap<String, ListenerSection>,
    pub upstreams: BTreeMap<String, UpstreamSection>,
    pub auth: BTreeMap<String, AuthSection>,
    pub limits: BTreeMap<String, LimitSection>,
    pub redis: Option<RedisSection>,
    pub ip_lists: BTreeMap<String, IpListSection>,
    pub jails: BTreeMap<String, JailSection>,
    pub waf: BTreeMap<String, WafSection>,
    pub routes: Vec<RouteSection>,
    pub tracing: Option<TracingSection>,
    pub fleet: Option<FleetSection>,
    pub acme: Option<AcmeSection>,
    pub anomaly: Option<AnomalySection>,
}

/// Reads one section of a single table into its field of a [`RawConfig`].
pub type ReadSection = fn(&mut RawConfig, ValueDeserializer<'_>) -> Result<(), Error>;

/// The sections of one table each, by name, and how each is read.
pub const SINGLE_SECTIONS: &[(&str, ReadSection)] = &[
    ("admin", |raw, de| {
        raw.admin = Some(Deserialize::deserialize(de)?);
        Ok(())
    }),
    ("redis", |raw, de| {
        raw.redis = Some(Deserialize::deserialize(de)?);
        Ok(())
    }),
    ("tracing", |raw, de| {
        raw.tracing = Some(Deserialize::deserialize(de)?);
        Ok(())
    }),
    ("fleet", |raw, de| {
        raw.fleet = Some(Deserialize::deserialize(de)?);
        Ok(())
    }),
    ("acme", |raw, de| {
        raw.acme = Some(Deserialize::deserialize(de)?);
        Ok(())
    }),
    ("anomaly", |raw, de| {
        raw.anomaly = Some(Deserialize::deserialize(de)?);
        Ok(())
    }),
];

/// How the single-table section `name` is read; `None` when it is none.
pub fn single_section(name: &str) -> Option<ReadSection> {
    SINGLE_SECTIONS
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, read)| *read)
}
