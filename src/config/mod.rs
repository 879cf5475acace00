//! Configuration: the TOML file as typed data, checked as a whole.
//!
//! `raw` mirrors the file with serde, `load` reads and parses it (the only file I/O),
//! `validate` checks what serde cannot (references, duplicates, value ranges) and
//! `location` turns byte spans and TOML paths into `line:column`, `source` keeps the
//! running file as the admin listener shows it (secrets redacted). Nothing here knows
//! about Pingora or the running process: a loaded [`raw::RawConfig`] is plain data.

pub mod limit_key;
pub mod load;
pub mod location;
pub mod raw;
pub mod source;
pub mod units;
pub mod validate;

pub use load::{load_file, load_str, read_file, read_str, ConfigError, ConfigErrors, LoadedConfig};
