//! The models crate's integration tests, one binary (each test binary links OpenCV and
//! Burn): golden parity against ultralytics on real checkpoints and images, synthetic
//! checkpoints from architecture descriptions, the letterbox against ultralytics', and (with
//! `--features wgpu`) the kernel cache across processes (`warm_start`).
//! Filter by module: `cargo test -p pitchside-models --test models golden::`.

mod golden;
mod letterbox;
mod support;
mod synthetic;
mod warm_start;
