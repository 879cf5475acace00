//! Integration tests: the real `tollgate` binary on free loopback ports against real
//! origin servers (see `support/`). One file per capability.

mod support;

mod acme;
mod admin;
mod auth;
mod balancing;
mod body_limits;
mod check;
mod connections;
mod console;
mod cors;
mod deprecation;
mod dns;
mod drain;
mod failures;
mod first_run;
mod fleet;
mod grpc;
mod headers;
mod health;
mod http2;
mod hygiene;
mod ip_lists;
mod jails;
mod logs;
mod memory;
mod normalization;
mod passive_health;
mod proxy_protocol;
mod ratelimit;
mod ratelimit_redis;
mod reload;
mod request_buffering;
mod retries;
mod routing;
mod spellings;
mod stats;
mod syslog;
mod tls;
mod tracing;
mod upgrade;
mod validation;
mod waf;
mod websocket;
