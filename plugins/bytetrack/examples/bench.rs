//! Per-frame cost of `ByteTrack::track` at 25 detections a frame.
//!
//!     cargo run --release -p pitchside-bytetrack --example bench
//!
//! The sequence is the integer-LCG one of `tools/bytetrack_fixtures.py --bench`, so the
//! two numbers (and the printed output count and id sum) are directly comparable.

use std::time::Instant;

use pitchside_bytetrack::{ByteTrack, ByteTrackParams};
use pitchside_plugin::Detection;

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> i64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as i64
    }

    /// Inclusive, as in the Python twin.
    fn uniform(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// 25 bouncing boxes a frame, in hundredths of a pixel (integer math only).
fn sequence(n_frames: usize, n_objects: usize, seed: u64) -> Vec<Vec<Detection>> {
    let mut g = Lcg(seed);
    let (fw, fh) = (192_000i64, 108_000i64);
    let mut objs: Vec<[i64; 6]> = (0..n_objects)
        .map(|_| {
            let (w, h) = (g.uniform(2500, 5000), g.uniform(6000, 11000));
            let x = g.uniform(0, fw - w);
            let y = g.uniform(0, fh - h);
            let vx = g.uniform(0, 1200) - 600;
            let vy = g.uniform(0, 800) - 400;
            [x, y, w, h, vx, vy]
        })
        .collect();
    let k = |v: i64| (v as f64 / 100.0) as f32;
    (0..n_frames)
        .map(|_| {
            objs.iter_mut()
                .map(|o| {
                    let [mut x, mut y, w, h, mut vx, mut vy] = *o;
                    if g.uniform(0, 49) == 0 {
                        vx = g.uniform(0, 1200) - 600;
                        vy = g.uniform(0, 800) - 400;
                    }
                    x += vx;
                    y += vy;
                    if x < 0 {
                        (x, vx) = (-x, -vx);
                    }
                    if x + w > fw {
                        (x, vx) = (2 * (fw - w) - x, -vx);
                    }
                    if y < 0 {
                        (y, vy) = (-y, -vy);
                    }
                    if y + h > fh {
                        (y, vy) = (2 * (fh - h) - y, -vy);
                    }
                    *o = [x, y, w, h, vx, vy];
                    let j: Vec<i64> = (0..4).map(|_| g.uniform(0, 300) - 150).collect();
                    let score = if g.uniform(0, 9) != 0 {
                        g.uniform(30, 95)
                    } else {
                        g.uniform(11, 24)
                    };
                    Detection {
                        bbox: [k(x + j[0]), k(y + j[1]), k(x + w + j[2]), k(y + h + j[3])],
                        score: k(score),
                        class_id: 2,
                        keypoints: Vec::new(),
                    }
                })
                .collect()
        })
        .collect()
}

fn main() {
    let frames = sequence(3000, 25, 12345);
    let mut tracker = ByteTrack::new(ByteTrackParams::default()).expect("default params");
    let mut best = f64::INFINITY;
    let (mut n_out, mut id_sum) = (0usize, 0u64);
    for _ in 0..10 {
        tracker.reset();
        (n_out, id_sum) = (0, 0);
        let t0 = Instant::now();
        for dets in &frames {
            let out = tracker.track(dets);
            n_out += out.len();
            id_sum += out.iter().map(|o| o.id).sum::<u64>();
        }
        best = best.min(t0.elapsed().as_secs_f64());
    }
    println!(
        "pitchside-bytetrack: {} frames x 25 detections: {:.4} ms/frame (best of 10; \
         outputs {n_out}, id sum {id_sum})",
        frames.len(),
        best / frames.len() as f64 * 1e3
    );
}
