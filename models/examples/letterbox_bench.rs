//! The Rust letterbox against OpenCV's, interleaved (this box drifts): per-frame latency on
//! real images and a 1080p frame, and a 32-frame batch as `YoloModel::preprocess` runs it
//! (frames in parallel). `cargo run -p pitchside-models --example letterbox_bench -- [ROUNDS]`
//! (the dev profile optimises this crate).

use std::time::Instant;

use opencv::core::{Mat, Size};
use opencv::prelude::*;
use pitchside_models::Letterbox;
use pitchside_models::preprocess::{letterbox_into_opencv, letterbox_into_rust};
use pitchside_plugin::{FrameRef, PixelFormat};
use rayon::prelude::*;

type Letterboxer =
    fn(&FrameRef<'_>, &Letterbox, &mut [f32]) -> Result<(), pitchside_models::ModelError>;

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets");
    let read = |name: &str| {
        let m = opencv::imgcodecs::imread(
            &*root.join(name).to_string_lossy(),
            opencv::imgcodecs::IMREAD_COLOR,
        )
        .unwrap();
        assert!(!m.empty(), "{name}: run scripts/fetch-assets.sh");
        m
    };
    let zidane = read("zidane.jpg");
    let mut hd = Mat::default();
    opencv::imgproc::resize(
        &zidane,
        &mut hd,
        Size::new(1920, 1080),
        0.0,
        0.0,
        opencv::imgproc::INTER_LINEAR,
    )
    .unwrap();
    let images = [
        ("bus 810x1080", read("bus.jpg")),
        ("zidane 1280x720", zidane),
        ("1920x1080", hd),
    ];
    let impls: [(&str, Letterboxer); 2] = [
        ("opencv", letterbox_into_opencv),
        ("rust", letterbox_into_rust),
    ];
    println!(
        "{:<18} {:>6} {:<7} {:>12} {:>12}",
        "image", "imgsz", "impl", "ms/frame", "batch32 ms/f"
    );
    for (name, m) in &images {
        let data = m.data_bytes().unwrap().to_vec();
        let f = FrameRef {
            data: &data,
            width: m.cols() as u32,
            height: m.rows() as u32,
            row_stride: m.cols() as usize * 3,
            format: PixelFormat::Bgr8,
            frame_number: 0,
        };
        for imgsz in [640, 1280] {
            let lb = Letterbox::new(f.width, f.height, imgsz, true, 32);
            let per = 3 * (lb.out_w() * lb.out_h()) as usize;
            let mut one = vec![0f32; per];
            let mut batch = vec![0f32; per * 32];
            let frames = vec![f; 32];
            let mut single = [Vec::new(), Vec::new()];
            let mut batched = [Vec::new(), Vec::new()];
            for _ in 0..rounds {
                for (k, (_, lbx)) in impls.iter().enumerate() {
                    let t = Instant::now();
                    for _ in 0..20 {
                        lbx(&f, &lb, &mut one).unwrap();
                    }
                    single[k].push(t.elapsed().as_secs_f64() * 1000.0 / 20.0);
                    let t = Instant::now();
                    batch
                        .par_chunks_mut(per)
                        .zip(frames.par_iter())
                        .try_for_each(|(o, f)| lbx(f, &lb, o))
                        .unwrap();
                    batched[k].push(t.elapsed().as_secs_f64() * 1000.0 / 32.0);
                }
            }
            let median = |v: &mut Vec<f64>| {
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            for (k, (iname, _)) in impls.iter().enumerate() {
                println!(
                    "{name:<18} {imgsz:>6} {iname:<7} {:>12.3} {:>12.3}",
                    median(&mut single[k]),
                    median(&mut batched[k])
                );
            }
        }
    }
}
