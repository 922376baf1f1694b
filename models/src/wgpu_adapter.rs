//! The WGPU adapters asked directly, without a backend: which there are (the engine's
//! device probe) and which one burn-wgpu's default device takes (the kernel cache's folder).
//! The one place Pitchside talks to wgpu itself; the twin of [`crate::cuda_driver`].

/// Every adapter wgpu finds, described as `name (backend, device type)`.
#[cfg(feature = "wgpu")]
pub fn adapters() -> Result<Vec<String>, String> {
    let instance = wgpu::Instance::default();
    // enumerate_adapters is sync in some wgpu versions and async in others.
    let found = block_on(
        instance
            .enumerate_adapters(wgpu::Backends::all())
            .into_future(),
    );
    Ok(found
        .iter()
        .map(|a| {
            let i = a.get_info();
            format!("{} ({:?}, {:?})", i.name, i.backend, i.device_type)
        })
        .collect())
}

#[cfg(not(feature = "wgpu"))]
pub fn adapters() -> Result<Vec<String>, String> {
    Err("built without the `wgpu` feature".into())
}

/// The adapter burn-wgpu's default device takes: cubecl asks its graphics API's backend for
/// the high-performance adapter; the same question, on an instance of our own.
#[cfg(feature = "wgpu")]
pub fn default_adapter_name() -> Option<String> {
    use burn::backend::wgpu::graphics::{AutoGraphicsApi, GraphicsApi};
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: AutoGraphicsApi::backend().into(),
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    let adapter = block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
        power_preference: wgpu::PowerPreference::HighPerformance,
        force_fallback_adapter: false,
        compatible_surface: None,
    }))
    .ok()?;
    let name = adapter.get_info().name.trim().to_string();
    (!name.is_empty()).then_some(name)
}

#[cfg(not(feature = "wgpu"))]
pub fn default_adapter_name() -> Option<String> {
    None
}

/// Runs a future to completion on this thread: wgpu's adapter requests, without an async
/// runtime.
#[cfg(feature = "wgpu")]
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct ThreadWaker(std::thread::Thread);
    impl Wake for ThreadWaker {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(std::sync::Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}
