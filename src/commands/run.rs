//! `pitchside run`: a video through the pipeline, Score Vision JSON out.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};
use pitchside_engine::config::Deployment;
use pitchside_engine::pipeline::{FramePixels, Processed, RunOptions};
use pitchside_fetch::{Downloaded, Downloader, Source};

use crate::deployment::DeploymentArgs;

#[derive(clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub deployment: DeploymentArgs,
    /// Write the JSON here instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also write the video with boxes, ids and keypoints drawn, a ring in each object's
    /// team colour, and a radar of the pitch (a bird's-eye inset) where the frame has a
    /// homography.
    #[arg(long)]
    pub annotate: Option<PathBuf>,
    /// Also print the validator's keypoint score of the result (as `pitchside score`).
    #[arg(long)]
    pub score: bool,
    /// Also write the pitch analytics of the result here (as `pitchside analyze`: JSON, or
    /// CSV when the name ends in .csv, with the tracks beside it in NAME-tracks.csv).
    #[arg(long)]
    pub analytics: Option<PathBuf>,
    /// challenge_id to put in the response.
    #[arg(long, default_value = "local")]
    pub challenge_id: String,
    /// The video: a file, or an http(s) URL, streamed to a temporary file first (removed
    /// afterwards) with the size cap, timeouts and redirect limit of the deployment's
    /// `service.download`. Unlike `serve`, private and loopback addresses are allowed (a
    /// video on one's own network is normal here).
    pub source: PathBuf,
}

pub fn run(args: RunArgs) -> Result<()> {
    // What can be checked in milliseconds is checked before the models load and the
    // analysis runs (minutes): the input, and that the result can be written.
    let source = match args.source.to_str() {
        Some(s) => Source::parse(s)?,
        // Not UTF-8, so not a URL.
        None => Source::File(args.source.clone()),
    };
    crate::commands::score::check_available(args.score, "--score")?;
    crate::commands::analyze::check_available(args.analytics.is_some())?;
    if let Some(out) = &args.analytics {
        check_writable(out)?;
    }
    if args.annotate.is_some() && !pitchside_engine::media::CAN_DRAW {
        return Err(pitchside_engine::media::MediaError::NeedsOpenCv {
            what: "the annotated video (--annotate)",
        }
        .into());
    }
    if let Some(out) = &args.out {
        check_writable(out)?;
    }
    let resolved = args.deployment.resolve()?;
    // Ctrl-C (or SIGTERM) stops the download, or the analysis at its next batch: the frames
    // done so far are written, marked partial, a downloaded video is removed, exit 130; a
    // second one ends the process at once.
    let interrupted = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&interrupted))
            .and_then(|_| signal_hook::flag::register(sig, Arc::clone(&interrupted)))
            .context("installing the Ctrl-C handler")?;
    }
    // Kept until the end of `run`: dropping it (on success or on any error) deletes the file.
    let mut download = None;
    let profile = resolved.effective()?.profile;
    // The engine's admission (the profile's bounds, as `serve` checks them, with the same
    // message), before the models load.
    let video = match source {
        Source::File(path) => pitchside_engine::admission::admit(&profile, &path)?,
        Source::Url(url) => {
            let Some(downloaded) = fetch(&url, &resolved.deployment, &interrupted)? else {
                // The unfinished download (and its temporary file) is dropped already.
                eprintln!("interrupted during the download of {url}");
                std::process::exit(130);
            };
            let admitted = pitchside_engine::admission::admit(&profile, downloaded.file.path())
                .map_err(|e| {
                    // As `serve` says it: the URL, not the temporary file's name.
                    anyhow::anyhow!("{url}: {}", e.without_path())
                })?;
            download = Some(downloaded);
            admitted
        }
    };
    let mut pipeline = crate::deployment::load_pipeline(resolved)?;
    if interrupted.load(Ordering::Relaxed) {
        drop(download);
        eprintln!("interrupted before the analysis");
        std::process::exit(130);
    }
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} frames  {per_sec}  ETA {eta}",
            )
            .expect("template"),
        );
        b
    });
    let progress = |done: u64, total: u64| {
        if let Some(b) = &bar {
            b.set_length(total.max(done));
            b.set_position(done);
        }
    };
    tracing::info!(video = %args.source.display(), "analysing");
    // The analytics' teams need shirt colours: read off the frames as they are analysed.
    let shirts = crate::commands::analyze::Shirts::default();
    let collect = |p: &Processed, px: &FramePixels<'_>| shirts.collect(p, px);
    let wants_shirts = args.analytics.is_some() || args.annotate.is_some();
    let opts = RunOptions {
        challenge_id: args.challenge_id.clone(),
        cancel: Some(&interrupted),
        progress: Some(&progress),
        max_frames: None,
        on_frame_pixels: wants_shirts.then_some(&collect as _),
        ..Default::default()
    };
    let (response, stats) = pipeline.run(&video, &opts)?;
    let video = video.path();
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    tracing::info!(
        frames = response.frames.len(),
        processed = stats.processed_frames,
        seconds = stats.wall_s,
        fps = stats.source_frames as f64 / stats.wall_s.max(1e-9),
        "done"
    );
    if let Some(e) = &response.error {
        tracing::warn!(error = %e, "the result is partial");
    }
    let json = serde_json::to_string(&response)?;
    // A failed write (the folder removed meanwhile, a full disk) must not lose the
    // analysis: the result goes to the working directory, and the error says where.
    let write_failure = match &args.out {
        Some(p) => {
            let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
            write_out(p, &json, &cwd).err()
        }
        None => {
            println!("{json}");
            None
        }
    };
    if args.score {
        eprint!("{}", crate::commands::score::of_response(video, &response)?);
    }
    crate::commands::analyze::after_run(
        video,
        &response,
        &shirts,
        args.analytics.as_deref(),
        args.annotate.as_deref(),
    )?;
    drop(download);
    if let Some(e) = write_failure {
        return Err(e);
    }
    if interrupted.load(Ordering::Relaxed) {
        // 128 + SIGINT, as a shell reports an interrupted command; the output is written.
        std::process::exit(130);
    }
    if response.partial {
        // Written, but not the whole video (a truncated file, a frame over the bounds, a
        // detector failure): scripts tell it from a complete result by the exit code.
        std::process::exit(EXIT_PARTIAL);
    }
    Ok(())
}

/// `run`'s exit code when the result was written but is partial (`"partial": true`, with
/// the reason in `"error"`): 0 is a complete result, 1 an error with no result, 130 an
/// interrupted run.
pub const EXIT_PARTIAL: i32 = 3;

/// Downloads `url` (`Downloader::for_local_use`: the deployment's `service.download`,
/// private addresses allowed); `None` if `interrupted` was set first (the unfinished download
/// is dropped, which removes its file).
fn fetch(
    url: &str,
    deployment: &Deployment,
    interrupted: &AtomicBool,
) -> Result<Option<Downloaded>> {
    let downloader = Downloader::for_local_use(deployment)?;
    tracing::info!(%url, "downloading");
    let Some(downloaded) = downloader.fetch_blocking(url, interrupted)? else {
        return Ok(None);
    };
    tracing::info!(
        bytes = downloaded.bytes,
        seconds = downloaded.elapsed.as_secs_f64(),
        attempts = downloaded.attempts,
        "downloaded"
    );
    Ok(Some(downloaded))
}

/// Fails when `out` cannot be created or written; leaves an existing file as it is.
fn check_writable(out: &Path) -> Result<()> {
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.is_dir()
    {
        bail!(
            "--out {}: the folder {} does not exist",
            out.display(),
            dir.display()
        );
    }
    let existed = out.exists();
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(out)
        .with_context(|| format!("--out {}: cannot write there", out.display()))?;
    if !existed {
        // Only a probe: a run that fails later leaves no empty result behind.
        let _ = std::fs::remove_file(out);
    }
    Ok(())
}

/// Writes the result to `out`; when that fails, to a new file in `fallback_dir` (else to
/// stdout), and returns the error saying where the result went.
fn write_out(out: &Path, json: &str, fallback_dir: &Path) -> Result<()> {
    let Err(e) = std::fs::write(out, json) else {
        return Ok(());
    };
    let name = format!(
        "pitchside-result-{}-{}.json",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0)
    );
    let fallback = fallback_dir.join(name);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&fallback)
        .and_then(|mut f| std::io::Write::write_all(&mut f, json.as_bytes()));
    match written {
        Ok(()) => bail!(
            "cannot write {}: {e}; the result was written to {} instead",
            out.display(),
            fallback.display()
        ),
        Err(e2) => {
            println!("{json}");
            bail!(
                "cannot write {}: {e}, nor {}: {e2}; the result was printed to stdout instead",
                out.display(),
                fallback.display()
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_puts_the_result_in_the_fallback_folder_and_says_where() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("gone/x.json");
        let msg = write_out(&out, "{\"frames\":[]}", dir.path())
            .unwrap_err()
            .to_string();
        let written: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        assert_eq!(written.len(), 1, "{written:?}");
        assert_eq!(
            std::fs::read_to_string(&written[0]).unwrap(),
            "{\"frames\":[]}"
        );
        assert!(
            msg.contains("cannot write") && msg.contains("gone/x.json"),
            "{msg}"
        );
        assert!(msg.contains(&*written[0].to_string_lossy()), "{msg}");
        // A writable path is written as asked.
        write_out(&dir.path().join("y.json"), "{}", dir.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("y.json")).unwrap(),
            "{}"
        );
    }

    #[test]
    fn writability_is_checked_without_leaving_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let msg = check_writable(&dir.path().join("missing-dir/x.json"))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("missing-dir") && msg.contains("does not exist"),
            "{msg}"
        );
        let fresh = dir.path().join("x.json");
        check_writable(&fresh).unwrap();
        assert!(!fresh.exists());
        std::fs::write(&fresh, "old").unwrap();
        check_writable(&fresh).unwrap();
        assert_eq!(std::fs::read_to_string(&fresh).unwrap(), "old");
    }
}
