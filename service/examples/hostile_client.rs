//! A scripted hostile client against a running `pitchside serve` on loopback
//! (tests/support/hostile.rs at full scale: 50 slow-loris header connections, 20 trickled
//! bodies, 50 oversize declared bodies, 100 bad signatures, 20 replayed nonces) with one
//! genuine signed challenge in the middle, which must get its 200 with every frame. Before
//! it, and through all of it, an idle-socket flood from 127.0.0.2 (300 sockets, each one
//! the service drops reopened, 100 a second); then signed challenges whose videos are a
//! gzip "game music" bomb (`PITCHSIDE_BOMB` names a bigger one than the 100 KB fixture),
//! an HLS playlist and an ffconcat script of the miner's own files, each of which must get
//! 422. With `--pid`, samples the service's resident memory from /proc during the run and
//! reports its peak (BENCHMARKS.md). Exits non-zero if the service misbehaved.
//!
//! ```text
//! cargo run --release -p pitchside-service --example hostile_client -- --print-config > hostile.yaml
//! # add models: etc. (or append it to configs/default.yaml's copy), then:
//! pitchside serve --config hostile.yaml --listen 127.0.0.1:8000 &
//! cargo run --release -p pitchside-service --example hostile_client -- --target 127.0.0.1:8000 --pid $!
//! ```
//!
//! The genuine challenge's video (`--video`, default assets/vtest.avi; `--frames`, its frame
//! count, default 795) is served by this program on 127.0.0.1, so the service needs
//! `download.allow_private_addresses: true`; the validator and miner hotkeys are the test
//! seeds 1 and 2 (`--print-config` prints that `service:` section). `--genuine-only` sends
//! the genuine challenge alone, for the baseline memory.

#[path = "../tests/support/hostile.rs"]
mod hostile;
#[path = "../tests/support/signing.rs"]
#[allow(dead_code)]
mod signing;
#[path = "../tests/support/video_server.rs"]
#[allow(dead_code)]
mod video_server;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};

use hostile::{Genuine, Scale};
use signing::Hotkey;

/// The checkout (video_server.rs serves its fixtures from here).
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `VmRSS` or `VmHWM` of a process, in bytes.
fn proc_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1 << 20) as f64)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut target: SocketAddr = "127.0.0.1:8000".parse()?;
    let mut pid: Option<u32> = None;
    let mut video = root().join("assets/vtest.avi");
    let mut frames = 795usize;
    let mut genuine_only = false;
    let validator = Hotkey::from_seed(1);
    let miner = Hotkey::from_seed(2);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--target" => target = value()?.parse()?,
            "--pid" => pid = Some(value()?.parse()?),
            "--video" => video = value()?.into(),
            "--frames" => frames = value()?.parse()?,
            // The baseline: the genuine challenge alone.
            "--genuine-only" => genuine_only = true,
            "--print-config" => {
                println!(
                    // Every abuse of the script comes from 127.0.0.1 at once (~250
                    // connections), as the genuine challenge does: the per-peer share is
                    // raised above that burst; the flood, from 127.0.0.2, still meets it.
                    "service:\n  miner_hotkey: {}\n  validators: [{}]\n  header_read_timeout_s: 10\n  \
                     request_body_timeout_s: 10\n  max_connections_per_peer: 240\n  download:\n    \
                     allow_private_addresses: true",
                    miner.address, validator.address
                );
                return Ok(());
            }
            other => bail!("unknown argument {other} (see the example's top comment)"),
        }
    }
    let bytes = std::fs::read(&video).with_context(|| format!("{}", video.display()))?;
    let videos = video_server::VideoServer::start(bytes).await;

    // Resident memory, sampled every 20 ms while the script runs.
    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let before = pid.and_then(|p| proc_kb(p, "VmRSS:"));
    let sampler = pid.map(|p| {
        let (done, peak) = (done.clone(), peak.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if let Some(rss) = proc_kb(p, "VmRSS:") {
                    peak.fetch_max(rss, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    });

    let genuine = Genuine {
        validator,
        miner_address: miner.address.clone(),
        video_url: videos.url("/vtest.avi"),
        expected_frames: frames,
    };
    let scale = if genuine_only {
        Scale {
            slow_headers: 0,
            slow_bodies: 0,
            oversize: 0,
            bad_signatures: 0,
            replays: 0,
            hold_limit: Duration::from_secs(30),
        }
    } else {
        Scale {
            slow_headers: 50,
            slow_bodies: 20,
            oversize: 50,
            bad_signatures: 100,
            replays: 20,
            hold_limit: Duration::from_secs(30),
        }
    };
    let mut failures = Vec::new();
    let flood = (!genuine_only)
        .then(|| hostile::Flood::start(target, "127.0.0.2".parse().unwrap(), 300, 100.0));
    if flood.is_some() {
        // Let the flood fill its share and start reopening.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let health = hostile::get(target, "/health").await;
        println!("/health during the flood: {health}");
        if health != 200 {
            failures.push(format!("/health got {health} during the idle-socket flood"));
        }
        for (path, format) in [
            ("/bomb.mp4", "(libgme)"),
            ("/playlist.m3u8", "(hls)"),
            ("/concat.mp4", "(concat)"),
        ] {
            let t = std::time::Instant::now();
            let url = videos.url(path);
            let (status, _, body) = hostile::signed_challenge(
                target,
                &genuine,
                &format!("exotic{}", path.replace('/', "-")),
                &url,
            )
            .await?;
            println!(
                "{path}: {status} in {:.2} s: {}",
                t.elapsed().as_secs_f64(),
                body.chars().take(160).collect::<String>()
            );
            if status != 422 || !body.contains(format) {
                failures.push(format!("{path} got {status}: {body}"));
            }
        }
    }
    let report = hostile::run(target, &genuine, scale).await;
    if let Some(f) = flood {
        println!("idle-socket flood: {} connections opened", f.stop().await);
    }
    done.store(true, Ordering::Relaxed);
    if let Some(s) = sampler {
        let _ = s.join();
    }

    println!("refused requests by status: {:?}", report.statuses);
    println!(
        "genuine challenge: {} with {} frames in {:.1} s",
        report.genuine_status, report.genuine_frames, report.genuine_seconds
    );
    println!(
        "longest a slow connection was held: {:.1} s",
        report.longest_hold.as_secs_f64()
    );
    if let Some(p) = pid {
        let hwm = proc_kb(p, "VmHWM:");
        println!(
            "serve (pid {p}) resident memory: {} before, {} peak during the run (sampled every 20 ms); \
             VmHWM since its start {}",
            before.map_or("?".into(), mib),
            mib(peak.load(Ordering::Relaxed)),
            hwm.map_or("?".into(), mib)
        );
    }
    failures.extend(report.failures.iter().cloned());
    if !failures.is_empty() {
        for f in &failures {
            eprintln!("FAILED: {f}");
        }
        bail!("{} failure(s)", failures.len());
    }
    println!("the service survived");
    Ok(())
}
