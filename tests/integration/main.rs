//! The `pitchside` crate's integration tests, one binary (every test binary links OpenCV
//! and Burn): the command line as a user runs it (`cli`), the pipeline on real weights and
//! video (`pipeline`), shared-library plugins in the pipeline (`plugins`), `pitchside tune`'s
//! shape list (`tune`), the NATS work queue with real worker processes (`queue`), and, with
//! `--features torch`, LibTorch against the CPU executor (`torch`). Filter by
//! module, e.g. `cargo test -p pitchside --test integration pipeline::`.

mod cli;
mod pipeline;
mod plugins;
mod queue;
mod support;
#[cfg(feature = "torch")]
mod torch;
mod tune;
