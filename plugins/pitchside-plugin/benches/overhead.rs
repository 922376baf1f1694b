//! Per-call overhead of the shared-library path against a direct trait call, with a trivial
//! detector (one box per frame, no pixel read), so that the difference is the ABI: frame
//! conversion, the indirect call, the SDK's catch_unwind and buffer flattening, and the
//! host's checks, sanitising and copying.
//!
//! `cargo bench -p pitchside-plugin --features host --bench overhead`
//! (`-- --quick` for a short run).

#[path = "../tests/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use pitchside_plugin::serde_json::json;
use pitchside_plugin::{Detection, Detector, FrameRef, PixelFormat, PluginError, PluginInfo};

/// The same behaviour as the test plugin's `ok` mode, compiled into the benchmark.
struct Centre;

impl Detector for Centre {
    fn info(&self) -> PluginInfo {
        unreachable!()
    }

    fn detect(&mut self, frames: &[FrameRef<'_>]) -> Result<Vec<Vec<Detection>>, PluginError> {
        Ok(frames
            .iter()
            .map(|f| {
                let (w, h) = (f.width as f32, f.height as f32);
                vec![Detection {
                    bbox: [w / 4.0, h / 4.0, w * 0.75, h * 0.75],
                    score: 0.9,
                    class_id: 0,
                    keypoints: vec![],
                }]
            })
            .collect())
    }
}

/// Mean nanoseconds per `detect` call over `iters` calls, best of 5 runs.
fn time(d: &mut dyn Detector, frames: &[FrameRef<'_>], iters: u32) -> f64 {
    (0..5)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iters {
                black_box(d.detect(black_box(frames)).unwrap());
            }
            start.elapsed()
        })
        .min()
        .map(|t: Duration| t.as_nanos() as f64 / iters as f64)
        .unwrap()
}

fn main() {
    // `cargo bench` passes `--bench`; `--quick` shortens the run.
    let quick = std::env::args().any(|a| a == "--quick");
    let iters = if quick { 20_000 } else { 500_000 };
    let lib = support::release().lib("pitchside_test_plugins");
    let mut shared = pitchside_plugin::host::load_detector(&lib, &json!({})).unwrap();
    let mut direct = Centre;

    let (w, h) = (1920u32, 1080u32);
    let pixels = vec![0u8; (w * h * 3) as usize];
    let frame = |n| FrameRef {
        data: &pixels,
        width: w,
        height: h,
        row_stride: w as usize * 3,
        format: PixelFormat::Bgr8,
        frame_number: n,
    };
    // Same results both ways, or the comparison means nothing.
    let one = [frame(0)];
    assert_eq!(shared.detect(&one).unwrap(), direct.detect(&one).unwrap());

    println!("detect() on 1920x1080 BGR frames, trivial detector, {iters} calls, best of 5");
    println!(
        "{:>6} {:>12} {:>12} {:>12}",
        "batch", "direct ns", "shared ns", "overhead ns"
    );
    for batch in [1usize, 8] {
        let frames: Vec<_> = (0..batch as u64).map(frame).collect();
        let d = time(&mut direct, &frames, iters);
        let s = time(shared.as_mut(), &frames, iters);
        println!("{batch:>6} {d:>12.1} {s:>12.1} {:>12.1}", s - d);
    }
}
