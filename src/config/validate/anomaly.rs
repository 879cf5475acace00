//! `[anomaly]`: numbers in range, and jails that exist and ban what their detector
//! finds (a client for credential stuffing, a consumer for volume jumps).

use super::limits::jail_names;
use super::{Problems, TomlPath, Unparsed};
use crate::config::raw::{AnomalySection, JailKey, RawConfig, MAX_DISTINCT};

pub(super) fn anomaly(raw: &RawConfig, unparsed: &Unparsed, out: &mut Problems) {
    let Some(a) = &raw.anomaly else {
        return;
    };
    let at = TomlPath::root().key("anomaly");
    let mut check = |key: &[&str], ok: bool, what: &str| {
        if !ok {
            let path = key.iter().fold(at.clone(), |path, k| path.key(*k));
            out.push((path, what.to_owned()));
        }
    };
    check(&["threshold"], a.threshold > 0.0, "must be greater than 0");
    check(
        &["interval"],
        a.interval.as_secs() >= 1,
        "must be at least 1s",
    );
    check(
        &["half_life"],
        a.half_life >= 1,
        "must be at least 1 (buckets)",
    );
    check(&["max_clients"], a.max_clients >= 1, "must be at least 1");
    let distinct =
        format!("must be from 1 to {MAX_DISTINCT} (the most distinct ones counted in a bucket)");
    let minimums = [
        (
            "credential_stuffing",
            "min_credentials",
            a.credential_stuffing.min_credentials,
        ),
        ("enumeration", "min_paths", a.enumeration.min_paths),
    ];
    for (detector, key, minimum) in minimums {
        check(
            &[detector, key],
            (1..=MAX_DISTINCT).contains(&minimum),
            &distinct,
        );
    }
    check(
        &["volume_jump", "factor"],
        a.volume_jump.factor >= 1.0,
        "must be at least 1",
    );
    detector_jail(raw, unparsed, a, &at, out);
}

fn detector_jail(
    raw: &RawConfig,
    unparsed: &Unparsed,
    a: &AnomalySection,
    at: &TomlPath,
    out: &mut Problems,
) {
    let detectors = [
        (
            "credential_stuffing",
            &a.credential_stuffing.jail,
            Some(JailKey::ClientIp),
        ),
        ("enumeration", &a.enumeration.jail, None),
        ("volume_jump", &a.volume_jump.jail, Some(JailKey::Consumer)),
    ];
    for (detector, jail, kind) in detectors {
        let Some(name) = jail else {
            continue;
        };
        let path = at.key(detector).key("jail");
        let before = out.len();
        jail_names(raw, unparsed, std::slice::from_ref(name), &path, out);
        // A reference to a missing jail is reported at `…jail[0]`: at `…jail`.
        for problem in &mut out[before..] {
            problem.0 = path.clone();
        }
        let found = raw.jails.get(name).map(|j| j.key);
        if let (Some(found), Some(kind)) = (found, kind) {
            if found != kind {
                let want = match kind {
                    JailKey::ClientIp => "client_ip",
                    JailKey::Consumer => "consumer",
                };
                out.push((path, format!("jail {name:?} must have key = \"{want}\"")));
            }
        }
    }
}
