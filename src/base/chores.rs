//! [`Chores`]: the process's background services (signal watchers, health checks,
//! DNS and key refreshes, sweeps, log writers) run together on one thread. Pingora
//! gives every background service a runtime and a thread of its own: ten threads
//! for what is mostly waiting. A chore must not block its thread; blocking work (a
//! reload's compile, an upgrade) goes to `spawn_blocking`.

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

#[derive(Default)]
pub struct Chores(Vec<Box<dyn BackgroundService + Send + Sync>>);

impl Chores {
    pub fn add(&mut self, chore: impl BackgroundService + Send + Sync + 'static) {
        self.0.push(Box::new(chore));
    }
}

#[async_trait]
impl BackgroundService for Chores {
    /// Runs every chore until each has returned (they return on shutdown).
    async fn start(&self, shutdown: ShutdownWatch) {
        let all = self.0.iter().map(|chore| chore.start(shutdown.clone()));
        futures::future::join_all(all).await;
    }
}
