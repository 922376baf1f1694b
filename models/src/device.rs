//! Where a model runs: the device and precision the engine asks for. Its own module so that
//! the runtime (which compiles networks for it) and the kernel cache (which is keyed by it)
//! both depend on it, not on each other.

/// Where a model runs in production.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelDevice {
    /// The CPU: Pitchside's NHWC executor ([`crate::nhwc`]); burn-flex where the executor
    /// cannot run the plan.
    Cpu,
    /// The CPU executor with bf16 operands (f32 accumulation) in its convolutions where the
    /// CPU has AVX512_BF16, f32 elsewhere: the profile's `half: true` on the CPU.
    CpuBf16,
    Wgpu,
    Cuda {
        half: bool,
        /// Which GPU (`cuda:N`).
        index: usize,
    },
    /// LibTorch through burn-tch (`torch` feature): PyTorch's own kernels (cuDNN, cuBLAS,
    /// MPS); `half` runs f16.
    Torch {
        device: TorchDevice,
        half: bool,
    },
}

/// Where LibTorch runs a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TorchDevice {
    Cpu,
    /// `torch:cuda:N`.
    Cuda(usize),
    /// Apple's Metal Performance Shaders.
    Mps,
}

impl ModelDevice {
    pub fn name(&self) -> &'static str {
        match self {
            ModelDevice::Cpu => "cpu",
            ModelDevice::CpuBf16 => "cpu bf16",
            ModelDevice::Wgpu => "wgpu",
            ModelDevice::Cuda { half: false, .. } => "cuda fp32",
            ModelDevice::Cuda { half: true, .. } => "cuda fp16",
            ModelDevice::Torch { device, half } => match (device, half) {
                (TorchDevice::Cpu, false) => "torch:cpu fp32",
                (TorchDevice::Cpu, true) => "torch:cpu fp16",
                (TorchDevice::Cuda(_), false) => "torch:cuda fp32",
                (TorchDevice::Cuda(_), true) => "torch:cuda fp16",
                (TorchDevice::Mps, false) => "torch:mps fp32",
                (TorchDevice::Mps, true) => "torch:mps fp16",
            },
        }
    }

    /// Whether models on this device run cubecl kernels (burn-cuda, burn-wgpu), which
    /// autotune and compile into Pitchside's kernel cache. The CPU executor and LibTorch
    /// do neither.
    pub fn uses_kernel_cache(&self) -> bool {
        matches!(self, ModelDevice::Wgpu | ModelDevice::Cuda { .. })
    }
}
