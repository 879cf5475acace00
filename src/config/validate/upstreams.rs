//! Upstreams: targets, weights, balancing and its hash key, timeouts, health checks,
//! TLS to the targets.

use std::collections::BTreeSet;

use super::{header_name, host_pattern, Problems, TomlPath};
use crate::config::raw::{
    Balance, HashKey, HealthKind, UpstreamProtocol, UpstreamSection, UpstreamTlsSection,
};

pub(super) fn upstream(up: &UpstreamSection, path: &TomlPath, out: &mut Problems) {
    if up.targets.is_empty() {
        out.push((path.key("targets"), "needs at least one target".into()));
    }
    if up.resolve_every < std::time::Duration::from_secs(1) {
        out.push((path.key("resolve_every"), "must be at least 1s".into()));
    }
    if up.protocol == UpstreamProtocol::H2c && up.tls.is_some() {
        out.push((
            path.key("protocol"),
            "h2c is HTTP/2 without TLS; with tls, set tls.http2 = true".into(),
        ));
    }
    if let Some(passive) = &up.passive {
        let at = path.key("passive");
        if passive.consecutive_failures == 0 {
            out.push((at.key("consecutive_failures"), "must be at least 1".into()));
        }
        if passive.eject_for < std::time::Duration::from_secs(1) {
            out.push((at.key("eject_for"), "must be at least 1s".into()));
        }
        if passive.max_eject_for < passive.eject_for {
            out.push((at.key("max_eject_for"), "must be at least eject_for".into()));
        }
        if let Some(bad) = passive.statuses.iter().find(|s| !(100..600).contains(*s)) {
            out.push((at.key("statuses"), format!("{bad} is not an HTTP status")));
        }
    }
    if !(0.0..=1.0).contains(&up.retry_budget) {
        out.push((path.key("retry_budget"), "must be between 0 and 1".into()));
    }
    if up.max_in_flight == Some(0) {
        out.push((path.key("max_in_flight"), "must be at least 1".into()));
    }
    let mut seen = BTreeSet::new();
    for (i, t) in up.targets.iter().enumerate() {
        let at = path.key("targets").index(i);
        if !seen.insert(t.addr()) {
            out.push((at.clone(), format!("target {} is listed twice", t.addr())));
        }
        if t.weight() == 0 {
            out.push((at.key("weight"), "must be at least 1".into()));
        } else if t.weight() != 1 && up.balance != Balance::Weighted {
            out.push((
                at.key("weight"),
                "weights only apply with balance = \"weighted\"".into(),
            ));
        }
    }
    match (&up.balance, &up.hash_key) {
        (Balance::ConsistentHash, None) => out.push((
            path.key("hash_key"),
            "balance = \"consistent_hash\" needs hash_key = \"client_ip\", \"path\" or { header = \"NAME\" }".into(),
        )),
        (Balance::ConsistentHash, Some(HashKey::Header(h))) => {
            header_name(h, &path.key("hash_key").key("header"), out)
        }
        (Balance::ConsistentHash, Some(_)) | (_, None) => {}
        (_, Some(_)) => out.push((
            path.key("hash_key"),
            "hash_key only applies with balance = \"consistent_hash\"".into(),
        )),
    }
    for (key, d) in [
        ("connect_timeout", up.connect_timeout),
        ("read_timeout", up.read_timeout),
        ("write_timeout", up.write_timeout),
    ] {
        if d.is_zero() {
            out.push((path.key(key), "must be greater than 0".into()));
        }
    }
    if let Some(tls) = &up.tls {
        upstream_tls(tls, &path.key("tls"), out);
    }
    if let Some(h) = &up.health {
        let hp = path.key("health");
        match (h.kind, &h.path) {
            (HealthKind::Tcp, Some(_)) => {
                out.push((hp.key("path"), "only applies to kind = \"http\"".into()))
            }
            (HealthKind::Http, Some(p)) if !p.starts_with('/') => {
                out.push((hp.key("path"), "must start with '/'".into()))
            }
            _ => {}
        }
        if !(100..=599).contains(&h.expect_status) {
            out.push((
                hp.key("expect_status"),
                "must be an HTTP status (100-599)".into(),
            ));
        }
        if h.interval.is_zero() || h.timeout.is_zero() {
            out.push((
                hp.clone(),
                "interval and timeout must be greater than 0".into(),
            ));
        }
        if h.healthy_threshold == 0 || h.unhealthy_threshold == 0 {
            out.push((hp, "thresholds must be at least 1".into()));
        }
    }
}

fn upstream_tls(tls: &UpstreamTlsSection, path: &TomlPath, out: &mut Problems) {
    match &tls.sni {
        Some(sni) if host_pattern(sni).is_err() || sni.starts_with("*.") => {
            out.push((path.key("sni"), format!("not a server name: {sni:?}")))
        }
        None if tls.verify => out.push((
            path.key("sni"),
            "verify = true checks the target's certificate against this name: set sni (or verify = false, which trusts any certificate)".into(),
        )),
        _ => {}
    }
    if tls.client_cert.is_some() != tls.client_key.is_some() {
        out.push((
            path.clone(),
            "client_cert and client_key go together".into(),
        ));
    }
    if !tls.verify && tls.ca.is_some() {
        out.push((path.key("ca"), "has no effect with verify = false".into()));
    }
}
