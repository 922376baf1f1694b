//! `pitchside run`: a video through the pipeline, Score Vision JSON out.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use pitchside_engine::pipeline::RunOptions;
use pitchside_engine::video::VideoInfo;

use crate::deployment::DeploymentArgs;

#[derive(clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub deployment: DeploymentArgs,
    /// Write the JSON here instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also write the video with boxes, ids and keypoints drawn.
    #[arg(long)]
    pub annotate: Option<PathBuf>,
    /// Also print the validator's keypoint score of the result (as `pitchside score`).
    #[arg(long)]
    pub score: bool,
    /// challenge_id to put in the response.
    #[arg(long, default_value = "local")]
    pub challenge_id: String,
    /// The video file.
    pub source: PathBuf,
}

pub fn run(args: RunArgs) -> Result<()> {
    // What can be checked in milliseconds is checked before the models load and the
    // analysis runs (minutes): the input, and that the result can be written.
    let info = check_source(&args.source)?;
    crate::commands::score::check_available(args.score, "--score")?;
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
    // The profile's bounds on the video (as `serve` checks them, with the same message).
    resolved
        .effective()?
        .profile
        .check_video(&info)
        .with_context(|| format!("{}", args.source.display()))?;
    let mut pipeline = resolved.into_pipeline()?;
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
    let opts = RunOptions {
        challenge_id: args.challenge_id.clone(),
        cancel: None,
        progress: Some(&progress),
        max_frames: None,
        ..Default::default()
    };
    let (response, stats) = pipeline.run(&args.source, &opts)?;
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
        eprint!(
            "{}",
            crate::commands::score::of_response(&args.source, &response)?
        );
    }
    if let Some(out) = &args.annotate {
        pitchside_engine::media::annotate_video(&args.source, &response.frames, out)?;
        tracing::info!(path = %out.display(), "annotated video written");
    }
    match write_failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Says what the input is when it cannot be a video file: a URL, a directory, nothing.
fn check_source(source: &Path) -> Result<VideoInfo> {
    let s = source.to_string_lossy();
    if let Some((scheme, _)) = s.split_once("://")
        && !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    {
        bail!("{s} is a URL: URLs are not accepted by `run` yet; download it first or use `serve`");
    }
    // Opens it and decodes a frame, as the decoder will (a directory, a missing file, a
    // file that is not a video: each says so).
    Ok(pitchside_engine::video::probe(source)?)
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
