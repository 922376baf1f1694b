//! Deployments in YAML: models, pipeline, device profiles; environment overrides;
//! validation with file:line:column in every message.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::device::DeviceRequest;

/// The `service:` section (plain data; the service crate validates it).
pub mod service;

/// The deployment used when no `--config` is given. Its relative paths resolve against
/// the working directory (the checkout, where `scripts/fetch-assets.sh` puts `assets/`).
pub const DEFAULT_DEPLOYMENT_YAML: &str = include_str!("../../configs/default.yaml");

/// Built-in tracker plugin names.
pub const BUILTIN_TRACKERS: &[&str] = &["bytetrack"];
/// Built-in detector plugin names.
pub const BUILTIN_DETECTORS: &[&str] = &["yolo"];

/// Where a configuration came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    Embedded,
    File(PathBuf),
}

impl fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigSource::Embedded => f.write_str("<embedded configs/default.yaml>"),
            ConfigSource::File(p) => write!(f, "{}", p.display()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Syntax errors, unknown keys and wrong types, as the YAML parser reports them.
    #[error("{source_name}:{line}:{column}: {message}")]
    Yaml {
        source_name: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// A value that parsed but makes no sense.
    #[error("{location}: {message}")]
    Invalid { location: String, message: String },
    /// A bad environment override.
    #[error("environment variable {var}={value:?}: {expected}")]
    Env {
        var: &'static str,
        value: String,
        expected: &'static str,
    },
}

/// Model roles a deployment can fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Players, goalkeepers, referees (and the ball, when no ball model is given).
    Players,
    /// Pitch keypoints (a pose model).
    Pitch,
    /// A dedicated ball detector.
    Ball,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Players, Role::Pitch, Role::Ball];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Players => "players",
            Role::Pitch => "pitch",
            Role::Ball => "ball",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    Detect,
    Pose,
}

/// One model of the deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Checkpoint path (`.pt` or `.safetensors`), relative to the YAML file.
    pub path: PathBuf,
    pub task: Task,
    /// Class names, by model class index. Optional: checkpoints carry their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub names: Option<BTreeMap<u32, String>>,
    /// Pins the inference size for this model; otherwise the profile's size for its role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imgsz: Option<u32>,
    /// Model class → output class id (0 ball, 1 goalkeeper, 2 player, 3 referee).
    /// Classes missing from a given map are dropped; no map keeps ids as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_map: Option<BTreeMap<u32, u32>>,
}

/// A detector or tracker: built-in by name, or a shared library.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginRef {
    /// Built-in plugin name (`yolo`, `bytetrack`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    /// Shared library path, relative to the YAML file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub library: Option<PathBuf>,
    /// Plugin parameters, passed to the plugin as given.
    #[serde(default, skip_serializing_if = "is_null")]
    pub params: serde_json::Value,
}

fn is_null(v: &serde_json::Value) -> bool {
    v.is_null()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorConfig {
    pub role: Role,
    /// The model (by role key in `models`) a built-in detector runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<Role>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub library: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "is_null")]
    pub params: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    pub detectors: Vec<DetectorConfig>,
    pub tracker: PluginRef,
    /// Optional separate tracker for the ball (class 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ball_tracker: Option<PluginRef>,
}

/// Per-role inference sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSizes {
    pub players: u32,
    pub pitch: u32,
    pub ball: u32,
}

impl ImageSizes {
    pub fn get(&self, role: Role) -> u32 {
        match role {
            Role::Players => self.players,
            Role::Pitch => self.pitch,
            Role::Ball => self.ball,
        }
    }
}

/// The device profile names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileName {
    Cuda,
    Mps,
    Cpu,
}

impl ProfileName {
    pub const ALL: [ProfileName; 3] = [ProfileName::Cuda, ProfileName::Mps, ProfileName::Cpu];
    pub fn as_str(self) -> &'static str {
        match self {
            ProfileName::Cuda => "cuda",
            ProfileName::Mps => "mps",
            ProfileName::Cpu => "cpu",
        }
    }
}

impl fmt::Display for ProfileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Effective settings of one device profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub imgsz: ImageSizes,
    pub conf_threshold: f32,
    pub iou_threshold: f32,
    pub max_detections: u32,
    pub half: bool,
    pub agnostic_nms: bool,
    pub batch_size: u32,
    pub timeout_s: u64,
    pub prefetch_frames: u32,
    pub frame_stride: u32,
    /// 0 = all cores.
    pub cpu_threads: u32,
}

impl Profile {
    /// Defaults that mirror the Python miner's cuda/mps/cpu configs.
    pub fn defaults(name: ProfileName) -> Profile {
        match name {
            ProfileName::Cuda => Profile {
                imgsz: ImageSizes {
                    players: 640,
                    pitch: 640,
                    ball: 640,
                },
                conf_threshold: 0.35,
                iou_threshold: 0.5,
                max_detections: 150,
                half: true,
                agnostic_nms: false,
                batch_size: 32,
                timeout_s: 900,
                prefetch_frames: 64,
                frame_stride: 2,
                cpu_threads: 0,
            },
            ProfileName::Mps => Profile {
                imgsz: ImageSizes {
                    players: 1280,
                    pitch: 1024,
                    ball: 1024,
                },
                conf_threshold: 0.25,
                iou_threshold: 0.45,
                max_detections: 300,
                half: false,
                agnostic_nms: false,
                batch_size: 2,
                timeout_s: 1800,
                prefetch_frames: 64,
                frame_stride: 2,
                cpu_threads: 0,
            },
            ProfileName::Cpu => Profile {
                imgsz: ImageSizes {
                    players: 1024,
                    pitch: 896,
                    ball: 896,
                },
                conf_threshold: 0.25,
                iou_threshold: 0.45,
                max_detections: 300,
                half: false,
                agnostic_nms: false,
                batch_size: 1,
                timeout_s: 10800,
                prefetch_frames: 64,
                frame_stride: 2,
                cpu_threads: 0,
            },
        }
    }
}

/// Partial per-role sizes as written in YAML.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSizesPatch {
    pub players: Option<u32>,
    pub pitch: Option<u32>,
    pub ball: Option<u32>,
}

/// A profile as written in YAML: every field optional, over the built-in defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    pub imgsz: Option<ImageSizesPatch>,
    pub conf_threshold: Option<f32>,
    pub iou_threshold: Option<f32>,
    pub max_detections: Option<u32>,
    pub half: Option<bool>,
    pub agnostic_nms: Option<bool>,
    pub batch_size: Option<u32>,
    pub timeout_s: Option<u64>,
    pub prefetch_frames: Option<u32>,
    pub frame_stride: Option<u32>,
    pub cpu_threads: Option<u32>,
}

impl ProfilePatch {
    fn apply(&self, p: &mut Profile) {
        if let Some(s) = &self.imgsz {
            if let Some(v) = s.players {
                p.imgsz.players = v;
            }
            if let Some(v) = s.pitch {
                p.imgsz.pitch = v;
            }
            if let Some(v) = s.ball {
                p.imgsz.ball = v;
            }
        }
        macro_rules! set {
            ($($f:ident),*) => {$( if let Some(v) = self.$f { p.$f = v; } )*};
        }
        set!(
            conf_threshold,
            iou_threshold,
            max_detections,
            half,
            agnostic_nms,
            batch_size,
            timeout_s,
            prefetch_frames,
            frame_stride,
            cpu_threads
        );
    }
}

/// Which profile to use: the one matching the device, or a pinned one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileChoice {
    #[default]
    Auto,
    Cuda,
    Mps,
    Cpu,
}

/// The deployment file, as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentFile {
    #[serde(default)]
    pub device: DeviceRequest,
    #[serde(default)]
    pub profile: ProfileChoice,
    #[serde(default)]
    pub models: BTreeMap<Role, ModelConfig>,
    pub pipeline: PipelineConfig,
    #[serde(default)]
    pub profiles: BTreeMap<ProfileName, ProfilePatch>,
    /// The miner service (`pitchside serve`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<service::ServiceConfig>,
}

/// A parsed, validated deployment: file contents, where they came from, and the
/// directory relative paths resolve against.
#[derive(Debug, Clone)]
pub struct Deployment {
    pub file: DeploymentFile,
    pub source: ConfigSource,
    pub text: String,
    pub base_dir: PathBuf,
}

/// Reads environment variables; tests pass a map instead of touching the process.
pub trait Env {
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Env for BTreeMap<&str, &str> {
    fn get(&self, name: &str) -> Option<String> {
        BTreeMap::get(self, name).map(|s| s.to_string())
    }
}

impl Env for [(&str, &str)] {
    fn get(&self, name: &str) -> Option<String> {
        self.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }
}

/// Environment overrides, in the names the Python miner's operators already use.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnvOverrides {
    pub img_size: Option<u32>,
    pub batch_size: Option<u32>,
    pub frame_stride: Option<u32>,
    pub prefetch_frames: Option<u32>,
    pub device: Option<DeviceRequest>,
    pub conf_threshold: Option<f32>,
    pub max_detections: Option<u32>,
}

impl EnvOverrides {
    pub fn read(env: &(impl Env + ?Sized)) -> Result<EnvOverrides, ConfigError> {
        fn positive(
            env: &(impl Env + ?Sized),
            var: &'static str,
            expected: &'static str,
            check: impl Fn(u32) -> bool,
        ) -> Result<Option<u32>, ConfigError> {
            let Some(value) = env.get(var) else {
                return Ok(None);
            };
            match value.trim().parse::<u32>() {
                Ok(v) if check(v) => Ok(Some(v)),
                _ => Err(ConfigError::Env {
                    var,
                    value,
                    expected,
                }),
            }
        }
        let img_size = positive(
            env,
            "IMG_SIZE",
            "a positive multiple of 32, e.g. 640",
            |v| v > 0 && v % 32 == 0,
        )?;
        let batch_size = positive(env, "BATCH_SIZE", "an integer >= 1", |v| v >= 1)?;
        let frame_stride = positive(env, "FRAME_STRIDE", "an integer >= 1", |v| v >= 1)?;
        let prefetch_frames = positive(env, "PREFETCH_FRAMES", "an integer >= 1", |v| v >= 1)?;
        let max_detections = positive(env, "MAX_DETECTIONS", "an integer >= 1", |v| v >= 1)?;
        let conf_threshold = match env.get("CONF_THRESHOLD") {
            None => None,
            Some(value) => match value.trim().parse::<f32>() {
                Ok(v) if (0.0..=1.0).contains(&v) => Some(v),
                _ => {
                    return Err(ConfigError::Env {
                        var: "CONF_THRESHOLD",
                        value,
                        expected: "a number between 0 and 1, e.g. 0.25",
                    });
                }
            },
        };
        let device = match env.get("PITCHSIDE_DEVICE") {
            None => None,
            Some(value) => match DeviceRequest::parse(&value) {
                Some(d) => Some(d),
                None => {
                    return Err(ConfigError::Env {
                        var: "PITCHSIDE_DEVICE",
                        value,
                        expected: "one of auto, cuda, wgpu, cpu",
                    });
                }
            },
        };
        Ok(EnvOverrides {
            img_size,
            batch_size,
            frame_stride,
            prefetch_frames,
            device,
            conf_threshold,
            max_detections,
        })
    }

    fn apply(&self, p: &mut Profile) {
        if let Some(s) = self.img_size {
            p.imgsz = ImageSizes {
                players: s,
                pitch: s,
                ball: s,
            };
        }
        if let Some(v) = self.batch_size {
            p.batch_size = v;
        }
        if let Some(v) = self.frame_stride {
            p.frame_stride = v;
        }
        if let Some(v) = self.prefetch_frames {
            p.prefetch_frames = v;
        }
        if let Some(v) = self.conf_threshold {
            p.conf_threshold = v;
        }
        if let Some(v) = self.max_detections {
            p.max_detections = v;
        }
    }
}

impl Deployment {
    /// The embedded default deployment; relative paths resolve against `base_dir`.
    pub fn embedded(base_dir: impl Into<PathBuf>) -> Result<Deployment, ConfigError> {
        Self::parse(
            DEFAULT_DEPLOYMENT_YAML,
            ConfigSource::Embedded,
            base_dir.into(),
        )
    }

    /// Reads and parses a deployment file; relative paths resolve against its directory.
    pub fn from_file(path: &Path) -> Result<Deployment, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let base = if base.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            base
        };
        Self::parse(&text, ConfigSource::File(path.to_path_buf()), base)
    }

    /// Parses YAML text and checks everything that does not need the file system.
    pub fn parse(
        text: &str,
        source: ConfigSource,
        base_dir: PathBuf,
    ) -> Result<Deployment, ConfigError> {
        let file: DeploymentFile = serde_yaml_ng::from_str(text).map_err(|e| {
            let (line, column) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((1, 1));
            ConfigError::Yaml {
                source_name: source.to_string(),
                line,
                column,
                message: strip_location(&e.to_string()),
            }
        })?;
        let dep = Deployment {
            file,
            source,
            text: text.to_string(),
            base_dir,
        };
        dep.check_semantics()?;
        Ok(dep)
    }

    /// `file:line:col` of the key at `path` (e.g. `["profiles", "cpu", "batch_size"]`).
    pub fn locate(&self, path: &[&str]) -> String {
        match locate_key(&self.text, path) {
            Some((line, col)) => format!("{}:{line}:{col}", self.source),
            None => format!("{} ({})", self.source, path.join(".")),
        }
    }

    fn invalid(&self, path: &[&str], message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            location: self.locate(path),
            message: message.into(),
        }
    }

    fn check_semantics(&self) -> Result<(), ConfigError> {
        let f = &self.file;
        for (name, patch) in &f.profiles {
            let mut p = Profile::defaults(*name);
            patch.apply(&mut p);
            let key = name.as_str();
            check_profile(&p).map_err(|(field, msg)| {
                let mut path = vec!["profiles", key];
                path.extend(field.split('.'));
                self.invalid(&path, msg)
            })?;
        }
        for (role, m) in &f.models {
            if let Some(s) = m.imgsz
                && (s == 0 || s % 32 != 0)
            {
                return Err(self.invalid(
                    &["models", role.as_str(), "imgsz"],
                    format!("imgsz {s} is not a positive multiple of 32"),
                ));
            }
            if *role == Role::Pitch && m.task != Task::Pose {
                return Err(self.invalid(
                    &["models", "pitch", "task"],
                    "the pitch model must be a pose model (task: pose)",
                ));
            }
        }
        if f.pipeline.detectors.is_empty() {
            return Err(self.invalid(&["pipeline", "detectors"], "no detectors configured"));
        }
        for d in &f.pipeline.detectors {
            let at = ["pipeline", "detectors"];
            match (&d.plugin, &d.library) {
                (Some(_), Some(_)) => {
                    return Err(self.invalid(&at, "a detector has both `plugin` and `library`"));
                }
                (None, None) => {
                    return Err(self.invalid(
                        &at,
                        format!("detector for role {} needs `plugin` or `library`", d.role),
                    ));
                }
                (Some(name), None) => {
                    if !BUILTIN_DETECTORS.contains(&name.as_str()) {
                        return Err(self.invalid(
                            &at,
                            format!(
                                "unknown detector plugin `{name}` (built-in: {})",
                                BUILTIN_DETECTORS.join(", ")
                            ),
                        ));
                    }
                    let model = d.model.unwrap_or(d.role);
                    if !f.models.contains_key(&model) {
                        return Err(self.invalid(
                            &at,
                            format!(
                                "detector for role {} runs model `{model}`, which is not in `models`",
                                d.role
                            ),
                        ));
                    }
                }
                (None, Some(_)) => {}
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for d in &f.pipeline.detectors {
            if !seen.insert(d.role) {
                return Err(self.invalid(
                    &["pipeline", "detectors"],
                    format!("two detectors for role {}", d.role),
                ));
            }
        }
        self.check_plugin_ref(&f.pipeline.tracker, "tracker")?;
        if let Some(t) = &f.pipeline.ball_tracker {
            self.check_plugin_ref(t, "ball_tracker")?;
        }
        Ok(())
    }

    fn check_plugin_ref(&self, r: &PluginRef, key: &str) -> Result<(), ConfigError> {
        let at = ["pipeline", key];
        match (&r.plugin, &r.library) {
            (Some(name), None) => {
                if !BUILTIN_TRACKERS.contains(&name.as_str()) {
                    return Err(self.invalid(
                        &["pipeline", key, "plugin"],
                        format!(
                            "unknown tracker `{name}` (built-in: {})",
                            BUILTIN_TRACKERS.join(", ")
                        ),
                    ));
                }
                Ok(())
            }
            (None, Some(_)) => Ok(()),
            (Some(_), Some(_)) => Err(self.invalid(&at, "both `plugin` and `library` given")),
            (None, None) => Err(self.invalid(&at, "needs `plugin` or `library`")),
        }
    }

    /// Resolves a path from the deployment against its base directory.
    pub fn resolve_path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }

    /// Checks that every model file and plugin library exists.
    pub fn check_files(&self) -> Result<(), ConfigError> {
        for (role, m) in &self.file.models {
            let path = self.resolve_path(&m.path);
            if !path.is_file() {
                let hint = if self.source == ConfigSource::Embedded {
                    " (run scripts/fetch-assets.sh from the checkout, or pass --config)"
                } else {
                    ""
                };
                return Err(self.invalid(
                    &["models", role.as_str(), "path"],
                    format!("model file {} does not exist{hint}", path.display()),
                ));
            }
        }
        let libs = self
            .file
            .pipeline
            .detectors
            .iter()
            .filter_map(|d| d.library.as_ref().map(|l| (l, "detectors")))
            .chain(
                std::iter::once(&self.file.pipeline.tracker)
                    .chain(self.file.pipeline.ball_tracker.as_ref())
                    .filter_map(|t| t.library.as_ref().map(|l| (l, "tracker"))),
            );
        for (lib, key) in libs {
            let path = self.resolve_path(lib);
            if !path.is_file() {
                return Err(self.invalid(
                    &["pipeline", key],
                    format!("plugin library {} does not exist", path.display()),
                ));
            }
        }
        Ok(())
    }

    /// The profile in force for `device`, with the deployment's patches and the
    /// environment applied.
    pub fn effective(
        &self,
        device: crate::device::Backend,
        env: &EnvOverrides,
    ) -> Result<EffectiveConfig, ConfigError> {
        let profile_name = match self.file.profile {
            ProfileChoice::Auto => device.default_profile(),
            ProfileChoice::Cuda => ProfileName::Cuda,
            ProfileChoice::Mps => ProfileName::Mps,
            ProfileChoice::Cpu => ProfileName::Cpu,
        };
        let mut profile = Profile::defaults(profile_name);
        if let Some(patch) = self.file.profiles.get(&profile_name) {
            patch.apply(&mut profile);
        }
        env.apply(&mut profile);
        check_profile(&profile).map_err(|(field, message)| ConfigError::Invalid {
            location: format!("profile {profile_name} after environment overrides ({field})"),
            message,
        })?;
        let models = self
            .file
            .models
            .iter()
            .map(|(role, m)| {
                // IMG_SIZE wins over everything, as in the Python miner.
                let imgsz = env
                    .img_size
                    .or(m.imgsz)
                    .unwrap_or_else(|| profile.imgsz.get(*role));
                (
                    *role,
                    EffectiveModel {
                        path: self.resolve_path(&m.path),
                        task: m.task,
                        imgsz,
                        names: m.names.clone(),
                        class_map: m.class_map.clone(),
                    },
                )
            })
            .collect();
        Ok(EffectiveConfig {
            source: self.source.to_string(),
            device,
            profile_name,
            profile,
            models,
            pipeline: self.file.pipeline.clone(),
            service: self.file.service.clone(),
        })
    }
}

/// Checks a profile's values; on error returns the offending field and why.
fn check_profile(p: &Profile) -> Result<(), (&'static str, String)> {
    for (role, s) in [
        ("imgsz.players", p.imgsz.players),
        ("imgsz.pitch", p.imgsz.pitch),
        ("imgsz.ball", p.imgsz.ball),
    ] {
        if s == 0 || s % 32 != 0 {
            return Err((role, format!("imgsz {s} is not a positive multiple of 32")));
        }
    }
    for (field, v) in [
        ("conf_threshold", p.conf_threshold),
        ("iou_threshold", p.iou_threshold),
    ] {
        if !(0.0..=1.0).contains(&v) {
            return Err((field, format!("{field} {v} is outside [0, 1]")));
        }
    }
    let positive = [
        ("batch_size", p.batch_size as u64),
        ("max_detections", p.max_detections as u64),
        ("prefetch_frames", p.prefetch_frames as u64),
        ("frame_stride", p.frame_stride as u64),
        ("timeout_s", p.timeout_s),
    ];
    for (field, v) in positive {
        if v == 0 {
            return Err((field, format!("{field} must be at least 1")));
        }
    }
    Ok(())
}

/// A model as the pipeline will run it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EffectiveModel {
    pub path: PathBuf,
    pub task: Task,
    pub imgsz: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub names: Option<BTreeMap<u32, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class_map: Option<BTreeMap<u32, u32>>,
}

/// The configuration in force: what `pitchside config show` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EffectiveConfig {
    pub source: String,
    pub device: crate::device::Backend,
    #[serde(rename = "profile")]
    pub profile_name: ProfileName,
    #[serde(rename = "settings")]
    pub profile: Profile,
    pub models: BTreeMap<Role, EffectiveModel>,
    pub pipeline: PipelineConfig,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<service::ServiceConfig>,
}

/// serde_yaml_ng appends " at line L column C" to messages; we print the location first.
fn strip_location(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Finds the 1-based line and column of a nested key in block-style YAML.
/// Good enough for deployment files (block mappings). When only a prefix of the path
/// is present, returns the deepest key found; None when not even the first is.
pub fn locate_key(text: &str, path: &[&str]) -> Option<(usize, usize)> {
    let mut depth = 0usize;
    let mut parent_indent: Option<usize> = None;
    let mut found = None;
    for (i, raw) in text.lines().enumerate() {
        if depth == path.len() {
            break;
        }
        let line = raw.split(" #").next().unwrap_or(raw);
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = line.len() - trimmed.len();
        if let Some(pi) = parent_indent
            && indent <= pi
        {
            // Left the parent's block without finding the key.
            return found;
        }
        let key_part = trimmed.strip_prefix("- ").unwrap_or(trimmed);
        let extra = trimmed.len() - key_part.len();
        if let Some((k, _)) = key_part.split_once(':') {
            let k = k.trim().trim_matches('"').trim_matches('\'');
            if k == path[depth] {
                found = Some((i + 1, indent + extra + 1));
                parent_indent = Some(indent + extra);
                depth += 1;
            }
        }
    }
    found
}

#[cfg(test)]
mod tests;
