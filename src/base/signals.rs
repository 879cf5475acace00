//! Signals a background service acts on: [`each_signal`] runs an action for each one
//! that arrives, until shutdown. A signal that cannot be listened for is logged as an
//! error saying what is lost, and the service ends.

use pingora::server::ShutdownWatch;
use std::future::Future;
use tokio::signal::unix::{signal, SignalKind};

/// Runs `action` for each `kind` signal (called `name`) until `shutdown`; an action
/// that has begun finishes first.
pub async fn each_signal<F, Fut>(
    kind: SignalKind,
    name: &str,
    lost: &str,
    mut shutdown: ShutdownWatch,
    mut action: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut signals = match signal(kind) {
        Ok(s) => s,
        Err(e) => {
            log::error!("cannot listen for {name}, {lost}: {e}");
            return;
        }
    };
    loop {
        tokio::select! {
            Some(()) = signals.recv() => action().await,
            _ = shutdown.changed() => return,
        }
    }
}
