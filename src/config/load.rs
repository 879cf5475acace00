//! Reading and parsing the config file: the only place that touches the file system
//! for configuration.
//!
//! Each section (the server table, every listener, upstream and route) is deserialized
//! on its own, so one bad entry does not hide the errors of the others; `validate` then
//! adds every semantic error. All errors carry their TOML path and `line:column`. A
//! file with errors is kept as far as it could be read (`read_file`), so that compiling
//! it (`state::compile`) adds what only compiling finds: one check reports all.

use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use super::location::{line_column, path_at, span_of, Problems, TomlPath};
use super::raw::{single_section, RawConfig, SINGLE_SECTIONS};
use super::validate::{validate, Unparsed};

/// A config that parsed, with its text (to place later problems) and the errors
/// found in it so far: sections that did not deserialize, and validation's.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The file as typed data; a section that did not deserialize is left out.
    pub raw: RawConfig,
    /// The file's name, as errors show it.
    pub source: String,
    text: String,
    /// Every error found before compiling, placed in the file.
    invalid: Vec<ConfigError>,
    /// Where it came from (a file, unless its reader says otherwise).
    pub origin: super::source::Origin,
}

impl LoadedConfig {
    /// The file's text, as read.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether the file parsed and validated without an error.
    pub fn is_valid(&self) -> bool {
        self.invalid.is_empty()
    }

    /// Whether an error was found at `at` or inside it (`routes[2]` holds
    /// `routes[2].upstream`, not `routes[20]`): compiling leaves such a part out.
    pub fn has_errors_at(&self, at: &TomlPath) -> bool {
        let at = at.to_string();
        self.invalid.iter().any(|e| {
            e.path
                .strip_prefix(&at)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
        })
    }

    /// Every error of the file: those found before compiling, and `problems` found
    /// compiling it (key files, certificates, stage settings), placed in the file
    /// alike, in file order.
    pub fn errors(&self, problems: Problems) -> ConfigErrors {
        // The text parsed once already: this parse finds the same tree.
        let (root, _) = DeTable::parse_recoverable(&self.text);
        let mut errors = self.invalid.clone();
        errors.extend(problems.into_iter().map(|(path, message)| {
            let (line, column) = line_column(&self.text, span_of(&root, &path).start);
            ConfigError {
                path: path.to_string(),
                line,
                column,
                message,
            }
        }));
        errors.sort_by_key(|e| (e.line, e.column));
        ConfigErrors {
            source: self.source.clone(),
            errors,
        }
    }

    /// The config when it is valid, or all its errors.
    fn valid(self) -> Result<Self, ConfigErrors> {
        match self.is_valid() {
            true => Ok(self),
            false => Err(self.errors(Problems::new())),
        }
    }
}

/// One problem in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Every problem found in one file, in file order.
#[derive(Debug, Clone)]
pub struct ConfigErrors {
    pub source: String,
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        writeln!(
            f,
            "{}: {n} error{}",
            self.source,
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.errors {
            writeln!(
                f,
                "{}:{}:{}: {}: {}",
                self.source, e.line, e.column, e.path, e.message
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Read, parse and validate a config file; an error if it has any. Relative paths in
/// it are taken relative to the file's directory.
pub fn load_file(path: &Path) -> Result<LoadedConfig, ConfigErrors> {
    read_file(path)?.valid()
}

/// Parse and validate config text; `source` names it in error messages.
pub fn load_str(text: &str, source: &str) -> Result<LoadedConfig, ConfigErrors> {
    read_str(text, source)?.valid()
}

/// Read, parse and validate a config file, keeping what could be read of a file with
/// errors (for the one check that reports them with what only compiling finds); an
/// error only when the file cannot be read or is no TOML.
pub fn read_file(path: &Path) -> Result<LoadedConfig, ConfigErrors> {
    let source = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => read_str(&text, &source).map(|mut loaded| {
            let base = path.parent().unwrap_or(Path::new("."));
            resolve_paths(&mut loaded.raw, base);
            loaded
        }),
        Err(e) => Err(ConfigErrors {
            source,
            errors: vec![ConfigError {
                path: TomlPath::root().to_string(),
                line: 0,
                column: 0,
                message: format!("cannot read file: {e}"),
            }],
        }),
    }
}

/// Parse and validate config text like [`read_file`].
pub fn read_str(text: &str, source: &str) -> Result<LoadedConfig, ConfigErrors> {
    let fail = |errors: Vec<ConfigError>| ConfigErrors {
        source: source.to_owned(),
        errors,
    };
    let (root, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        let errors = syntax
            .iter()
            .map(|e| {
                let start = e.span().map_or(0, |s| s.start);
                let (line, column) = line_column(text, start);
                ConfigError {
                    path: path_at(&root, &(start..start + 1)).to_string(),
                    line,
                    column,
                    message: e.message().to_owned(),
                }
            })
            .collect();
        return Err(fail(errors));
    }

    let mut sections = Sections {
        text,
        root: &root,
        errors: Vec::new(),
        unparsed: Unparsed::default(),
    };
    let raw = sections.read();
    let mut errors = sections.errors;
    for (path, message) in validate(&raw, &sections.unparsed) {
        let (line, column) = line_column(text, span_of(&root, &path).start);
        errors.push(ConfigError {
            path: path.to_string(),
            line,
            column,
            message,
        });
    }
    errors.sort_by_key(|e| (e.line, e.column));
    Ok(LoadedConfig {
        raw,
        source: source.to_owned(),
        text: text.to_owned(),
        invalid: errors,
        origin: super::source::Origin::File,
    })
}

/// Makes every file path of `raw` absolute against `base` (a relative path in a
/// config means "next to this file", wherever tollgate was started from).
fn resolve_paths(raw: &mut RawConfig, base: &Path) {
    let base = std::path::absolute(base).unwrap_or_else(|_| base.to_path_buf());
    let fix = |p: &mut PathBuf| {
        if p.is_relative() {
            *p = base.join(&*p);
        }
    };
    raw.output_paths_mut().into_iter().for_each(fix);
    raw.input_files_mut().into_iter().for_each(fix);
}

/// Deserializes the top-level sections one entry at a time, collecting errors.
struct Sections<'a, 'i> {
    text: &'a str,
    root: &'a Spanned<DeTable<'i>>,
    errors: Vec<ConfigError>,
    unparsed: Unparsed,
}

/// Every section's name, as an error lists them: `server`, `admin`, ...
fn known_sections() -> String {
    let singles = SINGLE_SECTIONS.iter().map(|(name, _)| *name);
    let names: Vec<String> = SECTIONS
        .into_iter()
        .chain(singles)
        .map(|name| format!("`{name}`"))
        .collect();
    names.join(", ")
}

/// The sections `Sections::read` reads itself (each of the others is in
/// `raw::SINGLE_SECTIONS`).
const SECTIONS: [&str; 9] = [
    "server",
    "listeners",
    "upstreams",
    "auth",
    "limits",
    "ip_lists",
    "jails",
    "waf",
    "routes",
];

impl<'i> Sections<'_, 'i> {
    fn read(&mut self) -> RawConfig {
        let mut raw = RawConfig::default();
        for (key, value) in self.root.get_ref().iter() {
            let path = TomlPath::root().key(key.get_ref().to_string());
            match key.get_ref().as_ref() {
                "server" => {
                    if let Some(server) = self.item(value, &path) {
                        raw.server = server;
                    }
                }
                "auth" => raw.auth = self.named(value, &path, Some(|u| &mut u.auth)),
                "limits" => raw.limits = self.named(value, &path, Some(|u| &mut u.limits)),
                "ip_lists" => raw.ip_lists = self.named(value, &path, None),
                "jails" => raw.jails = self.named(value, &path, Some(|u| &mut u.jails)),
                "waf" => raw.waf = self.named(value, &path, Some(|u| &mut u.waf)),
                "listeners" => raw.listeners = self.named(value, &path, Some(|u| &mut u.listeners)),
                "upstreams" => raw.upstreams = self.named(value, &path, Some(|u| &mut u.upstreams)),
                "routes" => raw.routes = self.list(value, &path),
                other => match single_section(other) {
                    Some(read) => {
                        self.read_with(value, &path, |de| read(&mut raw, de));
                    }
                    None => self.error_at(
                        key.span().start,
                        &path,
                        format!(
                            "unknown section `{other}`, expected one of {}",
                            known_sections()
                        ),
                    ),
                },
            }
        }
        raw
    }

    /// One table deserialized into `T`.
    fn item<T: DeserializeOwned>(
        &mut self,
        value: &Spanned<DeValue<'i>>,
        path: &TomlPath,
    ) -> Option<T> {
        self.read_with(value, path, T::deserialize)
    }

    /// One table read by `read`; its error placed at the value it is about.
    fn read_with<T>(
        &mut self,
        value: &Spanned<DeValue<'i>>,
        path: &TomlPath,
        read: impl FnOnce(ValueDeserializer<'i>) -> Result<T, toml::de::Error>,
    ) -> Option<T> {
        match read(ValueDeserializer::from(value.clone())) {
            Ok(v) => Some(v),
            Err(e) => {
                let span = e.span().unwrap_or_else(|| value.span());
                let at = path_at(self.root, &span);
                let at = if at.0.len() >= path.0.len() {
                    at
                } else {
                    path.clone()
                };
                self.error_at(span.start, &at, e.message().to_owned());
                None
            }
        }
    }

    /// `[section.NAME]` tables, each deserialized on its own; the names of those that
    /// fail go to `unparsed` when validation refers to them.
    fn named<T: DeserializeOwned>(
        &mut self,
        value: &Spanned<DeValue<'i>>,
        path: &TomlPath,
        unparsed: Option<fn(&mut Unparsed) -> &mut std::collections::BTreeSet<String>>,
    ) -> BTreeMap<String, T> {
        let Some(table) = value.get_ref().as_table() else {
            self.error_at(value.span().start, path, "expected a table".to_owned());
            return BTreeMap::new();
        };
        let mut items = BTreeMap::new();
        for (name, item) in table.iter() {
            let item_path = path.key(name.get_ref().to_string());
            match self.item(item, &item_path) {
                Some(v) => {
                    items.insert(name.get_ref().to_string(), v);
                }
                None => {
                    if let Some(unparsed) = unparsed {
                        unparsed(&mut self.unparsed).insert(name.get_ref().to_string());
                    }
                }
            }
        }
        items
    }

    /// `[[section]]` entries, each deserialized on its own.
    fn list<T: DeserializeOwned>(
        &mut self,
        value: &Spanned<DeValue<'i>>,
        path: &TomlPath,
    ) -> Vec<T> {
        let Some(array) = value.get_ref().as_array() else {
            self.error_at(
                value.span().start,
                path,
                "expected an array of tables ([[routes]])".to_owned(),
            );
            return Vec::new();
        };
        let mut items = Vec::new();
        for (i, item) in array.iter().enumerate() {
            if let Some(v) = self.item(item, &path.index(i)) {
                items.push(v);
            }
        }
        items
    }

    fn error_at(&mut self, offset: usize, path: &TomlPath, message: String) {
        let (line, column) = line_column(self.text, offset);
        self.errors.push(ConfigError {
            path: path.to_string(),
            line,
            column,
            message,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_every_section_error_with_its_place() {
        let text = r#"
[listeners.public]
adr = "127.0.0.1:8080"

[upstreams.orders]
targets = ["127.0.0.1:9001"]
connect_timeout = "soon"

[[routes]]
name = "r"
upstream = "orders"
"#;
        let err = load_str(text, "t.toml").expect_err("invalid");
        let lines: Vec<_> = err
            .errors
            .iter()
            .map(|e| (e.path.as_str(), e.line))
            .collect();
        assert_eq!(
            lines,
            vec![
                ("listeners.public.adr", 3),
                ("upstreams.orders.connect_timeout", 7),
            ],
            "{err}"
        );
        assert!(
            err.errors[0].message.contains("unknown field `adr`"),
            "{err}"
        );
        assert!(err.errors[1].message.contains("invalid duration"), "{err}");
    }

    #[test]
    fn syntax_errors_have_a_line() {
        let err = load_str("[server\nworkers = 1\n", "t.toml").expect_err("invalid");
        assert_eq!(err.errors[0].line, 1, "{err}");
    }

    #[test]
    fn unknown_top_level_section_is_named() {
        let err = load_str("[servr]\n", "t.toml").expect_err("invalid");
        assert!(
            err.errors
                .iter()
                .any(|e| e.path == "servr" && e.message.contains("unknown section `servr`")),
            "{err}"
        );
    }
}
