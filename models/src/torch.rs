//! The plan on LibTorch (`torch` feature): [`BurnNet`] on burn-tch, so every convolution,
//! matrix product and activation is PyTorch's own kernel — cuDNN and cuBLAS on NVIDIA, MPS
//! on Apple, oneDNN on the CPU — with nothing to compile or autotune at start.
//!
//! Where Burn composes an operation that PyTorch has as one call (SiLU as `x * sigmoid(x)`,
//! -inf padding copied before pooling, upsampling as expand + copy), [`NetBackend`] takes
//! PyTorch's op on the backend's own tensor ([`TchTensor::tensor`]). CUDA convolutions pick
//! their algorithm per shape as `torch.backends.cudnn.benchmark = True` does: the first
//! batch of a shape tries them, later ones reuse the fastest.
//!
//! LibTorch is linked dynamically: the binary needs `torch/lib` of the PyTorch it was built
//! against (an rpath to it is set at build time; elsewhere `LD_LIBRARY_PATH`). A different
//! LibTorch found at run time is refused with both versions named ([`check_libtorch`]).

use std::sync::OnceLock;

use burn::backend::LibTorch;
use burn::backend::libtorch::{LibTorchDevice, TchElement, TchTensor};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Tensor, TensorPrimitive};

use crate::ModelError;
use crate::burn_net::{BurnNet, NetBackend};
use crate::device::TorchDevice;
use crate::network::Network;
use crate::plan::Plan;

/// The LibTorch this crate was compiled against: its `torch/lib` and version (empty when
/// the build could not read it).
pub const BUILT_LIB_DIR: &str = env!("PITCHSIDE_LIBTORCH_LIB");
pub const BUILT_VERSION: &str = env!("PITCHSIDE_LIBTORCH_VERSION");

fn tch_of<E: TchElement, const D: usize>(x: Tensor<LibTorch<E>, D>) -> tch::Tensor {
    x.into_primitive().tensor().tensor
}

fn burn_of<E: TchElement, const D: usize>(t: tch::Tensor) -> Tensor<LibTorch<E>, D> {
    Tensor::from_primitive(TensorPrimitive::Float(TchTensor::new(t)))
}

impl<E: TchElement> NetBackend for LibTorch<E> {
    fn conv_bias_act(
        x: Tensor<Self, 4>,
        weight: Tensor<Self, 4>,
        bias: Tensor<Self, 1>,
        options: ConvOptions<2>,
        act: bool,
    ) -> Tensor<Self, 4> {
        let (x, w, b) = (tch_of(x), tch_of(weight), tch_of(bias));
        let mut y = x.conv2d(
            &w,
            Some(&b),
            options.stride.map(|v| v as i64),
            options.padding.map(|v| v as i64),
            options.dilation.map(|v| v as i64),
            options.groups as i64,
        );
        if act {
            // In place: the convolution's output is ours alone.
            let _ = y.silu_();
        }
        burn_of(y)
    }

    fn max_pool_same(x: Tensor<Self, 4>, k: usize) -> Tensor<Self, 4> {
        let (k, p) = (k as i64, (k / 2) as i64);
        burn_of(tch_of(x).max_pool2d([k, k], [1, 1], [p, p], [1, 1], false))
    }

    fn upsample_nearest(x: Tensor<Self, 4>, f: usize) -> Tensor<Self, 4> {
        let [_, _, h, w] = x.dims();
        let size = [(h * f) as i64, (w * f) as i64];
        burn_of(tch_of(x).upsample_nearest2d(size, None, None))
    }
}

/// The installed LibTorch's version, read beside the library the process loaded:
/// `torch/version.py` of a PyTorch install, `build-version` of a libtorch archive.
fn loaded_libtorch() -> Option<(std::path::PathBuf, String)> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let lib = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.ends_with("/libtorch_cpu.so"))?;
    let dir = std::path::Path::new(lib).parent()?.to_path_buf();
    Some((dir.clone(), version_in(&dir)?))
}

include!("torch_version.rs");

/// The version of the LibTorch whose `lib` folder is `lib_dir`, if it says.
pub fn version_in(lib_dir: &std::path::Path) -> Option<String> {
    libtorch_version_in(lib_dir)
}

/// Checks once that the LibTorch this process loaded is the one Pitchside was built
/// against: tch's C++ wrapper is compiled for one version's headers, and another version
/// can fail in ways no error message explains.
pub fn check_libtorch() -> Result<(), ModelError> {
    static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
    CHECKED
        .get_or_init(|| match loaded_libtorch() {
            Some((dir, loaded)) if !BUILT_VERSION.is_empty() && loaded != BUILT_VERSION => {
                Err(format!(
                    "LibTorch {loaded} was loaded from {}, but Pitchside was built against \
                     LibTorch {BUILT_VERSION} ({BUILT_LIB_DIR}): put that one's lib folder on \
                     LD_LIBRARY_PATH, or rebuild with --features torch against {loaded}",
                    dir.display()
                ))
            }
            _ => Ok(()),
        })
        .clone()
        .map_err(ModelError::Torch)
}

/// LibTorch's CPU threads (intra-op): one OpenMP pool for the whole process, not per
/// network, so pipelines sharing the CPU share it by setting it to their share.
pub fn set_cpu_threads(n: usize) {
    tch::set_num_threads(i32::try_from(n.max(1)).unwrap_or(i32::MAX));
}

/// LibTorch's CPU threads now.
pub fn cpu_threads() -> usize {
    usize::try_from(tch::get_num_threads()).unwrap_or(1)
}

/// How many CUDA devices LibTorch sees (0 without a driver or a GPU).
pub fn cuda_device_count() -> usize {
    usize::try_from(tch::Cuda::device_count()).unwrap_or(0)
}

/// The devices LibTorch offers for `device` (e.g. `torch:cuda:0`), or why there are none.
pub fn probe(device: TorchDevice) -> Result<Vec<String>, String> {
    check_libtorch().map_err(|e| e.to_string())?;
    let version = || {
        if BUILT_VERSION.is_empty() {
            "LibTorch".to_string()
        } else {
            format!("LibTorch {BUILT_VERSION}")
        }
    };
    match device {
        TorchDevice::Cpu => Ok(vec![format!(
            "torch:cpu ({}, {} threads)",
            version(),
            tch::get_num_threads()
        )]),
        TorchDevice::Cuda(_) => match cuda_device_count() {
            0 => Err(format!(
                "{} sees no CUDA device (no NVIDIA driver or GPU, or a CPU-only LibTorch)",
                version()
            )),
            n => Ok((0..n).map(|i| format!("torch:cuda:{i}")).collect()),
        },
        TorchDevice::Mps if tch::utils::has_mps() => Ok(vec!["torch:mps".into()]),
        TorchDevice::Mps => Err(format!(
            "{} has no MPS device (Apple silicon with macOS 12.3+ only)",
            version()
        )),
    }
}

/// A [`BurnNet`] on LibTorch, with the device and precision it runs in.
struct TorchNet<E: TchElement> {
    net: BurnNet<LibTorch<E>>,
    device: tch::Device,
    kind: tch::Kind,
    engine: &'static str,
}

impl<E: TchElement> TorchNet<E> {
    fn forward_tch(&self, input: &[f32], shape: [usize; 4]) -> Result<tch::Tensor, tch::TchError> {
        let _no_grad = tch::no_grad_guard();
        let dims = shape.map(|d| d as i64);
        // Uploaded as f32 and converted on the device: a batch of 32 at 640×384 is 24 M
        // values, which the GPU converts in microseconds and one CPU thread in ~20 ms.
        let x = tch::Tensor::f_from_slice(input)?
            .f_view(dims)?
            .f_to_device(self.device)?
            .f_to_kind(self.kind)?;
        let y = tch_of(self.net.forward(burn_of(x)));
        y.f_to_kind(tch::Kind::Float)?
            .f_to_device(tch::Device::Cpu)?
            .f_contiguous()
    }
}

impl<E: TchElement> Network for TorchNet<E> {
    fn forward(
        &self,
        input: Vec<f32>,
        shape: [usize; 4],
    ) -> Result<(Vec<f32>, [usize; 3]), ModelError> {
        // tch panics on errors raised inside Burn's operations (an out-of-memory GPU, say):
        // they unwind through Rust code only, so they become this batch's error.
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.forward_tch(&input, shape)
        }));
        let y = match run {
            Ok(Ok(y)) => y,
            Ok(Err(e)) => return Err(ModelError::Inference(format!("LibTorch: {e}"))),
            Err(panic) => {
                let why = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("unknown error");
                return Err(ModelError::Inference(format!("LibTorch: {why}")));
            }
        };
        let dims: [usize; 3] = match y.size()[..] {
            [b, c, n] => [b as usize, c as usize, n as usize],
            ref other => {
                return Err(ModelError::Inference(format!(
                    "LibTorch: head output of shape {other:?}"
                )));
            }
        };
        let values = Vec::<f32>::try_from(y.flatten(0, -1))
            .map_err(|e| ModelError::Inference(format!("LibTorch: {e}")))?;
        Ok((values, dims))
    }

    fn engine(&self) -> &'static str {
        self.engine
    }
}

/// Checks that LibTorch offers `device` and readies it: burn-tch's device for it.
pub fn prepare(device: TorchDevice) -> Result<LibTorchDevice, ModelError> {
    probe(device).map_err(ModelError::Torch)?;
    Ok(match device {
        TorchDevice::Cpu => LibTorchDevice::Cpu,
        TorchDevice::Cuda(i) => {
            let n = cuda_device_count();
            if i >= n {
                return Err(ModelError::Torch(format!(
                    "torch:cuda:{i} was requested, but LibTorch sees {n} CUDA device(s)"
                )));
            }
            // cudnn.benchmark: the fastest algorithm per convolution shape, chosen once.
            tch::Cuda::cudnn_set_benchmark(true);
            LibTorchDevice::Cuda(i)
        }
        TorchDevice::Mps => LibTorchDevice::Mps,
    })
}

/// Compiles `plan` for LibTorch on `device`, f16 when `half`.
pub fn network(
    plan: &Plan,
    device: TorchDevice,
    half: bool,
) -> Result<Box<dyn Network>, ModelError> {
    let burn_device = prepare(device)?;
    let tch_device = tch::Device::from(burn_device);
    Ok(if half {
        Box::new(TorchNet::<half::f16> {
            net: BurnNet::new(plan, &burn_device),
            device: tch_device,
            kind: tch::Kind::Half,
            engine: "burn-tch fp16",
        })
    } else {
        Box::new(TorchNet::<f32> {
            net: BurnNet::new(plan, &burn_device),
            device: tch_device,
            kind: tch::Kind::Float,
            engine: "burn-tch",
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_recorded_which_libtorch_it_compiled_against() {
        assert!(!BUILT_LIB_DIR.is_empty());
        let dir = std::path::Path::new(BUILT_LIB_DIR);
        assert_eq!(version_in(dir).as_deref(), Some(BUILT_VERSION));
        // The test binary loaded that same LibTorch, so the check passes.
        check_libtorch().unwrap();
        assert_eq!(
            loaded_libtorch().map(|(_, v)| v).as_deref(),
            Some(BUILT_VERSION)
        );
    }

    #[test]
    fn version_files_of_both_layouts_are_read() {
        let root = std::env::temp_dir().join(format!("pitchside-torch-{}", std::process::id()));
        let (py, zip) = (root.join("py/torch"), root.join("zip/libtorch"));
        for d in [&py, &zip] {
            std::fs::create_dir_all(d.join("lib")).unwrap();
        }
        std::fs::write(
            py.join("version.py"),
            "from typing import Optional\n__version__ = '2.11.0+cu130'\ngit_version = 'x'\n",
        )
        .unwrap();
        std::fs::write(zip.join("build-version"), "2.9.0+cpu\n").unwrap();
        assert_eq!(version_in(&py.join("lib")).as_deref(), Some("2.11.0+cu130"));
        assert_eq!(version_in(&zip.join("lib")).as_deref(), Some("2.9.0+cpu"));
        assert_eq!(version_in(&root.join("none/lib")), None);
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn fused_ops_equal_burns_compositions() {
        // PyTorch's conv+SiLU, padded pooling and nearest upsampling against Burn's own
        // compositions of the same operations, on the same backend.
        use burn::tensor::activation::silu;
        use burn::tensor::module::{conv2d, max_pool2d};
        use burn::tensor::{Distribution, Tolerance};
        type B = LibTorch<f32>;
        let dev = LibTorchDevice::Cpu;
        let x = Tensor::<B, 4>::random([2, 3, 7, 9], Distribution::Normal(0.0, 1.0), &dev);
        let w = Tensor::<B, 4>::random([5, 3, 3, 3], Distribution::Normal(0.0, 0.5), &dev);
        let b = Tensor::<B, 1>::random([5], Distribution::Normal(0.0, 0.5), &dev);
        let opts = ConvOptions::new([2, 2], [1, 1], [1, 1], 1);
        let fused = B::conv_bias_act(x.clone(), w.clone(), b.clone(), opts.clone(), true);
        let composed = silu(conv2d(x.clone(), w, Some(b), opts));
        fused
            .into_data()
            .assert_approx_eq::<f32>(&composed.into_data(), Tolerance::default());

        let pooled = B::max_pool_same(x.clone(), 5);
        let padded = x.clone().pad(
            (2, 2, 2, 2),
            burn::tensor::ops::PadMode::Constant(f32::NEG_INFINITY),
        );
        let reference = max_pool2d(padded, [5, 5], [1, 1], [0, 0], [1, 1], false);
        pooled.into_data().assert_eq(&reference.into_data(), true);

        let up = B::upsample_nearest(x.clone(), 2);
        assert_eq!(up.dims(), [2, 3, 14, 18]);
        let [b_, c, h, w_] = x.dims();
        let reference = x
            .reshape([b_, c, h, 1, w_, 1])
            .expand([b_, c, h, 2, w_, 2])
            .reshape([b_, c, h * 2, w_ * 2]);
        up.into_data().assert_eq(&reference.into_data(), true);
    }

    #[test]
    fn a_cuda_device_without_a_gpu_is_an_error_not_a_panic() {
        if cuda_device_count() > 0 {
            return;
        }
        let err = probe(TorchDevice::Cuda(0)).unwrap_err();
        assert!(err.contains("sees no CUDA device"), "{err}");
    }
}
