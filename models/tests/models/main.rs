//! The models crate's integration tests, one binary (each test binary links OpenCV and
//! Burn): golden parity against ultralytics on real checkpoints and images, synthetic
//! checkpoints from architecture descriptions, and the letterbox against ultralytics'.
//! Filter by module: `cargo test -p pitchside-models --test models golden::`.

mod golden;
mod letterbox;
mod resize;
mod support;
mod synthetic;
