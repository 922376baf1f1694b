//! The miner service with the stand-in analyzer (the tests' one: it decodes every frame with
//! OpenCV and reports no objects), until SIGTERM or ctrl-c: the default target of
//! `tools/load_test/load_test.py`. No models, no signatures: `auth: none` and
//! `download.allow_private_addresses: true`, so bind it to loopback only.
//!
//! ```text
//! cargo run -p pitchside-service --example load_test_server
//! ```
//!
//! Environment: `PITCHSIDE_LISTEN` (default 127.0.0.1:8000), `PITCHSIDE_MAX_CONCURRENT`
//! (challenge slots, 1), `PITCHSIDE_STAND_IN_FRAME_MS` (sleep after each frame, 0),
//! `RUST_LOG` (info).

// The tests' stand-in, shared by path; its counters are for the tests only.
#[path = "../tests/support/analyzer.rs"]
#[allow(dead_code)]
mod analyzer;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use pitchside_service::{AuthMode, DownloadConfig, ServiceConfig};

fn env_or<T: std::str::FromStr>(key: &str, default: &str) -> anyhow::Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let v = std::env::var(key).unwrap_or_else(|_| default.to_string());
    v.parse().with_context(|| format!("{key}={v:?}"))
}

fn main() -> anyhow::Result<()> {
    let listen: SocketAddr = env_or("PITCHSIDE_LISTEN", "127.0.0.1:8000")?;
    let max_concurrent_challenges: usize = env_or("PITCHSIDE_MAX_CONCURRENT", "1")?;
    let frame_ms: u64 = env_or("PITCHSIDE_STAND_IN_FRAME_MS", "0")?;
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        ))
        .with_writer(std::io::stderr)
        .init();
    let cfg = ServiceConfig {
        auth: AuthMode::None,
        max_concurrent_challenges,
        download: DownloadConfig {
            allow_private_addresses: true,
            ..Default::default()
        },
        ..Default::default()
    };
    let analyzer = Arc::new(analyzer::StandInAnalyzer::slow(Duration::from_millis(
        frame_ms,
    )));
    pitchside_service::run(cfg, Some(listen), analyzer)?;
    Ok(())
}
