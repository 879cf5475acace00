//! Human units in the config file: durations ("30s", "250ms"), byte sizes ("8KiB")
//! and certificate fingerprints.
//!
//! Mostly `#[serde(with = ...)]` helpers so the raw config holds `Duration` and `u64`
//! directly and a bad value is a deserialization error with its place in the file.

use serde::{de::Error, Deserialize, Deserializer};
use std::time::Duration;

/// `"30s"`, `"1m 30s"`, `"250ms"`: anything `humantime` understands.
pub mod duration {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(|e| {
            D::Error::custom(format!(
                "invalid duration {text:?}: {e} (write e.g. \"30s\" or \"250ms\")"
            ))
        })
    }
}

/// An optional duration (`Option<Duration>` fields with `#[serde(default)]`).
pub mod opt_duration {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        duration::deserialize(d).map(Some)
    }
}

/// `"8KiB"`, `"1MB"`, or a plain number of bytes.
pub mod size {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        bytesize::ByteSize::deserialize(d)
            .map(|s| s.as_u64())
            .map_err(|e| D::Error::custom(format!("invalid size: {e} (write e.g. \"8KiB\")")))
    }
}

/// An optional size (`Option<u64>` fields with `#[serde(default)]`).
pub mod opt_size {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        size::deserialize(d).map(Some)
    }
}

/// A rate in bytes per second: `"1KiB/s"`, or `0` / `"0"` for none.
pub mod rate {
    use super::*;

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Rate {
        Number(u64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let text = match Rate::deserialize(d)? {
            Rate::Number(0) => return Ok(0),
            Rate::Number(n) => {
                return Err(D::Error::custom(format!(
                    "invalid rate {n}: write it with its unit, e.g. \"{n}B/s\" or \"1KiB/s\""
                )))
            }
            Rate::Text(text) => text,
        };
        if text.trim() == "0" {
            return Ok(0);
        }
        let size = text
            .strip_suffix("/s")
            .and_then(|size| size.trim().parse::<bytesize::ByteSize>().ok());
        size.map(|s| s.as_u64()).ok_or_else(|| {
            D::Error::custom(format!(
                "invalid rate {text:?} (write e.g. \"1KiB/s\", or \"0\" for none)"
            ))
        })
    }
}

/// `"a"` or `["a", "b"]`, read as a list.
pub mod one_or_many {
    use super::*;

    #[derive(Deserialize)]
    #[serde(untagged, expecting = "a string or a list of strings")]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        Ok(match OneOrMany::deserialize(d)? {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        })
    }
}

/// A SHA-256 fingerprint written as 64 hex digits, with or without `:` separators.
pub fn parse_fingerprint(text: &str) -> Option<[u8; 32]> {
    let digits: String = text.chars().filter(|c| *c != ':').collect();
    hex::decode(digits.to_ascii_lowercase())
        .ok()?
        .try_into()
        .ok()
}
