//! Deployments in YAML: models, pipeline, device profiles; environment overrides;
//! validation with file:line:column in every message.
//!
//! The YAML parser reads the file into raw forms (sizes as plain numbers, `plugin:` and
//! `library:` as two optional keys); [`Deployment::parse`] turns them into types that
//! cannot hold a bad value ([`ImageSize`], [`PluginSource`]), naming the place of the
//! first thing wrong. Profiles are the built-in defaults with the file's patch, then the
//! environment's, laid over them ([`ProfilePatch::apply`], one merge for both).

mod devices;
mod env;
mod error;
mod image_size;
mod model;
mod pipeline;
mod profile;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use crate::device::DeviceId;
pub use devices::{DeviceList, MAX_DEVICES};
pub use env::{Env, EnvOverrides, ProcessEnv};
pub use error::{ConfigError, ConfigSource};
pub use image_size::{ImageSize, ImageSizeError};
pub use model::{EffectiveModel, ModelConfig, Role, Task};
pub use pipeline::{DetectorConfig, PipelineConfig, PluginSource, TrackerConfig};
pub use profile::{
    FrameConversion, ImageSizes, ImageSizesPatch, Profile, ProfileChoice, ProfileName,
    ProfilePatch, VideoTooLarge, limits,
};

use crate::device::DeviceRequest;

/// The `service:` section (plain data; the service crate validates it).
pub mod service;

/// The largest deployment file read: a real one is a few KiB.
pub const MAX_DEPLOYMENT_BYTES: u64 = 1 << 20;

/// The deployment used when no `--config` is given. Its relative paths resolve against
/// the working directory (the checkout, where `scripts/fetch-assets.sh` puts `assets/`).
pub const DEFAULT_DEPLOYMENT_YAML: &str = include_str!("../../configs/default.yaml");

/// The deployment file as the YAML parser reads it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeployment {
    #[serde(default)]
    device: DeviceRequest,
    #[serde(default)]
    profile: ProfileChoice,
    #[serde(default)]
    devices: Option<devices::RawDevices>,
    #[serde(default)]
    models: BTreeMap<Role, ModelConfig<u32>>,
    pipeline: pipeline::RawPipeline,
    #[serde(default)]
    profiles: BTreeMap<ProfileName, ProfilePatch<u32>>,
    #[serde(default)]
    service: Option<service::ServiceConfig>,
    #[serde(default)]
    kernel_cache: Option<PathBuf>,
}

/// The deployment file, checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeploymentFile {
    pub device: DeviceRequest,
    pub profile: ProfileChoice,
    /// Where pipelines are loaded (`pitchside serve`/`worker`); absent: one on `device`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub devices: Option<DeviceList>,
    pub models: BTreeMap<Role, ModelConfig>,
    pub pipeline: PipelineConfig,
    pub profiles: BTreeMap<ProfileName, ProfilePatch>,
    /// The miner service (`pitchside serve`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<service::ServiceConfig>,
    /// Where GPU kernels' autotune results and compiled code are kept, one directory per
    /// GPU model under it (relative to the YAML file); default
    /// `$XDG_CACHE_HOME/pitchside/kernels` (`pitchside_models::kernel_cache`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_cache: Option<PathBuf>,
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

impl Deployment {
    /// The embedded default deployment; relative paths resolve against `base_dir`.
    pub fn embedded(base_dir: impl Into<PathBuf>) -> Result<Deployment, ConfigError> {
        Self::parse(
            DEFAULT_DEPLOYMENT_YAML,
            ConfigSource::Embedded,
            base_dir.into(),
        )
    }

    /// Reads and parses a deployment file (a regular file of at most
    /// [`MAX_DEPLOYMENT_BYTES`]); relative paths resolve against its directory.
    pub fn from_file(path: &Path) -> Result<Deployment, ConfigError> {
        let text = crate::files::read_text_bounded(path, MAX_DEPLOYMENT_BYTES, "deployment")?;
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
        let raw: RawDeployment = serde_yaml_ng::from_str(text).map_err(|e| {
            let (line, column) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((1, 1));
            ConfigError::Yaml {
                source_name: source.to_string(),
                line,
                column,
                message: explain_yaml_error(text, line, &strip_location(&e.to_string())),
            }
        })?;
        let invalid = |path: &[&str], message: String| ConfigError::Invalid {
            location: locate(text, &source, path),
            message,
        };
        let devices = raw
            .devices
            .map(|d| d.parse().map_err(|m| invalid(&["devices"], m)))
            .transpose()?;
        if let (Some(one), Some(_)) = (raw.device.device(), &devices) {
            return Err(invalid(
                &["device"],
                format!(
                    "device: {one} names one device, and devices: lists the pool's: write \
                     `device: {}` with the list, or leave `devices:` out",
                    one.backend
                ),
            ));
        }
        let mut profiles = BTreeMap::new();
        for (name, patch) in raw.profiles {
            let key = name.as_str();
            let patch = patch.checked().map_err(|(role, e)| {
                invalid(&["profiles", key, "imgsz", role.as_str()], e.to_string())
            })?;
            let mut p = Profile::defaults(name);
            patch.apply(&mut p);
            p.check()
                .map_err(|(field, msg)| invalid(&["profiles", key, field], msg))?;
            profiles.insert(name, patch);
        }
        let mut models = BTreeMap::new();
        for (role, m) in raw.models {
            let m = m
                .checked()
                .map_err(|e| invalid(&["models", role.as_str(), "imgsz"], e.to_string()))?;
            if role == Role::Pitch && m.task != Task::Pose {
                return Err(invalid(
                    &["models", "pitch", "task"],
                    "the pitch model must be a pose model (task: pose)".into(),
                ));
            }
            models.insert(role, m);
        }
        let pipeline = raw
            .pipeline
            .parse()
            .map_err(|(path, msg)| invalid(&path, msg))?;
        for d in &pipeline.detectors {
            if let PluginSource::Builtin(b) = &d.source
                && b.needs_model
                && !models.contains_key(&d.model_role())
            {
                return Err(invalid(
                    &["pipeline", "detectors"],
                    format!(
                        "detector for role {} runs model `{}`, which is not in `models`",
                        d.role,
                        d.model_role()
                    ),
                ));
            }
        }
        if let Some(service) = &raw.service {
            service
                .check_shared()
                .map_err(|(path, msg)| invalid(&path, format!("{}: {msg}", path.join("."))))?;
        }
        if let Some(p) = &raw.kernel_cache {
            let message = if p.as_os_str().is_empty() {
                Some(
                    "kernel_cache is empty: name a directory, or leave the key out for the \
                      per-user default ($XDG_CACHE_HOME/pitchside/kernels)",
                )
            } else if p.starts_with("~") {
                Some("kernel_cache starts with `~`, which is not expanded: write the full path")
            } else {
                None
            };
            if let Some(m) = message {
                return Err(invalid(&["kernel_cache"], m.into()));
            }
        }
        Ok(Deployment {
            file: DeploymentFile {
                device: raw.device,
                profile: raw.profile,
                devices,
                models,
                pipeline,
                profiles,
                service: raw.service,
                kernel_cache: raw.kernel_cache,
            },
            source,
            text: text.to_string(),
            base_dir,
        })
    }

    /// `file:line:col` of the key at `path` (e.g. `["profiles", "cpu", "batch_size"]`).
    pub fn locate(&self, path: &[&str]) -> String {
        locate(&self.text, &self.source, path)
    }

    fn invalid(&self, path: &[&str], message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            location: self.locate(path),
            message: message.into(),
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

    /// The kernel cache root the deployment names, resolved against its directory; `None`
    /// leaves the per-user default.
    pub fn kernel_cache_root(&self) -> Option<PathBuf> {
        self.file
            .kernel_cache
            .as_deref()
            .map(|p| self.resolve_path(p))
    }

    /// Checks that every model file and plugin library exists, and that the kernel cache,
    /// where it exists, is a directory.
    pub fn check_files(&self) -> Result<(), ConfigError> {
        if let Some(root) = self.kernel_cache_root()
            && root.exists()
            && !root.is_dir()
        {
            return Err(self.invalid(
                &["kernel_cache"],
                format!("kernel_cache {} is not a directory", root.display()),
            ));
        }
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
        for (lib, key) in self.file.pipeline.libraries() {
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

    /// The profile in force for `device`, with the deployment's patch and the
    /// environment's applied.
    pub fn effective(
        &self,
        device: crate::device::Backend,
        env: &EnvOverrides,
    ) -> Result<EffectiveConfig, ConfigError> {
        let profile_name = self.file.profile.resolve(device);
        let mut profile = Profile::defaults(profile_name);
        if let Some(patch) = self.file.profiles.get(&profile_name) {
            patch.apply(&mut profile);
        }
        env.profile.apply(&mut profile);
        profile
            .check()
            .map_err(|(field, message)| ConfigError::Invalid {
                location: format!("profile {profile_name} after environment overrides ({field})"),
                message,
            })?;
        let models: BTreeMap<Role, EffectiveModel> = self
            .file
            .models
            .iter()
            .map(|(role, m)| {
                // A size from the environment (IMG_SIZE) wins over everything, as in the
                // Python miner; then the model's own, then the profile's for its role.
                let imgsz = env
                    .profile
                    .imgsz(*role)
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
        // A model's own size (pinned, or IMG_SIZE) with the profile's batch, checked as
        // the profile's sizes are.
        for (role, m) in &models {
            profile::check_batch_pixels(profile.batch_size, m.imgsz).map_err(|(_, message)| {
                ConfigError::Invalid {
                    location: format!("profile {profile_name}, model {role}"),
                    message,
                }
            })?;
        }
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

fn locate(text: &str, source: &ConfigSource, path: &[&str]) -> String {
    match locate_key(text, path) {
        Some((line, col)) => format!("{source}:{line}:{col}"),
        None => format!("{source} ({})", path.join(".")),
    }
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

/// Makes the YAML parser's message say what is wrong when its own words mislead: a `{` or
/// `[` left open swallows the lines after it (legal YAML: a flow collection may span lines),
/// so the parser names whatever it swallowed (``unknown variant `pose detectors` ``); and a
/// list or map where a name belongs is reported in terms of YAML tags.
fn explain_yaml_error(text: &str, error_line: usize, message: &str) -> String {
    let mut message = message.replace(
        "expected a YAML tag starting with '!'",
        "expected a single name",
    );
    if let Some((line, column, open)) = unclosed_flow(text)
        && line <= error_line
    {
        message.push_str(&format!(
            " (the `{open}` at line {line} column {column} is not closed on its line, so the \
             lines after it are read into it)"
        ));
    }
    message
}

/// The first `{` or `[` not closed on its own line (outside quotes and comments), as
/// 1-based (line, column, bracket).
fn unclosed_flow(text: &str) -> Option<(usize, usize, char)> {
    for (i, line) in text.lines().enumerate() {
        let mut open: Vec<(usize, char)> = Vec::new();
        let mut quote: Option<char> = None;
        let mut prev = ' ';
        for (col, c) in line.chars().enumerate() {
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None => match c {
                    '\'' | '"' => quote = Some(c),
                    '#' if prev.is_whitespace() => break,
                    '{' | '[' => open.push((col, c)),
                    '}' | ']' => {
                        open.pop();
                    }
                    _ => {}
                },
            }
            prev = c;
        }
        if let Some(&(col, c)) = open.first() {
            return Some((i + 1, col + 1, c));
        }
    }
    None
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

#[cfg(test)]
mod proptests;
