//! Where cubecl keeps what it learns about a GPU, pinned to one per-user directory per GPU
//! model: the autotune results (the fastest kernel for each conv/matmul shape, minutes to
//! measure on a cold start, see BENCHMARKS.md) and the compiled kernels where the runtime
//! caches them (CUDA's PTX; SPIR-V with Burn's `vulkan` feature; burn-wgpu's default WGSL
//! path has no compilation cache).
//!
//! cubecl's own default puts the autotune cache in `target/` beside the nearest `Cargo.toml`
//! above the working directory (else `~/.cache/cubecl`) and leaves the compilation cache off;
//! a `cubecl.toml` found by walking up from the working directory could change either. So
//! Pitchside sets cubecl's global configuration in code, before the first device use:
//! both caches in `<root>/<gpu name>/`, `root` from the deployment (`kernel_cache:`) or
//! [`default_root`]. The GPU's name keeps results measured on one GPU model from being
//! applied to another (cubecl keys them by device index and runtime only).
//!
//! Layout under `<root>/<gpu name>/` (cubecl 0.10's): `autotune/<cubecl version>/device-<type>-<index>-<runtime>/<tuner>.json.log`,
//! one JSON line per tuned key; `cuda/<version>/ptx/…` and `vulkan/<version>/spirv/…`.
//! [`autotune_entries`] counts the tuned keys (`pitchside tune` reports them).

use std::path::{Path, PathBuf};

use crate::device::ModelDevice;

/// Why the kernel cache could not be pinned.
#[derive(Debug, thiserror::Error)]
pub enum KernelCacheError {
    #[error("cannot create the kernel cache directory {}: {source}", path.display())]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cubecl's configuration was already in use (autotune cache {current}) when the kernel \
         cache was to be pinned to {}: pin it before the first GPU use",
        wanted.display()
    )]
    AlreadySet { current: String, wanted: PathBuf },
    #[error(
        "neither XDG_CACHE_HOME nor HOME is set: name a `kernel_cache` directory in the deployment"
    )]
    NoHome,
}

/// The kernel cache of this process: the GPU it is for and its directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelCache {
    /// The GPU's name as its driver reports it ("NVIDIA H200"), or "unknown GPU".
    pub gpu: String,
    /// `<root>/<gpu name as a directory name>/`.
    pub dir: PathBuf,
}

/// The per-user default root: `$XDG_CACHE_HOME/pitchside/kernels`, else
/// `$HOME/.cache/pitchside/kernels` (the XDG base directory rule: a relative
/// XDG_CACHE_HOME is ignored).
pub fn default_root() -> Option<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let base = var("XDG_CACHE_HOME")
        .filter(|p| p.is_absolute())
        .or_else(|| var("HOME").map(|h| h.join(".cache")))?;
    Some(base.join("pitchside").join("kernels"))
}

/// A GPU name as a directory name: ASCII letters, digits, `.` and `_` kept, runs of anything
/// else one `-` ("NVIDIA H200" → "NVIDIA-H200", "llvmpipe (LLVM 15.0.6, 256 bits)" →
/// "llvmpipe-LLVM-15.0.6-256-bits").
pub fn dir_name(gpu: &str) -> String {
    let mut out = String::new();
    for c in gpu.chars() {
        if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out: String = out
        .trim_matches(|c| c == '-' || c == '.')
        .chars()
        .take(80)
        .collect();
    if out.is_empty() { "gpu".into() } else { out }
}

/// The directory for `gpu` under `root`.
pub fn dir_for(root: &Path, gpu: &str) -> PathBuf {
    root.join(dir_name(gpu))
}

/// Pins cubecl's autotune and compilation caches to `<root>/<gpu name>/` (`root`: the
/// deployment's, else [`default_root`]) for `device`. Must run before the first GPU use in
/// the process; again with the same directory it does nothing. The CPU has no such cache:
/// `Ok(None)`.
pub fn pin(
    root: Option<&Path>,
    device: ModelDevice,
) -> Result<Option<KernelCache>, KernelCacheError> {
    if !device.uses_kernel_cache() {
        return Ok(None);
    }
    let root = match root {
        Some(r) => r.to_path_buf(),
        None => default_root().ok_or(KernelCacheError::NoHome)?,
    };
    let gpu = gpu_name(device).unwrap_or_else(|| "unknown GPU".into());
    let dir = dir_for(&root, &gpu);
    std::fs::create_dir_all(&dir).map_err(|source| KernelCacheError::Create {
        path: dir.clone(),
        source,
    })?;
    set_cubecl_caches(&dir)?;
    tracing::info!(gpu, dir = %dir.display(), "kernel cache");
    let cache = KernelCache { gpu, dir };
    // The first pin wins (cubecl's configuration is set once); a second one with the same
    // directory reaches this point with the same value.
    let _ = PINNED.set(cache.clone());
    Ok(Some(cache))
}

static PINNED: std::sync::OnceLock<KernelCache> = std::sync::OnceLock::new();

/// The kernel cache [`pin`] set in this process (by the deployment, or the default a GPU
/// model load pins), if any.
pub fn current() -> Option<KernelCache> {
    PINNED.get().cloned()
}

/// Pins the default cache unless something already configured cubecl: called by every GPU
/// model load, so that a program that never calls [`pin`] still gets the per-user cache.
pub(crate) fn pin_default_unless_set(device: ModelDevice) {
    let gpu_compiled = cfg!(any(feature = "wgpu", feature = "cuda"));
    if !gpu_compiled || !device.uses_kernel_cache() || cubecl_configured() {
        return;
    }
    if let Err(why) = pin(None, device) {
        tracing::warn!(%why, "the kernel cache stays cubecl's default");
    }
}

fn cubecl_configured() -> bool {
    #[cfg(any(feature = "wgpu", feature = "cuda"))]
    {
        use cubecl_runtime::config::{CubeClRuntimeConfig, RuntimeConfig};
        CubeClRuntimeConfig::storage().lock().is_some()
    }
    #[cfg(not(any(feature = "wgpu", feature = "cuda")))]
    false
}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
fn set_cubecl_caches(dir: &Path) -> Result<(), KernelCacheError> {
    use cubecl_runtime::config::cache::CacheConfig;
    use cubecl_runtime::config::{CubeClRuntimeConfig, RuntimeConfig};
    let mut state = CubeClRuntimeConfig::storage().lock();
    if let Some(current) = state.as_ref() {
        return match &current.autotune.cache {
            CacheConfig::File(p) if p == dir => Ok(()),
            other => Err(KernelCacheError::AlreadySet {
                current: other.root().display().to_string(),
                wanted: dir.to_path_buf(),
            }),
        };
    }
    // What cubecl would read without a cubecl.toml, with its environment overrides
    // (CUBECL_AUTOTUNE_LEVEL, CUBECL_DEBUG_LOG, ...), then the two caches.
    let mut config = CubeClRuntimeConfig::default().override_from_env();
    config.autotune.cache = CacheConfig::File(dir.to_path_buf());
    config.compilation.cache = Some(CacheConfig::File(dir.to_path_buf()));
    *state = Some(std::sync::Arc::new(config));
    Ok(())
}

#[cfg(not(any(feature = "wgpu", feature = "cuda")))]
fn set_cubecl_caches(_dir: &Path) -> Result<(), KernelCacheError> {
    Ok(())
}

/// Tuned keys in the autotune cache under `dir`: one per line of its `*.json.log` files.
pub fn autotune_entries(dir: &Path) -> usize {
    fn walk(p: &Path, n: &mut usize) {
        let Ok(rd) = std::fs::read_dir(p) else { return };
        for e in rd.flatten() {
            let path = e.path();
            if path.is_dir() {
                walk(&path, n);
            } else if path.to_string_lossy().ends_with(".json.log")
                && let Ok(text) = std::fs::read_to_string(&path)
            {
                *n += text.lines().filter(|l| !l.trim().is_empty()).count();
            }
        }
    }
    let mut n = 0;
    walk(&dir.join("autotune"), &mut n);
    n
}

/// The name of the GPU `device` will run on, as its driver reports it.
pub fn gpu_name(device: ModelDevice) -> Option<String> {
    match device {
        ModelDevice::Cpu | ModelDevice::CpuBf16 | ModelDevice::Torch { .. } => None,
        ModelDevice::Cuda { .. } => crate::cuda_driver::device_name(0),
        ModelDevice::Wgpu => crate::wgpu_adapter::default_adapter_name(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_names_become_directory_names() {
        assert_eq!(dir_name("NVIDIA H200"), "NVIDIA-H200");
        assert_eq!(
            dir_name("llvmpipe (LLVM 15.0.6, 256 bits)"),
            "llvmpipe-LLVM-15.0.6-256-bits"
        );
        assert_eq!(dir_name("../../etc"), "etc");
        assert_eq!(dir_name("  "), "gpu");
        assert_eq!(
            dir_for(Path::new("/c"), "Apple M2 Pro"),
            Path::new("/c/Apple-M2-Pro")
        );
    }

    #[test]
    fn the_cpu_has_no_kernel_cache() {
        assert!(
            pin(Some(Path::new("/nonexistent")), ModelDevice::Cpu)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_bf16_cpu_profile_has_no_kernel_cache_either() {
        // `half: true` on the CPU is bf16 operands: no GPU, no "unknown GPU" cache.
        let root = std::env::temp_dir().join(format!("pitchside-kc-bf16-{}", std::process::id()));
        assert!(pin(Some(&root), ModelDevice::CpuBf16).unwrap().is_none());
        assert!(!root.exists(), "{} was created", root.display());
        assert!(!ModelDevice::CpuBf16.uses_kernel_cache());
        assert!(ModelDevice::Wgpu.uses_kernel_cache());
    }

    #[test]
    fn autotune_entries_count_lines_of_the_logs() {
        let dir = std::env::temp_dir().join(format!("pitchside-kc-{}", std::process::id()));
        let logs = dir.join("autotune/0.10.0/device-0-0-wgpu");
        std::fs::create_dir_all(&logs).unwrap();
        assert_eq!(autotune_entries(&dir), 0);
        std::fs::write(logs.join("conv.json.log"), "{\"a\":1}\n{\"b\":2}\n").unwrap();
        std::fs::write(logs.join("matmul.json.log"), "{\"c\":3}\n\n").unwrap();
        std::fs::write(logs.join("other.txt"), "x\n").unwrap();
        assert_eq!(autotune_entries(&dir), 3);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
