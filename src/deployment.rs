//! What the commands share: the deployment (`--config`, `--device`, environment overrides)
//! and the one place a device is chosen and logged.

use std::path::PathBuf;

use anyhow::{Context, Result};
use pitchside_engine::config::{Deployment, EffectiveConfig, EnvOverrides, ProcessEnv};
use pitchside_engine::device::{
    Backend, CompiledBackends, DeviceRequest, SystemProbe, select_device,
};
use pitchside_engine::pipeline::Pipeline;
use pitchside_engine::pool::{PipelinePool, plan_slots};

/// `--config` and `--device`, flattened into every command that runs a deployment.
#[derive(clap::Args)]
pub struct DeploymentArgs {
    /// Deployment YAML (default: the embedded configs/default.yaml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// auto | cuda | wgpu | cpu | torch:cuda | torch:mps | torch:cpu (also PITCHSIDE_DEVICE).
    #[arg(long)]
    pub device: Option<DeviceRequest>,
}

/// A loaded deployment, the environment overrides read once, and the device chosen for it.
pub struct Resolved {
    pub deployment: Deployment,
    pub env: EnvOverrides,
    pub backend: Backend,
}

impl DeploymentArgs {
    /// Loads `--config` (or the embedded default), reads the environment overrides and
    /// picks the device: `--device` beats `PITCHSIDE_DEVICE`, which beats the deployment's
    /// `device:`.
    pub fn resolve(&self) -> Result<Resolved> {
        let deployment = match &self.config {
            Some(path) => Deployment::from_file(path)?,
            None => Deployment::embedded(std::env::current_dir().context("no working directory")?)?,
        };
        let env = EnvOverrides::read(&ProcessEnv)?;
        let backend = choose_backend(self.device, &env, deployment.file.device)?;
        Ok(Resolved {
            deployment,
            env,
            backend,
        })
    }
}

impl Resolved {
    /// The configuration in force: the profile of the chosen device, then the environment.
    pub fn effective(&self) -> Result<EffectiveConfig> {
        Ok(self.deployment.effective(self.backend, &self.env)?)
    }

    /// Checks the deployment's files, pins the GPU kernel cache and loads its models into a
    /// pipeline.
    pub fn into_pipeline(self) -> Result<Pipeline> {
        let effective = self.effective()?;
        self.deployment.check_files()?;
        // Before the first device use: cubecl reads its configuration once.
        pitchside_models::kernel_cache::pin(
            self.deployment.kernel_cache_root().as_deref(),
            pitchside_engine::model_device(self.backend, effective.profile.half),
        )
        .with_context(|| format!("kernel_cache of {}", self.deployment.source))?;
        tracing::info!(
            profile = %effective.profile_name,
            batch = effective.profile.batch_size,
            stride = effective.profile.frame_stride,
            "loading models"
        );
        Ok(Pipeline::load(self.deployment, effective, self.backend)?)
    }

    /// Checks the deployment's files and loads a pipeline per slot: the devices of
    /// `devices:` (else the selected one), `pipelines_per_device` each, CPU slots sharing
    /// `cpu_threads`.
    pub fn into_pool(self) -> Result<PipelinePool> {
        let effective = self.effective()?;
        self.deployment.check_files()?;
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let slots = plan_slots(
            self.deployment.file.devices.as_ref(),
            self.backend,
            &effective.profile,
            &SystemProbe,
            cores,
        )?;
        tracing::info!(
            profile = %effective.profile_name,
            batch = effective.profile.batch_size,
            stride = effective.profile.frame_stride,
            pipelines = slots.len(),
            "loading models"
        );
        Ok(PipelinePool::load(&self.deployment, &effective, slots)?)
    }
}

/// The device to run on: `cli`, else `PITCHSIDE_DEVICE`, else `fallback`; logged once.
pub fn choose_backend(
    cli: Option<DeviceRequest>,
    env: &EnvOverrides,
    fallback: DeviceRequest,
) -> Result<Backend> {
    let request = cli.or(env.device).unwrap_or(fallback);
    let sel = select_device(request, CompiledBackends::this_build(), &SystemProbe)?;
    tracing::info!(device = %sel.backend, reason = %sel.reason, "device selected");
    Ok(sel.backend)
}

/// For commands that run a model without a deployment (`detect`, `bench --model`):
/// `--device`, else `PITCHSIDE_DEVICE`, else `auto`.
pub fn choose_backend_without_deployment(cli: Option<DeviceRequest>) -> Result<Backend> {
    let env = EnvOverrides::read(&ProcessEnv)?;
    choose_backend(cli, &env, DeviceRequest::default())
}
