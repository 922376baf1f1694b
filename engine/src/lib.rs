//! Pitchside's core engine: configuration, devices, video, images, the pipeline and its pool
//! (one pipeline per device or CPU share, `pool`), the plugin host and the Score Vision
//! response (`response`: its types, serialisation and rounding).
//! The miner service (HTTP, downloads, validator signatures) is the `pitchside-service`
//! crate, built on this one; nothing here depends on it.

pub mod admission;
pub mod config;
pub mod device;
pub mod files;
pub mod load;

pub use config::{Deployment, EffectiveConfig, EnvOverrides};
pub use device::{Backend, DeviceRequest};
pub mod media;

pub use pitchside_models::ModelDevice;

/// The model device for a backend; `half` applies where the backend supports it (CUDA
/// fp16; bf16 operands on the CPU, where it has AVX512_BF16).
pub fn model_device(backend: Backend, half: bool) -> ModelDevice {
    model_device_on(backend, half, 0)
}

/// The model device for the `index`-th device of a backend (`cuda:N`, `torch:cuda:N`;
/// the others have one). LibTorch's `half` is f16 on every device.
pub fn model_device_on(backend: Backend, half: bool, index: usize) -> ModelDevice {
    use pitchside_models::TorchDevice;
    let torch = |device| ModelDevice::Torch { device, half };
    match backend {
        Backend::Cuda => ModelDevice::Cuda { half, index },
        Backend::Wgpu => ModelDevice::Wgpu,
        Backend::Cpu if half => ModelDevice::CpuBf16,
        Backend::Cpu => ModelDevice::Cpu,
        Backend::TorchCuda => torch(TorchDevice::Cuda(index)),
        Backend::TorchMps => torch(TorchDevice::Mps),
        Backend::TorchCpu => torch(TorchDevice::Cpu),
    }
}
pub mod pipeline;
pub mod plugin_host;
pub mod pool;
pub mod registry;
pub mod response;
pub mod video;

#[cfg(test)]
mod test_support;
