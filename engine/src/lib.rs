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
pub use device::{Backend, DeviceId, DeviceRequest};
pub mod media;

pub use pitchside_models::ModelDevice;
pub mod pipeline;
pub mod plugin_host;
pub mod pool;
pub mod registry;
pub mod response;
pub mod video;

#[cfg(test)]
mod test_support;
