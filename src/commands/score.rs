//! `pitchside score`: the Score Vision validator's keypoint score of an answer, computed
//! locally (crate `pitchside-score`); `run --score` and `bench --score` use it too.

use std::path::{Path, PathBuf};

use anyhow::Result;
use pitchside_engine::response::Response;
use pitchside_score::{KeypointScore, VideoEvidence, score_answer_json};

#[derive(clap::Args)]
pub struct ScoreArgs {
    /// The video the answer is for.
    #[arg(long)]
    pub video: PathBuf,
    /// The answer (Score Vision JSON, as `run` writes it).
    #[arg(long)]
    pub answer: PathBuf,
    /// Print every component as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: ScoreArgs) -> Result<()> {
    let score = pitchside_score::score_answer(&args.video, &args.answer)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&score)?);
    } else {
        print!("{score}");
    }
    Ok(())
}

/// The keypoint score of a response just computed for `video`, scored as the validator
/// would score its JSON (a bench limited to the first N frames is scored on those frames:
/// the response holds only them).
pub fn of_response(video: &Path, response: &Response) -> Result<KeypointScore> {
    let evidence = VideoEvidence::from_video(video)?;
    let json = serde_json::to_vec(response)?;
    let frames: Vec<_> = response
        .frames
        .iter()
        .map(|f| f.frame_number as i64)
        .collect();
    Ok(score_answer_json(&evidence, &json, Some(&frames))?)
}
