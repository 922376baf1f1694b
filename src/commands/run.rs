//! `pitchside run`: a video through the pipeline, Score Vision JSON out.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, Result};
use pitchside_engine::pipeline::RunOptions;

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
    let mut pipeline = args.deployment.resolve()?.into_pipeline()?;
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
    match &args.out {
        Some(p) => {
            std::fs::write(p, &json).with_context(|| format!("cannot write {}", p.display()))?
        }
        None => println!("{json}"),
    }
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
    Ok(())
}
