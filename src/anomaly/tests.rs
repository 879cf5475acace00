//! The engine over simulated time: a day of steady traffic raises nothing; a spike, a
//! credential-stuffing run, an enumeration run and a consumer's volume jump each
//! raise their anomaly at the end of the minute they happened in; a flood of
//! distinct clients stays within the bound.

use std::net::IpAddr;
use std::time::Duration;

use super::{Anomaly, Engine, Observation};
use crate::config::raw::{AnomalySection, CredentialStuffing, Enumeration, VolumeJump};

const MINUTE_MS: u64 = 60_000;
/// The simulation starts here (a whole minute).
const START: u64 = 1_800_000_000_000;

fn settings() -> AnomalySection {
    AnomalySection {
        threshold: 4.0,
        min_requests: 30,
        interval: Duration::from_secs(60),
        half_life: 60,
        warmup: 30,
        max_clients: 1_000,
        credential_stuffing: CredentialStuffing::default(),
        enumeration: Enumeration::default(),
        volume_jump: VolumeJump::default(),
    }
}

fn client(n: u32) -> IpAddr {
    IpAddr::from((0x0a00_0000 + n).to_be_bytes())
}

/// A request at `at_ms`.
struct Request<'a> {
    at_ms: u64,
    route: &'a str,
    consumer: Option<&'a str>,
    client: IpAddr,
    path: u64,
    status: u16,
    failed_credential: Option<u64>,
}

/// A request to `app` at `at_ms` from `client`: no consumer, path 0, 200.
fn plain(at_ms: u64, client: IpAddr) -> Request<'static> {
    Request {
        at_ms,
        route: "app",
        consumer: None,
        client,
        path: 0,
        status: 200,
        failed_credential: None,
    }
}

fn observe(engine: &mut Engine, s: &AnomalySection, r: &Request<'_>) -> Vec<Anomaly> {
    let o = Observation {
        route: r.route,
        consumer: r.consumer,
        client: Some(r.client),
        path: r.path,
        status: r.status,
        failed_credential: r.failed_credential,
    };
    engine.observe(r.at_ms, s, &o)
}

/// One minute of steady traffic (`minute` from the start): 100 ± 10 requests to
/// `app` from 20 clients over 10 paths, half by consumer `keys:acme`, about one 404
/// and one 500 each minute.
fn steady_minute(engine: &mut Engine, s: &AnomalySection, minute: u64) -> Vec<Anomaly> {
    let n = if minute.is_multiple_of(2) { 90 } else { 110 };
    let mut found = Vec::new();
    for i in 0..n {
        let status = match i {
            0 => 404,
            1 if minute.is_multiple_of(3) => 500,
            _ => 200,
        };
        found.extend(observe(
            engine,
            s,
            &Request {
                consumer: (i % 2 == 0).then_some("keys:acme"),
                path: i % 10,
                status,
                ..plain(
                    START + minute * MINUTE_MS + i * 500,
                    client((i % 20) as u32),
                )
            },
        ));
    }
    found
}

/// A day of steady minutes; what they raised.
fn steady_day(engine: &mut Engine, s: &AnomalySection) -> Vec<Anomaly> {
    (0..1440)
        .flat_map(|m| steady_minute(engine, s, m))
        .collect()
}

#[test]
fn a_day_of_steady_traffic_raises_nothing() {
    let (mut engine, s) = (Engine::default(), settings());
    let found = steady_day(&mut engine, &s);
    assert_eq!(found, [], "a steady day");
}

/// The anomalies the minute after the day (`minute` 1440) raised, found at its end.
fn after_a_day(extra: impl Fn(&mut Engine, &AnomalySection, u64)) -> Vec<Anomaly> {
    let (mut engine, s) = (Engine::default(), settings());
    assert_eq!(steady_day(&mut engine, &s), []);
    extra(&mut engine, &s, START + 1440 * MINUTE_MS);
    let mut found = steady_minute(&mut engine, &s, 1440);
    found.extend(steady_minute(&mut engine, &s, 1441));
    found
}

fn raised<'a>(found: &'a [Anomaly], detector: &str, subject: &str) -> &'a Anomaly {
    (found
        .iter()
        .find(|a| a.detector.name() == detector && a.subject.to_string() == subject))
    .unwrap_or_else(|| panic!("no {detector} for {subject}: {found:?}"))
}

#[test]
fn a_consumer_back_after_a_night_off_is_no_anomaly() {
    let (mut engine, s) = (Engine::default(), settings());
    let batch = |engine: &mut Engine, minute: u64| -> Vec<Anomaly> {
        let at = START + minute * MINUTE_MS;
        (0..100)
            .flat_map(|i| {
                let r = Request {
                    consumer: Some("keys:batch"),
                    ..plain(at + 30_000 + i * 100, client(900))
                };
                observe(engine, &s, &r)
            })
            .collect()
    };
    let mut found = Vec::new();
    // Busy for two hours, off for twelve, busy again.
    for minute in 0..(60 * 16) {
        found.extend(steady_minute(&mut engine, &s, minute));
        if !(120..840).contains(&minute) {
            found.extend(batch(&mut engine, minute));
        }
    }
    // (The route's traffic doubling again may be news; the consumer's is not.)
    let theirs: Vec<&Anomaly> = (found.iter())
        .filter(|a| {
            let subject = a.subject.to_string();
            subject == "consumer keys:batch" || subject == "client 10.0.3.132"
        })
        .collect();
    assert_eq!(
        theirs,
        Vec::<&Anomaly>::new(),
        "the batch consumer's return"
    );
}

#[test]
fn a_spike_on_a_route_is_raised_at_the_end_of_its_minute() {
    let found = after_a_day(|engine, s, at| {
        for i in 0..900 {
            let r = plain(at + i * 50, client(100 + (i % 50) as u32));
            assert_eq!(observe(engine, s, &r), []);
        }
    });
    let spike = raised(&found, "rate", "route app");
    assert!(
        spike.observed >= 990.0 && (spike.baseline - 100.0).abs() < 5.0,
        "{spike:?}"
    );
    assert_eq!(spike.at, (START + 1441 * MINUTE_MS) / 1000);
    assert_eq!(spike.window_seconds, 60);
}

#[test]
fn credential_stuffing_is_many_failing_credentials_from_one_client() {
    let found = after_a_day(|engine, s, at| {
        for i in 0..12 {
            let r = Request {
                status: 401,
                failed_credential: Some(i),
                ..plain(at + i * 1000, client(666))
            };
            observe(engine, s, &r);
        }
    });
    let stuffing = raised(&found, "credential_stuffing", "client 10.0.2.154");
    assert_eq!(stuffing.observed, 12.0);
}

#[test]
fn enumeration_is_one_consumer_asking_for_many_missing_paths() {
    let found = after_a_day(|engine, s, at| {
        for i in 0..40 {
            let r = Request {
                consumer: Some("keys:scanner"),
                path: 1_000 + i,
                status: 404,
                ..plain(at + i * 1000, client(7))
            };
            observe(engine, s, &r);
        }
    });
    assert_eq!(
        raised(&found, "enumeration", "consumer keys:scanner").observed,
        40.0
    );
}

#[test]
fn a_consumers_volume_jump_stands_out_from_its_baseline() {
    let found = after_a_day(|engine, s, at| {
        for i in 0..600 {
            let r = Request {
                consumer: Some("keys:acme"),
                ..plain(at + i * 90, client(1))
            };
            observe(engine, s, &r);
        }
    });
    let jump = raised(&found, "volume_jump", "consumer keys:acme");
    assert!(jump.observed > 5.0 * jump.baseline, "{jump:?}");
}

#[test]
fn a_flood_of_distinct_clients_stays_within_the_bound() {
    let (mut engine, s) = (Engine::default(), settings());
    for i in 0..1_000_000u64 {
        // 5,000 a minute (max_clients is 1,000), for 200 minutes.
        let r = Request {
            path: i,
            ..plain(START + i * 12, client(i as u32))
        };
        observe(&mut engine, &s, &r);
        assert!(engine.clients_counted() <= s.max_clients);
    }
    // The route and at most max_clients addresses keep baselines.
    assert!(
        engine.subjects() <= 1 + s.max_clients,
        "{}",
        engine.subjects()
    );
}
