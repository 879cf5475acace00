//! Maps keyed by shared names (`Arc<str>`), looked up by `&str`: the name is copied
//! only when it is new.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;

/// The value of `name` in `map`, made by `Default` the first time.
pub fn entry<'m, V: Default, S: BuildHasher>(
    map: &'m mut HashMap<Arc<str>, V, S>,
    name: &str,
) -> &'m mut V {
    if !map.contains_key(name) {
        map.insert(name.into(), V::default());
    }
    map.get_mut(name).expect("inserted above")
}
