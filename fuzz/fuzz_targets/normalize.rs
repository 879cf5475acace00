//! Fuzzes the path normalizer (`tollgate::edge::path`) with arbitrary bytes under every
//! combination of settings. It must never panic, and what it accepts must hold the
//! properties the rest of tollgate relies on: normalizing again changes nothing, and
//! with the default settings no `//`, dot segment, `%2F`, `%5C` or `\` is left.
//! `tollgate::edge::path::check_properties` states them; the unit tests replay this
//! target's corpus (fuzz/corpus/normalize) through the same function.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tollgate::edge::path::check_properties(data);
});
