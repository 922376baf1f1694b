//! The `pipeline:` section: which plugin detects for which role, which tracks. A plugin is
//! a built-in (from the registry) or a shared library, never both and never neither:
//! [`PluginSource`] is parsed once from the `plugin:`/`library:` keys.

use std::path::PathBuf;

use pitchside_plugin::PluginKind;
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

use super::model::Role;
use crate::registry::{self, BuiltinDetector, BuiltinPlugin, BuiltinTracker};

/// Where a plugin comes from. `B` is the registry entry type of its kind.
#[derive(Debug, Clone, PartialEq)]
pub enum PluginSource<B: 'static> {
    /// `plugin: NAME`: a built-in plugin of the registry.
    Builtin(&'static B),
    /// `library: PATH`: a shared library, relative to the YAML file.
    Library(PathBuf),
}

/// Why a `plugin:`/`library:` pair names no plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SourceError {
    Both,
    Neither,
    /// The message, e.g. "unknown tracker `sort` (built-in: bytetrack)".
    Unknown(String),
}

impl<C> PluginSource<BuiltinPlugin<C>> {
    /// The one parse of `plugin:` and `library:`: exactly one, and a built-in of the kind.
    fn parse(
        plugin: Option<String>,
        library: Option<PathBuf>,
        kind: PluginKind,
        find: fn(&str) -> Option<&'static BuiltinPlugin<C>>,
    ) -> Result<Self, SourceError> {
        match (plugin, library) {
            (Some(_), Some(_)) => Err(SourceError::Both),
            (None, None) => Err(SourceError::Neither),
            (None, Some(lib)) => Ok(PluginSource::Library(lib)),
            (Some(name), None) => find(&name).map(PluginSource::Builtin).ok_or_else(|| {
                let other = registry::BUILTINS
                    .iter()
                    .find(|b| b.name() == name && b.kind() != kind);
                SourceError::Unknown(match other {
                    Some(b) => format!("`{name}` is a built-in {}, not a {kind}", b.kind()),
                    None => format!(
                        "unknown {kind} `{name}` (built-in: {})",
                        registry::names(kind).join(", ")
                    ),
                })
            }),
        }
    }

    pub fn library(&self) -> Option<&PathBuf> {
        match self {
            PluginSource::Library(p) => Some(p),
            PluginSource::Builtin(_) => None,
        }
    }

    /// The name a message calls the plugin by: its name or its library path.
    pub fn describe(&self) -> String {
        match self {
            PluginSource::Builtin(b) => b.name.to_string(),
            PluginSource::Library(p) => p.display().to_string(),
        }
    }

    fn serialize_into<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
        match self {
            PluginSource::Builtin(b) => map.serialize_entry("plugin", b.name),
            PluginSource::Library(p) => map.serialize_entry("library", p),
        }
    }
}

/// A tracker (`pipeline.tracker`, `pipeline.ball_tracker`).
#[derive(Debug, Clone, PartialEq)]
pub struct TrackerConfig {
    pub source: PluginSource<BuiltinTracker>,
    /// Plugin parameters, passed to the plugin as given.
    pub params: serde_json::Value,
}

/// A detector and the role its output fills.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorConfig {
    pub role: Role,
    /// The model (by role key in `models`) a built-in detector runs; default: its role's.
    pub model: Option<Role>,
    pub source: PluginSource<BuiltinDetector>,
    pub params: serde_json::Value,
}

impl DetectorConfig {
    /// The `models:` entry a built-in detector runs.
    pub fn model_role(&self) -> Role {
        self.model.unwrap_or(self.role)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PipelineConfig {
    pub detectors: Vec<DetectorConfig>,
    pub tracker: TrackerConfig,
    /// Optional separate tracker for the ball (class 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ball_tracker: Option<TrackerConfig>,
}

impl PipelineConfig {
    /// Every shared library the pipeline names, with the `pipeline` key it is under.
    pub fn libraries(&self) -> impl Iterator<Item = (&PathBuf, &'static str)> {
        let detectors = self
            .detectors
            .iter()
            .filter_map(|d| d.source.library().map(|l| (l, "detectors")));
        let trackers = [
            Some(("tracker", &self.tracker)),
            self.ball_tracker.as_ref().map(|t| ("ball_tracker", t)),
        ]
        .into_iter()
        .flatten()
        .filter_map(|(key, t)| t.source.library().map(|l| (l, key)));
        detectors.chain(trackers)
    }
}

fn is_null(v: &serde_json::Value) -> bool {
    v.is_null()
}

impl Serialize for TrackerConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        self.source.serialize_into(&mut map)?;
        if !is_null(&self.params) {
            map.serialize_entry("params", &self.params)?;
        }
        map.end()
    }
}

impl Serialize for DetectorConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("role", &self.role)?;
        if let Some(m) = self.model {
            map.serialize_entry("model", &m)?;
        }
        self.source.serialize_into(&mut map)?;
        if !is_null(&self.params) {
            map.serialize_entry("params", &self.params)?;
        }
        map.end()
    }
}

/// A detector entry as the YAML parser reads it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDetector {
    role: Role,
    #[serde(default)]
    model: Option<Role>,
    #[serde(default)]
    plugin: Option<String>,
    #[serde(default)]
    library: Option<PathBuf>,
    #[serde(default)]
    params: serde_json::Value,
}

/// A tracker entry as the YAML parser reads it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTracker {
    #[serde(default)]
    plugin: Option<String>,
    #[serde(default)]
    library: Option<PathBuf>,
    #[serde(default)]
    params: serde_json::Value,
}

/// The `pipeline:` section as the YAML parser reads it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPipeline {
    detectors: Vec<RawDetector>,
    tracker: RawTracker,
    #[serde(default)]
    ball_tracker: Option<RawTracker>,
}

/// What is wrong, and the key path where it is.
pub(super) type KeyedError = (Vec<&'static str>, String);

impl RawTracker {
    fn parse(self, key: &'static str) -> Result<TrackerConfig, KeyedError> {
        let source = PluginSource::parse(
            self.plugin,
            self.library,
            PluginKind::Tracker,
            registry::tracker,
        )
        .map_err(|e| match e {
            SourceError::Both => (
                vec!["pipeline", key],
                "both `plugin` and `library` given".to_string(),
            ),
            SourceError::Neither => (
                vec!["pipeline", key],
                "needs `plugin` or `library`".to_string(),
            ),
            SourceError::Unknown(m) => (vec!["pipeline", key, "plugin"], m),
        })?;
        Ok(TrackerConfig {
            source,
            params: self.params,
        })
    }
}

impl RawPipeline {
    pub(super) fn parse(self) -> Result<PipelineConfig, KeyedError> {
        let at = || vec!["pipeline", "detectors"];
        if self.detectors.is_empty() {
            return Err((at(), "no detectors configured".into()));
        }
        let mut detectors: Vec<DetectorConfig> = Vec::new();
        for d in self.detectors {
            let source = PluginSource::parse(
                d.plugin,
                d.library,
                PluginKind::Detector,
                registry::detector,
            )
            .map_err(|e| {
                let m = match e {
                    SourceError::Both => "a detector has both `plugin` and `library`".to_string(),
                    SourceError::Neither => {
                        format!("detector for role {} needs `plugin` or `library`", d.role)
                    }
                    SourceError::Unknown(m) => m,
                };
                (at(), m)
            })?;
            if detectors.iter().any(|e| e.role == d.role) {
                return Err((at(), format!("two detectors for role {}", d.role)));
            }
            detectors.push(DetectorConfig {
                role: d.role,
                model: d.model,
                source,
                params: d.params,
            });
        }
        Ok(PipelineConfig {
            detectors,
            tracker: self.tracker.parse("tracker")?,
            ball_tracker: self
                .ball_tracker
                .map(|t| t.parse("ball_tracker"))
                .transpose()?,
        })
    }
}
