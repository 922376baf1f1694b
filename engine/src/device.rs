//! Device selection: which backend runs the models, and why. Knows nothing of
//! deployments: the configuration maps a backend to its profile, not the other way.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A backend Pitchside can run models on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// burn-cuda on NVIDIA GPUs.
    Cuda,
    /// burn-wgpu: Metal on Apple, Vulkan/DX12 elsewhere.
    Wgpu,
    /// The CPU: Pitchside's NHWC executor, with burn-flex for any module it lacks.
    Cpu,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Cuda => "cuda",
            Backend::Wgpu => "wgpu",
            Backend::Cpu => "cpu",
        }
    }

    /// Whether this binary was built with the backend.
    pub fn compiled(self) -> bool {
        match self {
            Backend::Cuda => cfg!(feature = "cuda"),
            Backend::Wgpu => cfg!(feature = "wgpu"),
            Backend::Cpu => cfg!(feature = "cpu"),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// What the user asked for (`--device`, `PITCHSIDE_DEVICE`, or `device:` in YAML).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceRequest {
    #[default]
    Auto,
    Cuda,
    Wgpu,
    Cpu,
}

impl DeviceRequest {
    pub fn parse(s: &str) -> Option<DeviceRequest> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Some(DeviceRequest::Auto),
            "cuda" => Some(DeviceRequest::Cuda),
            "wgpu" => Some(DeviceRequest::Wgpu),
            "cpu" => Some(DeviceRequest::Cpu),
            _ => None,
        }
    }
}

impl std::str::FromStr for DeviceRequest {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DeviceRequest::parse(s).ok_or_else(|| format!("`{s}` is not one of auto, cuda, wgpu, cpu"))
    }
}

/// Which backends this build has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompiledBackends {
    pub cuda: bool,
    pub wgpu: bool,
    pub cpu: bool,
}

impl CompiledBackends {
    pub fn this_build() -> CompiledBackends {
        CompiledBackends {
            cuda: Backend::Cuda.compiled(),
            wgpu: Backend::Wgpu.compiled(),
            cpu: Backend::Cpu.compiled(),
        }
    }

    fn has(&self, b: Backend) -> bool {
        match b {
            Backend::Cuda => self.cuda,
            Backend::Wgpu => self.wgpu,
            Backend::Cpu => self.cpu,
        }
    }

    pub fn list(&self) -> Vec<Backend> {
        [Backend::Cuda, Backend::Wgpu, Backend::Cpu]
            .into_iter()
            .filter(|b| self.has(*b))
            .collect()
    }
}

/// The result of asking a backend for devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeResult {
    /// Devices or adapters found, by name.
    Found(Vec<String>),
    /// None found, and why.
    Missing(String),
}

/// Looks for devices; real probes in production, canned answers in tests.
pub trait DeviceProbe {
    fn probe(&self, backend: Backend) -> ProbeResult;
}

/// The decision and the reason for it, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSelection {
    pub backend: Backend,
    pub reason: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DeviceError {
    #[error(
        "device `{0}` was requested but this binary was built without the `{0}` feature (rebuild with `--features {0}`)"
    )]
    NotCompiled(Backend),
    #[error("device `{backend}` was requested but none is available: {why}")]
    Unavailable { backend: Backend, why: String },
}

/// Picks the backend: an explicit request must be honoured or fail clearly; `auto` takes
/// CUDA, then WGPU, then CPU, each only when compiled in and a device answers.
pub fn select_device(
    request: DeviceRequest,
    compiled: CompiledBackends,
    probe: &dyn DeviceProbe,
) -> Result<DeviceSelection, DeviceError> {
    let explicit = |backend: Backend| -> Result<DeviceSelection, DeviceError> {
        if !compiled.has(backend) {
            return Err(DeviceError::NotCompiled(backend));
        }
        if backend == Backend::Cpu {
            return Ok(DeviceSelection {
                backend,
                reason: "requested explicitly".into(),
            });
        }
        match probe.probe(backend) {
            ProbeResult::Found(names) => Ok(DeviceSelection {
                backend,
                reason: format!("requested explicitly; found {}", names.join(", ")),
            }),
            ProbeResult::Missing(why) => Err(DeviceError::Unavailable { backend, why }),
        }
    };
    match request {
        DeviceRequest::Cuda => explicit(Backend::Cuda),
        DeviceRequest::Wgpu => explicit(Backend::Wgpu),
        DeviceRequest::Cpu => explicit(Backend::Cpu),
        DeviceRequest::Auto => {
            let mut notes = Vec::new();
            for backend in [Backend::Cuda, Backend::Wgpu] {
                if !compiled.has(backend) {
                    notes.push(format!("{backend} not compiled in"));
                    continue;
                }
                match probe.probe(backend) {
                    ProbeResult::Found(names) => {
                        notes.push(format!("{backend} found {}", names.join(", ")));
                        return Ok(DeviceSelection {
                            backend,
                            reason: format!("auto: {}", notes.join("; ")),
                        });
                    }
                    ProbeResult::Missing(why) => notes.push(format!("{backend}: {why}")),
                }
            }
            if !compiled.cpu {
                return Err(DeviceError::NotCompiled(Backend::Cpu));
            }
            Ok(DeviceSelection {
                backend: Backend::Cpu,
                reason: format!("auto: {}; using cpu", notes.join("; ")),
            })
        }
    }
}

/// Probes the machine for real.
pub struct SystemProbe;

impl DeviceProbe for SystemProbe {
    fn probe(&self, backend: Backend) -> ProbeResult {
        match backend {
            Backend::Cuda => probe_cuda(),
            Backend::Wgpu => probe_wgpu(),
            Backend::Cpu => ProbeResult::Found(vec![format!(
                "{} CPU threads",
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            )]),
        }
    }
}

/// Asks the CUDA driver directly ([`pitchside_models::cuda_driver`]), so that a machine
/// without a GPU gets an answer instead of a panic from deep inside a backend.
pub fn probe_cuda() -> ProbeResult {
    match pitchside_models::cuda_driver::device_count() {
        Ok(n) => ProbeResult::Found((0..n).map(|i| format!("cuda:{i}")).collect()),
        Err(why) => ProbeResult::Missing(why),
    }
}

#[cfg(feature = "wgpu")]
pub fn probe_wgpu() -> ProbeResult {
    let instance = wgpu::Instance::default();
    let adapters = pollster_block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    if adapters.is_empty() {
        return ProbeResult::Missing("no WGPU adapter (no Vulkan/Metal/DX12 driver)".into());
    }
    ProbeResult::Found(
        adapters
            .iter()
            .map(|a| {
                let i = a.get_info();
                format!("{} ({:?}, {:?})", i.name, i.backend, i.device_type)
            })
            .collect(),
    )
}

#[cfg(feature = "wgpu")]
fn pollster_block_on<F: std::future::IntoFuture>(f: F) -> F::Output {
    // enumerate_adapters is sync in some wgpu versions and async in others.
    pitchside_models::kernel_cache::block_on(f.into_future())
}

#[cfg(not(feature = "wgpu"))]
pub fn probe_wgpu() -> ProbeResult {
    ProbeResult::Missing("built without the `wgpu` feature".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Canned {
        cuda: bool,
        wgpu: bool,
    }

    impl DeviceProbe for Canned {
        fn probe(&self, b: Backend) -> ProbeResult {
            let ok = match b {
                Backend::Cuda => self.cuda,
                Backend::Wgpu => self.wgpu,
                Backend::Cpu => true,
            };
            if ok {
                ProbeResult::Found(vec![format!("{b}:0")])
            } else {
                ProbeResult::Missing("none".into())
            }
        }
    }

    fn built(cuda: bool, wgpu: bool) -> CompiledBackends {
        CompiledBackends {
            cuda,
            wgpu,
            cpu: true,
        }
    }

    #[test]
    fn auto_prefers_cuda_then_wgpu_then_cpu() {
        let all = Canned {
            cuda: true,
            wgpu: true,
        };
        let pick = |c, w, probe: &Canned| {
            select_device(DeviceRequest::Auto, built(c, w), probe)
                .unwrap()
                .backend
        };
        assert_eq!(pick(true, true, &all), Backend::Cuda);
        assert_eq!(pick(false, true, &all), Backend::Wgpu);
        assert_eq!(pick(false, false, &all), Backend::Cpu);
        let no_gpu = Canned {
            cuda: false,
            wgpu: false,
        };
        let sel = select_device(DeviceRequest::Auto, built(true, true), &no_gpu).unwrap();
        assert_eq!(sel.backend, Backend::Cpu);
        assert!(sel.reason.contains("cuda: none"), "{}", sel.reason);
        let wgpu_only = Canned {
            cuda: false,
            wgpu: true,
        };
        assert_eq!(pick(true, true, &wgpu_only), Backend::Wgpu);
    }

    #[test]
    fn explicit_requests_fail_clearly() {
        let none = Canned {
            cuda: false,
            wgpu: false,
        };
        assert_eq!(
            select_device(DeviceRequest::Cuda, built(false, false), &none),
            Err(DeviceError::NotCompiled(Backend::Cuda))
        );
        let err = select_device(DeviceRequest::Wgpu, built(false, true), &none).unwrap_err();
        assert!(err.to_string().contains("none is available"), "{err}");
        let err = select_device(DeviceRequest::Wgpu, built(false, false), &none).unwrap_err();
        assert!(err.to_string().contains("--features wgpu"), "{err}");
        assert_eq!(
            select_device(DeviceRequest::Cpu, built(false, false), &none)
                .unwrap()
                .backend,
            Backend::Cpu
        );
    }

    #[test]
    fn compiled_backends_list_in_preference_order() {
        assert_eq!(
            built(true, true).list(),
            vec![Backend::Cuda, Backend::Wgpu, Backend::Cpu]
        );
        assert_eq!(built(false, true).list(), vec![Backend::Wgpu, Backend::Cpu]);
        let none = CompiledBackends {
            cuda: false,
            wgpu: false,
            cpu: false,
        };
        assert!(none.list().is_empty());
        assert_eq!(
            select_device(
                DeviceRequest::Auto,
                none,
                &Canned {
                    cuda: true,
                    wgpu: true
                }
            ),
            Err(DeviceError::NotCompiled(Backend::Cpu))
        );
    }

    /// The default build has the CPU backend; `this_build` must say so.
    #[cfg(feature = "cpu")]
    #[test]
    fn this_build_has_the_cpu_backend() {
        assert!(
            CompiledBackends::this_build()
                .list()
                .contains(&Backend::Cpu)
        );
    }

    #[cfg(not(feature = "wgpu"))]
    #[test]
    fn wgpu_probe_without_the_feature_says_why() {
        assert_eq!(
            probe_wgpu(),
            ProbeResult::Missing("built without the `wgpu` feature".into())
        );
    }

    #[test]
    fn requests_parse_case_and_blank_insensitively() {
        assert_eq!(DeviceRequest::parse(" CUDA "), Some(DeviceRequest::Cuda));
        assert_eq!(DeviceRequest::parse("cpu"), Some(DeviceRequest::Cpu));
        assert_eq!(DeviceRequest::parse("gpu"), None);
        assert_eq!("wgpu".parse::<DeviceRequest>(), Ok(DeviceRequest::Wgpu));
    }
}
