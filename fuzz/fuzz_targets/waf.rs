//! Fuzzes the WAF (`tollgate::waf`) with arbitrary bytes: its decoders, its field
//! parsers (JSON, form, multipart, query, cookies), its rules and libinjection's SQL
//! and XSS tokenizers (the `libinjectionrs` port), at the highest paranoia. Nothing
//! may panic, and decoding never makes a value longer. `tollgate::waf::exercise`
//! states it; the unit tests replay this target's corpus (fuzz/corpus/waf) through the
//! same function.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tollgate::waf::exercise(data);
});
