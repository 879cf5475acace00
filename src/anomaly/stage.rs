//! The anomaly stage: once a request is done, it is observed by the engine (its
//! route, consumer as `authenticator:id`, client, path and status, and when
//! authentication refused it a fingerprint of the credential it presented, never
//! the credential); the anomalies a bucket's end found are logged, counted, and fed
//! to the jails their detectors name. It never refuses; it waits only on a shared
//! jail's Redis, after the response.

use futures::future::BoxFuture;
use prometheus::IntCounterVec;
use std::sync::Arc;

use super::{Anomaly, Detection, Detector, Observation, Subject};
use crate::auth::credential::{self, Source};
use crate::auth::Principal;
use crate::base::clock::Clock;
use crate::config::raw::AnomalySection;
use crate::edge::forwarded::TrustedProxies;
use crate::jail::{client_of, ip_key, Jail, KeyKind};
use crate::observability::{Metrics, SecurityLog};
use crate::stage::{Cx, Declared, Hooks, Outcome, Stage, StagesBuilder};

/// What the stage is built from.
pub struct Parts<'a> {
    pub detection: &'a Arc<Detection>,
    /// Where the config's authenticators read credentials.
    pub sources: Vec<Source>,
    /// The jail each detector that names one feeds.
    pub jails: Vec<(Detector, Arc<Jail>)>,
    pub security_log: &'a SecurityLog,
    pub metrics: &'a Arc<Metrics>,
    pub clock: &'a Clock,
    /// Their addresses are not clients (everyone behind them would be one).
    pub trusted_proxies: &'a TrustedProxies,
}

struct Watching {
    detection: Arc<Detection>,
    settings: Arc<AnomalySection>,
    sources: Vec<Source>,
    jails: Vec<(Detector, Arc<Jail>)>,
    security_log: SecurityLog,
    metrics: Arc<Metrics>,
    found: Option<IntCounterVec>,
    clock: Clock,
    trusted_proxies: TrustedProxies,
}

/// Installs the anomaly stage for `settings`.
pub fn install(settings: &AnomalySection, parts: Parts<'_>, stages: &mut StagesBuilder) {
    let found = parts.metrics.counter_vec(
        "anomalies_total",
        "Anomalies found, by detector",
        &["detector"],
    );
    stages.add(Watching {
        detection: parts.detection.clone(),
        settings: Arc::new(settings.clone()),
        sources: parts.sources,
        jails: parts.jails,
        security_log: parts.security_log.clone(),
        metrics: parts.metrics.clone(),
        found: found.ok(),
        clock: parts.clock.clone(),
        trusted_proxies: parts.trusted_proxies.clone(),
    });
}

impl Watching {
    /// The jail `anomaly`'s detector feeds, and its key there, when the subject is of
    /// the jail's kind.
    fn jail_for(&self, anomaly: &Anomaly) -> Option<(Arc<Jail>, String)> {
        let (_, jail) = self.jails.iter().find(|(d, _)| *d == anomaly.detector)?;
        let key = match (&anomaly.subject, jail.key()) {
            (Subject::Client(ip), KeyKind::ClientIp) => ip_key(*ip),
            (Subject::Consumer(key), KeyKind::Consumer) => key.to_string(),
            _ => return None,
        };
        Some((jail.clone(), key))
    }

    async fn report(&self, found: Vec<Anomaly>) {
        for anomaly in found {
            if let Some(counter) = &self.found {
                counter.with_label_values(&[anomaly.detector.name()]).inc();
            }
            self.security_log.notice(
                "anomaly",
                &[
                    ("detector", anomaly.detector.name().to_owned()),
                    ("subject", anomaly.subject.to_string()),
                    ("observed", anomaly.observed.to_string()),
                    ("baseline", format!("{:.2}", anomaly.baseline)),
                    ("window_seconds", anomaly.window_seconds.to_string()),
                ],
            );
            let Some((jail, key)) = self.jail_for(&anomaly) else {
                continue;
            };
            let now = self.clock.unix_millis();
            if let Some(ban_ms) = jail.sentence(&key, now, &self.metrics).await {
                self.metrics.jail_ban(jail.name());
                self.security_log.notice(
                    "jail_ban",
                    &[
                        ("jail", jail.name().to_owned()),
                        ("key", key),
                        ("ban_seconds", ban_ms.div_ceil(1000).to_string()),
                        ("reason", format!("anomaly:{}", anomaly.detector.name())),
                    ],
                );
            }
        }
    }
}

impl Stage for Watching {
    fn name(&self) -> &'static str {
        "anomaly"
    }

    fn declares(&self) -> Declared {
        Declared::hooks(Hooks::DONE)
    }

    fn on_done<'a>(
        &'a self,
        cx: &'a mut Cx<'_>,
        outcome: &'a Outcome<'_>,
    ) -> Option<BoxFuture<'a, ()>> {
        let view = cx.view();
        let facts = cx.facts();
        let refused_credential = outcome.refusal.is_some_and(|r| r.stage == "auth");
        let failed_credential = refused_credential
            .then(|| {
                let presented = (self.sources.iter())
                    .filter_map(|s| credential::extract(s, view.req).ok().flatten())
                    .collect::<Vec<_>>();
                (!presented.is_empty()).then(|| self.detection.fingerprint(&presented))
            })
            .flatten();
        let observation = Observation {
            route: facts.route.as_deref().map_or("", |r| &*r.name),
            consumer: facts.principal.as_deref().map(Principal::key),
            client: client_of(facts.client_ip, &self.trusted_proxies),
            path: self.detection.fingerprint(view.path),
            status: outcome.status.unwrap_or(0),
            failed_credential,
        };
        let now = self.clock.unix_millis();
        let found = (self.detection.engine()).observe(now, &self.settings, &observation);
        (!found.is_empty()).then(|| Box::pin(self.report(found)) as BoxFuture<'a, ()>)
    }
}
