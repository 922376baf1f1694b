//! Pitchside's core engine: configuration, devices, video, pipeline, plugin host, service.

pub mod config;
pub mod device;

pub use config::{Deployment, EffectiveConfig, EnvOverrides};
pub use device::{Backend, DeviceRequest};
pub mod media;

pub use pitchside_models::ModelDevice;

/// The model device for a backend; `half` applies where the backend supports it (CUDA).
pub fn model_device(backend: Backend, half: bool) -> ModelDevice {
    match backend {
        Backend::Cuda => ModelDevice::Cuda { half },
        Backend::Wgpu => ModelDevice::Wgpu,
        Backend::Cpu => ModelDevice::Cpu,
    }
}
pub mod pipeline;
pub mod plugin_host;
pub mod service;
pub mod video;

#[cfg(test)]
mod test_support;
