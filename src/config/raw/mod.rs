//! The config file as serde sees it: one struct per table, `deny_unknown_fields`
//! everywhere, enums for every choice, defaults spelled out in one place
//! (`defaults`). One file per kind of section.
//!
//! These types are plain data. They are never used on the request path: `state::compile`
//! turns a validated [`RawConfig`] into the runtime `Snapshot`.

mod auth;
mod defaults;
mod jails;
mod limits;
mod listener;
mod route;
mod server;
mod upstream;

pub use auth::*;
pub use jails::*;
pub use limits::*;
pub use listener::*;
pub use route::*;
pub use server::*;
pub use upstream::*;

use std::collections::BTreeMap;

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
    pub routes: Vec<RouteSection>,
}
