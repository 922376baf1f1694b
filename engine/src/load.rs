//! The one load path: a deployment (a YAML file or the embedded default), the environment's
//! overrides and a device request become loaded pipelines. Every front end (`run`, `bench`,
//! `tune`, `serve`, `worker`, the Python package) loads through [`Resolved::load`], which
//! checks the deployment's files and pins its GPU kernel cache before the first device
//! use, whatever the number of pipelines.
//!
//! ```no_run
//! # fn main() -> Result<(), pitchside_engine::load::LoadError> {
//! use pitchside_engine::load::{Slots, resolve};
//! let resolved = resolve(None, None)?; // embedded default, device `auto`
//! let mut pipeline = resolved.load(Slots::One)?.into_pipeline().expect("one slot");
//! let video = pipeline.admit("assets/vtest.avi".as_ref())?;
//! let (response, _stats) = pipeline.run(&video, &Default::default())?;
//! # Ok(()) }
//! ```

use std::path::Path;

use crate::admission::AdmissionError;
use crate::config::{ConfigError, Deployment, EffectiveConfig, EnvOverrides, ProcessEnv};
use crate::device::{
    CompiledBackends, DeviceError, DeviceId, DeviceRequest, SystemProbe, select_device,
};
use crate::pipeline::PipelineError;
use crate::pool::{PipelinePool, PoolError, SlotSpec, plan_slots};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error("kernel_cache of {source_name}: {error}")]
    KernelCache {
        source_name: String,
        error: pitchside_models::kernel_cache::KernelCacheError,
    },
    #[error(transparent)]
    Pool(#[from] PoolError),
    #[error("no working directory: {0}")]
    WorkingDirectory(std::io::Error),
    /// Not loading errors, but what a caller of the doc example above meets next.
    #[error(transparent)]
    Admission(#[from] AdmissionError),
    #[error(transparent)]
    Run(#[from] PipelineError),
}

/// A loaded deployment, the environment overrides read once, and the device chosen for it.
pub struct Resolved {
    pub deployment: Deployment,
    pub env: EnvOverrides,
    /// The device one pipeline runs on (the one asked for, `cuda:1`, else the backend's
    /// first); a pool runs on the deployment's `devices:` where there is no such request.
    pub device: DeviceId,
    /// Whether a numbered device was asked for (it then beats `devices:`).
    pub device_named: bool,
}

/// How many pipelines to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slots {
    /// One, on the chosen device, on the global thread pool (`run`, `bench`, `tune`).
    One,
    /// The deployment's `devices:` (else the chosen device), `pipelines_per_device` each,
    /// CPU slots sharing `cpu_threads` (`serve`, `worker`).
    Deployment,
}

/// Loads `config` (else the embedded configs/default.yaml, its paths relative to the
/// working directory), reads the environment's overrides and picks the device: `device`
/// beats `PITCHSIDE_DEVICE`, which beats the deployment's `device:`.
pub fn resolve(
    config: Option<&Path>,
    device: Option<DeviceRequest>,
) -> Result<Resolved, LoadError> {
    let deployment = match config {
        Some(path) => Deployment::from_file(path)?,
        None => {
            Deployment::embedded(std::env::current_dir().map_err(LoadError::WorkingDirectory)?)?
        }
    };
    let env = EnvOverrides::read(&ProcessEnv)?;
    let request = device.or(env.device).unwrap_or(deployment.file.device);
    let device = choose_device(request)?;
    Ok(Resolved {
        deployment,
        env,
        device,
        device_named: request.device().is_some(),
    })
}

/// The device to run on: `request` (the caller's, else `PITCHSIDE_DEVICE`, else a
/// fallback, in that order), checked against this build and machine; logged once.
pub fn choose_device(request: DeviceRequest) -> Result<DeviceId, DeviceError> {
    let sel = select_device(request, CompiledBackends::this_build(), &SystemProbe)?;
    tracing::info!(device = %sel.device, reason = %sel.reason, "device selected");
    Ok(sel.device)
}

impl Resolved {
    /// The configuration in force: the profile of the chosen device, then the environment.
    pub fn effective(&self) -> Result<EffectiveConfig, LoadError> {
        Ok(self.deployment.effective(self.device.backend, &self.env)?)
    }

    /// The slots `slots` asks for on this machine.
    pub fn slots(&self, slots: Slots) -> Result<Vec<SlotSpec>, LoadError> {
        Ok(match slots {
            Slots::One => vec![SlotSpec {
                device: self.device,
                ordinal: 0,
                threads: None,
            }],
            Slots::Deployment => {
                let cores = std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1);
                if self.device_named && self.deployment.file.devices.is_some() {
                    tracing::info!(
                        device = %self.device,
                        "one device was asked for: the deployment's `devices:` is not used"
                    );
                }
                plan_slots(
                    self.deployment
                        .file
                        .devices
                        .as_ref()
                        .filter(|_| !self.device_named),
                    self.device,
                    &self.effective()?.profile,
                    &SystemProbe,
                    cores,
                )?
            }
        })
    }

    /// Checks the deployment's files, pins the deployment's GPU kernel cache (before the
    /// first device use: cubecl reads its configuration once) and loads a pipeline per
    /// slot.
    pub fn load(self, slots: Slots) -> Result<PipelinePool, LoadError> {
        let effective = self.effective()?;
        self.deployment.check_files()?;
        let slots = self.slots(slots)?;
        let root = self.deployment.kernel_cache_root();
        for device in cache_devices(&slots, effective.profile.half) {
            pitchside_models::kernel_cache::pin(root.as_deref(), device).map_err(|error| {
                LoadError::KernelCache {
                    source_name: self.deployment.source.to_string(),
                    error,
                }
            })?;
        }
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

/// The model devices whose kernels the kernel cache holds, one per backend the slots use
/// (the cache is per process and per GPU model: the first one pins it).
fn cache_devices(slots: &[SlotSpec], half: bool) -> Vec<pitchside_models::ModelDevice> {
    let mut out: Vec<pitchside_models::ModelDevice> = Vec::new();
    for s in slots {
        let d = s.device.model_device(half);
        if d.uses_kernel_cache() && out.is_empty() {
            out.push(d);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::Backend;

    fn slot(backend: Backend, index: usize) -> SlotSpec {
        SlotSpec {
            device: DeviceId::new(backend, index),
            ordinal: 0,
            threads: None,
        }
    }

    #[test]
    fn every_gpu_load_pins_the_kernel_cache_and_no_cpu_load_does() {
        use pitchside_models::ModelDevice;
        // A pool (serve, worker) pins as a single pipeline does: its first GPU slot.
        assert_eq!(
            cache_devices(&[slot(Backend::Cuda, 0), slot(Backend::Cuda, 1)], true),
            vec![ModelDevice::Cuda {
                half: true,
                index: 0
            }]
        );
        assert_eq!(
            cache_devices(&[slot(Backend::Wgpu, 0)], false),
            vec![ModelDevice::Wgpu]
        );
        // CPU slots, bf16 ones included, have no kernels to cache.
        assert!(cache_devices(&[slot(Backend::Cpu, 0), slot(Backend::Cpu, 0)], true).is_empty());
        assert!(cache_devices(&[slot(Backend::Cpu, 0)], false).is_empty());
    }
}
