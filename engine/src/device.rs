//! Devices, in one place: the backends ([`Backend`]), a device of one ([`DeviceId`],
//! `cuda:1`), what a deployment asks for ([`DeviceRequest`], `auto` included), the probe
//! that finds them and why a backend was chosen, and the one mapping to where a model runs
//! ([`DeviceId::model_device`]). Knows nothing of deployments: the configuration maps a
//! backend to its profile, not the other way.

use std::fmt;

use pitchside_models::ModelDevice;
use serde::{Deserialize, Serialize, Serializer};

/// A backend Pitchside can run models on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Backend {
    /// burn-cuda on NVIDIA GPUs.
    #[serde(rename = "cuda")]
    Cuda,
    /// burn-wgpu: Metal on Apple, Vulkan/DX12 elsewhere.
    #[serde(rename = "wgpu")]
    Wgpu,
    /// The CPU: Pitchside's NHWC executor, with burn-flex for any module it lacks.
    #[serde(rename = "cpu")]
    Cpu,
    /// LibTorch (burn-tch) on NVIDIA GPUs: cuDNN and cuBLAS (`torch` feature).
    #[serde(rename = "torch:cuda")]
    TorchCuda,
    /// LibTorch on Apple GPUs (MPS).
    #[serde(rename = "torch:mps")]
    TorchMps,
    /// LibTorch on the CPU.
    #[serde(rename = "torch:cpu")]
    TorchCpu,
}

impl Backend {
    /// Every backend, in `auto`'s order of preference: PyTorch's GPU kernels before
    /// Burn's (cuDNN is faster than Burn's CUDA convolutions, and needs no autotune), and
    /// the NHWC executor, not LibTorch, on the CPU.
    pub const ALL: [Backend; 6] = [
        Backend::TorchCuda,
        Backend::Cuda,
        Backend::TorchMps,
        Backend::Wgpu,
        Backend::Cpu,
        Backend::TorchCpu,
    ];

    /// The backend of this name (`cuda`, `torch:cpu`; lower case, as `as_str` writes it).
    pub fn named(name: &str) -> Option<Backend> {
        Backend::ALL.into_iter().find(|b| b.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Cuda => "cuda",
            Backend::Wgpu => "wgpu",
            Backend::Cpu => "cpu",
            Backend::TorchCuda => "torch:cuda",
            Backend::TorchMps => "torch:mps",
            Backend::TorchCpu => "torch:cpu",
        }
    }

    /// The cargo feature that compiles the backend in.
    pub fn feature(self) -> &'static str {
        match self {
            Backend::Cuda => "cuda",
            Backend::Wgpu => "wgpu",
            Backend::Cpu => "cpu",
            Backend::TorchCuda | Backend::TorchMps | Backend::TorchCpu => "torch",
        }
    }

    /// Whether this binary was built with the backend.
    pub fn compiled(self) -> bool {
        match self {
            Backend::Cuda => cfg!(feature = "cuda"),
            Backend::Wgpu => cfg!(feature = "wgpu"),
            Backend::Cpu => cfg!(feature = "cpu"),
            Backend::TorchCuda | Backend::TorchMps | Backend::TorchCpu => cfg!(feature = "torch"),
        }
    }

    /// Whether the backend runs on the CPU (its pipelines share the CPU's threads).
    pub fn is_cpu(self) -> bool {
        matches!(self, Backend::Cpu | Backend::TorchCpu)
    }

    /// Whether the backend's devices are NVIDIA GPUs, numbered `cuda:N` / `torch:cuda:N`.
    pub fn is_cuda(self) -> bool {
        matches!(self, Backend::Cuda | Backend::TorchCuda)
    }

    /// Whether the backend has one device only (index 0).
    pub fn single_device(self) -> bool {
        !self.is_cuda()
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// What the user asked for (`--device`, `PITCHSIDE_DEVICE`, or `device:` in YAML): `auto`,
/// a backend (`cuda`, `torch:cpu`: its first device, or every device a pool's
/// `devices: auto` finds), or one numbered GPU (`cuda:1`, `torch:cuda:1`), which a single
/// pipeline and a pool without `devices:` run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceRequest {
    #[default]
    Auto,
    Backend(Backend),
    Device(DeviceId),
}

/// The names `--device` and `device:` take, for messages.
pub const DEVICE_NAMES: &str =
    "auto, cuda, cuda:N, wgpu, cpu, torch:cuda, torch:cuda:N, torch:mps, torch:cpu";

impl DeviceRequest {
    /// The backend asked for; `None` for `auto`.
    pub fn backend(self) -> Option<Backend> {
        match self {
            DeviceRequest::Auto => None,
            DeviceRequest::Backend(b) => Some(b),
            DeviceRequest::Device(id) => Some(id.backend),
        }
    }

    /// The numbered device asked for, if one was.
    pub fn device(self) -> Option<DeviceId> {
        match self {
            DeviceRequest::Device(id) => Some(id),
            _ => None,
        }
    }

    /// `auto`, a backend's name, or a device (`cuda:1`; `cuda:0` is kept as written, not
    /// read as `cuda`, so that it is said back as it was asked).
    pub fn parse(s: &str) -> Option<DeviceRequest> {
        let t = s.trim().to_ascii_lowercase();
        if t == "auto" {
            return Some(DeviceRequest::Auto);
        }
        if let Some(b) = Backend::named(&t) {
            return Some(DeviceRequest::Backend(b));
        }
        DeviceId::parse(&t).ok().map(DeviceRequest::Device)
    }
}

impl std::str::FromStr for DeviceRequest {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DeviceRequest::parse(s).ok_or_else(|| {
            // A known name with a bad index says what is wrong with it (`cpu:1`, `cuda:x`).
            let t = s.trim().to_ascii_lowercase();
            let named = t
                .rsplit_once(':')
                .is_some_and(|(n, _)| Backend::named(n).is_some());
            match DeviceId::parse(&t) {
                Err(why) if named => why,
                _ => format!("`{s}` is not one of {DEVICE_NAMES}"),
            }
        })
    }
}

impl fmt::Display for DeviceRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceRequest::Auto => f.pad("auto"),
            DeviceRequest::Backend(b) => f.pad(b.as_str()),
            DeviceRequest::Device(id) => f.pad(&format!("{}:{}", id.backend, id.index)),
        }
    }
}

impl Serialize for DeviceRequest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DeviceRequest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Name;
        impl serde::de::Visitor<'_> for Name {
            type Value = DeviceRequest;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a single name")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<DeviceRequest, E> {
                s.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(Name)
    }
}

/// Which backends this build has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompiledBackends {
    pub cuda: bool,
    pub wgpu: bool,
    pub cpu: bool,
    /// LibTorch: `torch:cuda`, `torch:mps`, `torch:cpu`.
    pub torch: bool,
}

impl CompiledBackends {
    pub fn this_build() -> CompiledBackends {
        CompiledBackends {
            cuda: Backend::Cuda.compiled(),
            wgpu: Backend::Wgpu.compiled(),
            cpu: Backend::Cpu.compiled(),
            torch: Backend::TorchCpu.compiled(),
        }
    }

    pub fn has(&self, b: Backend) -> bool {
        match b {
            Backend::Cuda => self.cuda,
            Backend::Wgpu => self.wgpu,
            Backend::Cpu => self.cpu,
            Backend::TorchCuda | Backend::TorchMps | Backend::TorchCpu => self.torch,
        }
    }

    /// The backends compiled in, in `auto`'s order of preference.
    pub fn list(&self) -> Vec<Backend> {
        Backend::ALL.into_iter().filter(|b| self.has(*b)).collect()
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
    /// The device a single pipeline runs on: the one asked for (`cuda:1`), else the first.
    pub device: DeviceId,
    pub reason: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DeviceError {
    #[error(
        "device `{0}` was requested but this binary was built without the `{feature}` feature (rebuild with `--features {feature}`)",
        feature = .0.feature()
    )]
    NotCompiled(Backend),
    #[error("device `{backend}` was requested but none is available: {why}")]
    Unavailable { backend: Backend, why: String },
    #[error(
        "device `{device}` was requested but there are {} {} device(s): {}",
        found.len(),
        device.backend,
        found.join(", ")
    )]
    NoSuchDevice {
        device: DeviceId,
        found: Vec<String>,
    },
}

/// Picks the backend: an explicit request must be honoured or fail clearly; `auto` takes
/// the first of [`Backend::ALL`]'s GPUs (LibTorch's CUDA, Burn's CUDA, LibTorch's MPS,
/// WGPU) that is compiled in and answers, else the CPU executor.
pub fn select_device(
    request: DeviceRequest,
    compiled: CompiledBackends,
    probe: &dyn DeviceProbe,
) -> Result<DeviceSelection, DeviceError> {
    let chosen = |backend: Backend, reason: String| DeviceSelection {
        backend,
        device: request
            .device()
            .unwrap_or_else(|| DeviceId::new(backend, 0)),
        reason,
    };
    let explicit = |backend: Backend| -> Result<DeviceSelection, DeviceError> {
        if !compiled.has(backend) {
            return Err(DeviceError::NotCompiled(backend));
        }
        if backend == Backend::Cpu {
            // The NHWC executor needs nothing beyond the binary.
            return Ok(chosen(backend, "requested explicitly".into()));
        }
        match probe.probe(backend) {
            ProbeResult::Found(names) => {
                // A numbered GPU must be one the driver has: said here, before any load.
                if let Some(id) = request.device()
                    && id.index >= names.len()
                {
                    return Err(DeviceError::NoSuchDevice {
                        device: id,
                        found: names,
                    });
                }
                Ok(chosen(
                    backend,
                    format!("requested explicitly; found {}", names.join(", ")),
                ))
            }
            ProbeResult::Missing(why) => Err(DeviceError::Unavailable { backend, why }),
        }
    };
    match request.backend() {
        Some(b) => explicit(b),
        None => {
            let mut notes = Vec::new();
            let gpus = Backend::ALL.into_iter().filter(|b| !b.is_cpu());
            for backend in gpus {
                if !compiled.has(backend) {
                    notes.push(format!("{backend} not compiled in"));
                    continue;
                }
                match probe.probe(backend) {
                    ProbeResult::Found(names) => {
                        notes.push(format!("{backend} found {}", names.join(", ")));
                        return Ok(chosen(backend, format!("auto: {}", notes.join("; "))));
                    }
                    ProbeResult::Missing(why) => notes.push(format!("{backend}: {why}")),
                }
            }
            if !compiled.cpu {
                return Err(DeviceError::NotCompiled(Backend::Cpu));
            }
            Ok(chosen(
                Backend::Cpu,
                format!("auto: {}; using cpu", notes.join("; ")),
            ))
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
            Backend::TorchCuda => probe_torch(pitchside_models::TorchDevice::Cuda(0)),
            Backend::TorchMps => probe_torch(pitchside_models::TorchDevice::Mps),
            Backend::TorchCpu => probe_torch(pitchside_models::TorchDevice::Cpu),
        }
    }
}

/// Asks LibTorch itself (after checking it is the version Pitchside was built against).
#[cfg(feature = "torch")]
pub fn probe_torch(device: pitchside_models::TorchDevice) -> ProbeResult {
    match pitchside_models::torch::probe(device) {
        Ok(names) => ProbeResult::Found(names),
        Err(why) => ProbeResult::Missing(why),
    }
}

#[cfg(not(feature = "torch"))]
pub fn probe_torch(_: pitchside_models::TorchDevice) -> ProbeResult {
    ProbeResult::Missing("built without the `torch` feature".into())
}

/// Asks the CUDA driver directly ([`pitchside_models::cuda_driver`]), so that a machine
/// without a GPU gets an answer instead of a panic from deep inside a backend.
pub fn probe_cuda() -> ProbeResult {
    match pitchside_models::cuda_driver::device_count() {
        Ok(n) => ProbeResult::Found((0..n).map(|i| format!("cuda:{i}")).collect()),
        Err(why) => ProbeResult::Missing(why),
    }
}

/// Asks wgpu directly ([`pitchside_models::wgpu_adapter`]).
pub fn probe_wgpu() -> ProbeResult {
    match pitchside_models::wgpu_adapter::adapters() {
        Ok(found) if found.is_empty() => {
            ProbeResult::Missing("no WGPU adapter (no Vulkan/Metal/DX12 driver)".into())
        }
        Ok(found) => ProbeResult::Found(found),
        Err(why) => ProbeResult::Missing(why),
    }
}

impl Backend {
    /// The model device for this backend's first device; `half` applies where the backend
    /// supports it (CUDA fp16; LibTorch f16; bf16 operands on the CPU, where it has
    /// AVX512_BF16).
    pub fn model_device(self, half: bool) -> ModelDevice {
        DeviceId::new(self, 0).model_device(half)
    }
}

/// One device: a backend and its index (`cuda:1`; `cpu` is `cpu:0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeviceId {
    pub backend: Backend,
    pub index: usize,
}

impl DeviceId {
    pub fn new(backend: Backend, index: usize) -> DeviceId {
        DeviceId { backend, index }
    }

    /// The models crate's device for this one: the one mapping from the engine's devices
    /// to where a model runs. `half` as [`Backend::model_device`].
    pub fn model_device(self, half: bool) -> ModelDevice {
        use pitchside_models::TorchDevice;
        let torch = |device| ModelDevice::Torch { device, half };
        match self.backend {
            Backend::Cuda => ModelDevice::Cuda {
                half,
                index: self.index,
            },
            Backend::Wgpu => ModelDevice::Wgpu,
            Backend::Cpu if half => ModelDevice::CpuBf16,
            Backend::Cpu => ModelDevice::Cpu,
            Backend::TorchCuda => torch(TorchDevice::Cuda(self.index)),
            Backend::TorchMps => torch(TorchDevice::Mps),
            Backend::TorchCpu => torch(TorchDevice::Cpu),
        }
    }

    /// Parses `cuda:0`, `cuda` (= `cuda:0`), `wgpu`, `cpu`, and LibTorch's `torch:cuda:N`,
    /// `torch:cuda`, `torch:mps`, `torch:cpu`.
    pub fn parse(s: &str) -> Result<DeviceId, String> {
        let s = s.trim().to_ascii_lowercase();
        // `torch:cpu` is a name; `cuda:1` and `torch:cuda:1` are a name and an index.
        let (backend, index) = match (Backend::named(&s), s.rsplit_once(':')) {
            (Some(b), _) => (Some(b), 0),
            (None, Some((n, i))) if Backend::named(n).is_some() => {
                let index = i.parse::<usize>().map_err(|_| {
                    format!("`{s}`: the index after `:` must be a number, e.g. {n}:0")
                })?;
                (Backend::named(n), index)
            }
            _ => (None, 0),
        };
        let backend = backend.ok_or_else(|| {
            format!(
                "`{s}` is not a device: write cuda:N, wgpu, cpu, torch:cuda:N, torch:mps or \
                 torch:cpu (or `devices: auto`)"
            )
        })?;
        if backend.is_cpu() && index != 0 {
            return Err(format!(
                "`{s}`: there is one CPU device, `{backend}`; for several CPU pipelines set \
                 pipelines_per_device in the profile"
            ));
        }
        if !backend.is_cuda() && index != 0 {
            return Err(format!(
                "`{s}`: {backend} runs on its default device only; write `{backend}`"
            ));
        }
        Ok(DeviceId { backend, index })
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.backend.single_device() {
            f.pad(self.backend.as_str())
        } else {
            write!(f, "{}:{}", self.backend, self.index)
        }
    }
}

impl Serialize for DeviceId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Canned {
        cuda: bool,
        wgpu: bool,
    }

    impl DeviceProbe for Canned {
        /// LibTorch finds what the drivers offer: CUDA where `cuda`, no MPS here.
        fn probe(&self, b: Backend) -> ProbeResult {
            let ok = match b {
                Backend::Cuda | Backend::TorchCuda => self.cuda,
                Backend::Wgpu => self.wgpu,
                Backend::TorchMps => false,
                Backend::Cpu | Backend::TorchCpu => true,
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
            torch: false,
        }
    }

    fn with_torch(mut c: CompiledBackends) -> CompiledBackends {
        c.torch = true;
        c
    }

    #[test]
    fn auto_prefers_libtorch_on_gpus_and_the_nhwc_executor_on_the_cpu() {
        let gpu = Canned {
            cuda: true,
            wgpu: true,
        };
        let pick = |c: CompiledBackends, probe: &Canned| {
            select_device(DeviceRequest::Auto, c, probe)
                .unwrap()
                .backend
        };
        assert_eq!(
            pick(with_torch(built(true, true)), &gpu),
            Backend::TorchCuda
        );
        assert_eq!(
            pick(with_torch(built(false, false)), &gpu),
            Backend::TorchCuda
        );
        // No CUDA, no MPS: WGPU before LibTorch's CPU, and the CPU executor before it too.
        let no_cuda = Canned {
            cuda: false,
            wgpu: true,
        };
        assert_eq!(pick(with_torch(built(true, true)), &no_cuda), Backend::Wgpu);
        let nothing = Canned {
            cuda: false,
            wgpu: false,
        };
        let sel = select_device(
            DeviceRequest::Auto,
            with_torch(built(false, false)),
            &nothing,
        )
        .unwrap();
        assert_eq!(sel.backend, Backend::Cpu);
        assert!(sel.reason.contains("torch:cuda: none"), "{}", sel.reason);
    }

    #[test]
    fn torch_devices_need_the_feature_and_a_device() {
        let none = Canned {
            cuda: false,
            wgpu: false,
        };
        let err = select_device(
            DeviceRequest::Backend(Backend::TorchCuda),
            built(true, true),
            &none,
        )
        .unwrap_err();
        assert_eq!(err, DeviceError::NotCompiled(Backend::TorchCuda));
        assert!(err.to_string().contains("--features torch"), "{err}");
        let err = select_device(
            DeviceRequest::Backend(Backend::TorchCuda),
            with_torch(built(false, false)),
            &none,
        )
        .unwrap_err();
        assert!(err.to_string().contains("`torch:cuda`"), "{err}");
        let sel = select_device(
            DeviceRequest::Backend(Backend::TorchCpu),
            with_torch(built(false, false)),
            &none,
        )
        .unwrap();
        assert_eq!(sel.backend, Backend::TorchCpu);
        let err = select_device(
            DeviceRequest::Backend(Backend::TorchMps),
            with_torch(built(false, false)),
            &none,
        )
        .unwrap_err();
        assert!(err.to_string().contains("none is available"), "{err}");
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
            select_device(
                DeviceRequest::Backend(Backend::Cuda),
                built(false, false),
                &none
            ),
            Err(DeviceError::NotCompiled(Backend::Cuda))
        );
        let err = select_device(
            DeviceRequest::Backend(Backend::Wgpu),
            built(false, true),
            &none,
        )
        .unwrap_err();
        assert!(err.to_string().contains("none is available"), "{err}");
        let err = select_device(
            DeviceRequest::Backend(Backend::Wgpu),
            built(false, false),
            &none,
        )
        .unwrap_err();
        assert!(err.to_string().contains("--features wgpu"), "{err}");
        assert_eq!(
            select_device(
                DeviceRequest::Backend(Backend::Cpu),
                built(false, false),
                &none
            )
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
        assert_eq!(
            with_torch(built(false, false)).list(),
            vec![
                Backend::TorchCuda,
                Backend::TorchMps,
                Backend::Cpu,
                Backend::TorchCpu
            ]
        );
        let none = CompiledBackends {
            cuda: false,
            wgpu: false,
            cpu: false,
            torch: false,
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

    /// `n` CUDA GPUs, as the driver numbers them.
    struct Gpus(usize);

    impl DeviceProbe for Gpus {
        fn probe(&self, b: Backend) -> ProbeResult {
            match b {
                Backend::Cuda | Backend::TorchCuda if self.0 > 0 => {
                    ProbeResult::Found((0..self.0).map(|i| format!("{b}:{i}")).collect())
                }
                Backend::Cpu => ProbeResult::Found(vec!["2 CPU threads".into()]),
                _ => ProbeResult::Missing("none".into()),
            }
        }
    }

    #[test]
    fn a_numbered_gpu_is_selected_when_the_driver_has_it() {
        let c = with_torch(built(true, false));
        let ask = |s: &str| s.parse::<DeviceRequest>().unwrap();
        let sel = select_device(ask("cuda:1"), c, &Gpus(2)).unwrap();
        assert_eq!(sel.device, DeviceId::new(Backend::Cuda, 1));
        assert_eq!(sel.backend, Backend::Cuda);
        let sel = select_device(ask("torch:cuda:1"), c, &Gpus(2)).unwrap();
        assert_eq!(sel.device, DeviceId::new(Backend::TorchCuda, 1));
        // A backend alone is its first device; `auto` too.
        let sel = select_device(ask("torch:cuda"), c, &Gpus(2)).unwrap();
        assert_eq!(sel.device, DeviceId::new(Backend::TorchCuda, 0));
        let sel = select_device(DeviceRequest::Auto, c, &Gpus(2)).unwrap();
        assert_eq!(sel.device, DeviceId::new(Backend::TorchCuda, 0));
        // One the driver does not have is refused before anything loads, naming those it has.
        let err = select_device(ask("cuda:2"), c, &Gpus(2)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "device `cuda:2` was requested but there are 2 cuda device(s): cuda:0, cuda:1"
        );
        let err = select_device(ask("cuda:0"), c, &Gpus(0)).unwrap_err();
        assert!(matches!(err, DeviceError::Unavailable { .. }), "{err}");
        let err = select_device(ask("cuda:1"), built(false, false), &Gpus(2)).unwrap_err();
        assert_eq!(err, DeviceError::NotCompiled(Backend::Cuda));
    }

    #[test]
    fn numbered_requests_parse_and_bad_indexes_say_why() {
        let id = |b, i| DeviceRequest::Device(DeviceId::new(b, i));
        assert_eq!("cuda:1".parse(), Ok(id(Backend::Cuda, 1)));
        assert_eq!(" Torch:CUDA:3 ".parse(), Ok(id(Backend::TorchCuda, 3)));
        // Said back as asked: `cuda:0` is not turned into `cuda`, nor the reverse.
        assert_eq!(id(Backend::Cuda, 0).to_string(), "cuda:0");
        assert_eq!(DeviceRequest::Backend(Backend::Cuda).to_string(), "cuda");
        let r: DeviceRequest = serde_yaml_ng::from_str("torch:cuda:1").unwrap();
        assert_eq!(serde_yaml_ng::to_string(&r).unwrap().trim(), "torch:cuda:1");
        let err = "cpu:1".parse::<DeviceRequest>().unwrap_err();
        assert!(err.contains("one CPU device"), "{err}");
        let err = "wgpu:1".parse::<DeviceRequest>().unwrap_err();
        assert!(err.contains("default device only"), "{err}");
        let err = "cuda:x".parse::<DeviceRequest>().unwrap_err();
        assert!(err.contains("must be a number"), "{err}");
        let err = "gpu:0".parse::<DeviceRequest>().unwrap_err();
        assert!(err.contains("not one of auto, cuda, cuda:N"), "{err}");
    }

    #[test]
    fn requests_parse_case_and_blank_insensitively() {
        assert_eq!(
            DeviceRequest::parse(" CUDA "),
            Some(DeviceRequest::Backend(Backend::Cuda))
        );
        assert_eq!(
            DeviceRequest::parse("cpu"),
            Some(DeviceRequest::Backend(Backend::Cpu))
        );
        assert_eq!(DeviceRequest::parse("gpu"), None);
        assert_eq!(
            "wgpu".parse::<DeviceRequest>(),
            Ok(DeviceRequest::Backend(Backend::Wgpu))
        );
        assert_eq!(
            DeviceRequest::parse("Torch:CUDA"),
            Some(DeviceRequest::Backend(Backend::TorchCuda))
        );
        assert_eq!(
            DeviceRequest::parse("torch:cpu"),
            Some(DeviceRequest::Backend(Backend::TorchCpu))
        );
        assert_eq!(DeviceRequest::parse("torch"), None);
        let err = "torch:gpu".parse::<DeviceRequest>().unwrap_err();
        assert!(err.contains("torch:mps"), "{err}");
        // YAML's `device:` reads the same names, and writes them back as they are.
        let r: DeviceRequest = serde_yaml_ng::from_str("torch:mps").unwrap();
        assert_eq!(r, DeviceRequest::Backend(Backend::TorchMps));
        assert_eq!(serde_yaml_ng::to_string(&r).unwrap().trim(), "torch:mps");
        assert!(serde_yaml_ng::from_str::<DeviceRequest>("gpu").is_err());
    }
}
