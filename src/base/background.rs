//! Background work a stage needs (a tracing exporter sending its batches): built when
//! a config is compiled, kept across reloads while its definition is unchanged (like
//! pools and buckets), and run by one chore for as long as the running config has it.
//! A stage that needs such work asks [`Making::get_or_build`] from its install
//! function; nothing outside its module changes.
//!
//! The work is a [`Chore`]: rounds, each saying when the next is due, run by
//! [`registry::every`] until the chore is no longer current.

use futures::future::BoxFuture;
use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::registry::{every, PerItemTasks, Registry, Reusable};

/// Work done in rounds in the background.
pub trait Chore: Any + Send + Sync {
    /// How long after it starts the first round is due.
    fn first_round(&self) -> Duration;

    /// One round; when the next is due (`None`: no more).
    fn round(self: Arc<Self>) -> BoxFuture<'static, Option<Duration>>;
}

/// A chore and what it was built from.
pub struct Background {
    /// Its definition, as compared across reloads (e.g. its config section, debug-printed).
    definition: String,
    chore: Arc<dyn Chore>,
}

impl Reusable for Background {
    type Definition = String;

    fn definition(&self) -> &String {
        &self.definition
    }
}

impl Background {
    /// The chore, as the type it was built as.
    pub fn chore<T: Chore>(&self) -> Option<Arc<T>> {
        let any: Arc<dyn Any + Send + Sync> = self.chore.clone();
        any.downcast().ok()
    }
}

/// The chores of the running config, by name.
pub type BackgroundRegistry = Registry<Background>;

/// The background service running every current chore's rounds.
pub fn chores(registry: Arc<BackgroundRegistry>) -> PerItemTasks<Background> {
    PerItemTasks::new(
        registry,
        |_| true,
        |item, registry| {
            Box::pin(async move {
                let Some(first) = item.upgrade().map(|b| b.chore.first_round()) else {
                    return;
                };
                let round = |background: Arc<Background>| background.chore.clone().round();
                every(item, &registry, first, round).await;
            })
        },
    )
}

/// The chores a config being compiled asks for: from the registry while unchanged,
/// built anew otherwise, and collected for the snapshot (current once it is swapped in).
pub struct Making<'a> {
    registry: &'a BackgroundRegistry,
    made: Mutex<HashMap<String, Arc<Background>>>,
}

impl<'a> Making<'a> {
    pub fn new(registry: &'a BackgroundRegistry) -> Self {
        Self {
            registry,
            made: Mutex::default(),
        }
    }

    /// The chore `name` of `definition`: the current one when its definition is the
    /// same, else the one `build` makes.
    pub fn get_or_build<T: Chore>(
        &self,
        name: &str,
        definition: String,
        build: impl FnOnce() -> Result<T, String>,
    ) -> Result<Arc<T>, String> {
        let background = self.registry.get_or_build(name, &definition, || {
            let chore: Arc<dyn Chore> = Arc::new(build()?);
            Ok(Background {
                definition: definition.clone(),
                chore,
            })
        })?;
        let chore = background
            .chore::<T>()
            .ok_or_else(|| format!("{name}: a chore of another kind has this name"))?;
        let mut made = self.made.lock().unwrap_or_else(|p| p.into_inner());
        made.insert(name.to_owned(), background);
        Ok(chore)
    }

    /// Every chore asked for, by name.
    pub fn finish(self) -> HashMap<String, Arc<Background>> {
        self.made.into_inner().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counter(u32);

    impl Chore for Counter {
        fn first_round(&self) -> Duration {
            Duration::ZERO
        }

        fn round(self: Arc<Self>) -> BoxFuture<'static, Option<Duration>> {
            Box::pin(async { None })
        }
    }

    #[test]
    fn a_chore_is_kept_while_its_definition_is_unchanged() {
        let registry = BackgroundRegistry::default();
        let making = Making::new(&registry);
        let first = making
            .get_or_build("c", "v1".into(), || Ok(Counter(1)))
            .expect("built");
        registry.commit(making.finish());
        let again = Making::new(&registry);
        let same = again
            .get_or_build("c", "v1".into(), || Ok(Counter(2)))
            .expect("kept");
        assert!(Arc::ptr_eq(&first, &same));
        let changed = again
            .get_or_build("c", "v2".into(), || Ok(Counter(3)))
            .expect("rebuilt");
        assert_eq!(changed.0, 3);
        assert_eq!(again.finish().len(), 1);
    }
}
