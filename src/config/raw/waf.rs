//! `[waf.NAME]`: injection detection with anomaly scoring, named by routes (`waf`).

use serde::Deserialize;

use crate::config::units;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WafSection {
    #[serde(default)]
    pub mode: WafMode,
    /// 1 to 4: which rules run (each has a level, as the OWASP Core Rule Set's).
    #[serde(default = "paranoia")]
    pub paranoia: u8,
    /// The score (sum of the matched rules' severities) that blocks.
    #[serde(default = "anomaly_threshold")]
    pub anomaly_threshold: u32,
    /// Places inspected; all by default.
    #[serde(default = "all_places")]
    pub inspect: Vec<WafPlace>,
    /// Body bytes inspected at most; a larger body (or one with a `Content-Encoding`)
    /// is handled per `on_oversize`.
    #[serde(default = "max_inspect", with = "units::size")]
    pub max_inspect: u64,
    #[serde(default)]
    pub on_oversize: OnOversize,
    #[serde(default)]
    pub exclude: Vec<WafExclusion>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WafMode {
    /// Over the threshold: 403, and the upstream sees nothing of the request.
    #[default]
    Block,
    /// Log and count only.
    Detect,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WafPlace {
    Path,
    Query,
    Headers,
    Cookies,
    Body,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnOversize {
    /// Refuse the request (413; 415 for an encoded body).
    #[default]
    Block,
    /// Send it on with its body not inspected.
    Pass,
}

/// A rule switched off: for one target, one route, one consumer, or all of them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WafExclusion {
    /// A rule id (`942100`) or a family (`"941*"`).
    pub rule: RuleRef,
    /// `query:NAME`, `header:NAME`, `cookie:NAME`, `body:NAME` (a form field or a
    /// multipart part), `body:/pointer` (a JSON field), `body`, `path`; a trailing `*`
    /// matches any rest.
    #[serde(default)]
    pub target: Option<String>,
    /// A route's name.
    #[serde(default)]
    pub route: Option<String>,
    /// A consumer's id (an API key's consumer, a JWT's `sub`).
    #[serde(default)]
    pub consumer: Option<String>,
}

/// A rule id as a number, or a pattern as a string.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum RuleRef {
    Id(u32),
    Pattern(String),
}

impl RuleRef {
    /// The id or pattern as text (`942100`, `941*`).
    pub fn text(&self) -> String {
        match self {
            RuleRef::Id(id) => id.to_string(),
            RuleRef::Pattern(p) => p.clone(),
        }
    }
}

fn paranoia() -> u8 {
    1
}

fn anomaly_threshold() -> u32 {
    5
}

fn all_places() -> Vec<WafPlace> {
    vec![
        WafPlace::Path,
        WafPlace::Query,
        WafPlace::Headers,
        WafPlace::Cookies,
        WafPlace::Body,
    ]
}

fn max_inspect() -> u64 {
    64 * 1024
}
