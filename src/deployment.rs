//! What the commands share: the deployment (`--config`, `--device`, environment overrides)
//! and the one place a device is chosen and logged.

use std::path::PathBuf;

use anyhow::{Context, Result};
use pitchside_engine::config::{EnvOverrides, ProcessEnv};
use pitchside_engine::device::{DeviceId, DeviceRequest};
use pitchside_engine::pipeline::Pipeline;

/// `--config` and `--device`, flattened into every command that runs a deployment.
#[derive(clap::Args)]
pub struct DeploymentArgs {
    /// Deployment YAML (default: the embedded configs/default.yaml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// auto | cuda | cuda:N | wgpu | cpu | torch:cuda | torch:cuda:N | torch:mps | torch:cpu
    /// (also PITCHSIDE_DEVICE). A numbered GPU (`cuda:1`) is the one device a run uses,
    /// and a pool's too, in place of the deployment's `devices:`.
    #[arg(long)]
    pub device: Option<DeviceRequest>,
}

pub use pitchside_engine::load::{Resolved, Slots};

impl DeploymentArgs {
    /// Loads `--config` (or the embedded default), reads the environment overrides and
    /// picks the device: `--device` beats `PITCHSIDE_DEVICE`, which beats the deployment's
    /// `device:`.
    pub fn resolve(&self) -> Result<Resolved> {
        Ok(pitchside_engine::load::resolve(
            self.config.as_deref(),
            self.device,
        )?)
    }
}

/// Loads one pipeline on the chosen device, through the engine's one load path.
pub fn load_pipeline(resolved: Resolved) -> Result<Pipeline> {
    resolved
        .load(Slots::One)?
        .into_pipeline()
        .context("one slot loads one pipeline")
}

/// For commands that run a model without a deployment (`detect`, `bench --model`):
/// `--device`, else `PITCHSIDE_DEVICE`, else `auto`; logged once.
pub fn choose_device_without_deployment(cli: Option<DeviceRequest>) -> Result<DeviceId> {
    let env = EnvOverrides::read(&ProcessEnv)?;
    let request = cli.or(env.device).unwrap_or_default();
    Ok(pitchside_engine::load::choose_device(request)?)
}
