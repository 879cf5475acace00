//! The stats stage, first of every listener's stages: once a request is done, it
//! counts it in [`Stats`] (its route, status, duration, the stage that refused it,
//! its client and consumer, whether its route is deprecated). It never refuses and
//! never waits.

use std::collections::HashSet;
use std::sync::Arc;

use super::{Sample, Stats};
use crate::auth::Principal;
use crate::base::clock::Clock;
use crate::stage::{Cx, Declared, Hooks, Outcome, Stage, StagesBuilder};

struct Counting {
    stats: Arc<Stats>,
    /// The routes with a `deprecation` section.
    deprecated: HashSet<Arc<str>, foldhash::fast::RandomState>,
    clock: Clock,
}

/// Installs the stats stage: `deprecated` names the deprecated routes.
pub fn install(
    stats: &Arc<Stats>,
    deprecated: HashSet<Arc<str>>,
    clock: &Clock,
    stages: &mut StagesBuilder,
) {
    stages.add(Counting {
        stats: stats.clone(),
        deprecated: deprecated.into_iter().collect(),
        clock: clock.clone(),
    });
}

impl Stage for Counting {
    fn name(&self) -> &'static str {
        "stats"
    }

    fn declares(&self) -> Declared {
        Declared::hooks(Hooks::DONE)
    }

    fn on_done<'a>(
        &'a self,
        cx: &'a mut Cx<'_>,
        outcome: &'a Outcome<'_>,
    ) -> Option<futures::future::BoxFuture<'a, ()>> {
        let facts = cx.facts();
        let route = facts.route.as_deref().map_or("", |r| &*r.name);
        let micros = outcome.ended.saturating_duration_since(facts.started);
        let sample = Sample {
            now_secs: self.clock.unix_millis() / 1000,
            route,
            status: outcome.status.unwrap_or(0),
            micros: u64::try_from(micros.as_micros()).unwrap_or(u64::MAX),
            refused_by: outcome.refusal.map(|r| r.stage),
            client_ip: facts.client_ip,
            consumer: facts.principal.as_deref().map(Principal::key),
            deprecated: !route.is_empty() && self.deprecated.contains(route),
        };
        self.stats.record(&sample);
        None
    }
}
