//! `pitchside score`: the Score Vision validator's keypoint score of an answer, computed
//! locally (crate `pitchside-score`); `run --score` and `bench --score` use it too. The
//! score runs on OpenCV (the validator's line detection and homography): a build without
//! the `opencv` feature (the self-contained binary) has the command, and says it cannot.

use std::path::{Path, PathBuf};

use anyhow::Result;
use pitchside_engine::response::Response;

#[cfg(feature = "opencv")]
pub use pitchside_score::KeypointScore;

/// What a build without OpenCV cannot compute: no value exists.
#[cfg(not(feature = "opencv"))]
#[derive(Debug)]
pub enum KeypointScore {}

#[cfg(not(feature = "opencv"))]
impl std::fmt::Display for KeypointScore {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {}
    }
}

#[cfg(not(feature = "opencv"))]
impl serde::Serialize for KeypointScore {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        match *self {}
    }
}

/// Why the score is unavailable, for each way of asking for it.
#[cfg(not(feature = "opencv"))]
fn unavailable(what: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{what} needs OpenCV (the validator's line detection and homography), and this \
         pitchside was built without it (the self-contained build); score the answer with a \
         build with the default features: pitchside score --video VIDEO --answer ANSWER.json"
    )
}

/// Fails early (before models load and a video runs) when `--score` is asked of a build
/// that cannot score.
pub fn check_available(asked: bool, flag: &str) -> Result<()> {
    #[cfg(not(feature = "opencv"))]
    if asked {
        return Err(unavailable(flag));
    }
    let _ = (asked, flag);
    Ok(())
}

/// Which form of an answer is scored, for `score --help`.
const STORED_FORM: &str = "\
The answer is scored as the validator stores it, not as sent: the validator's
send_challenge.py (optimize_response_data) rewrites every response before storing it, and
later scores the stored form. The frames list becomes a dict keyed by frame_number, and every
keypoint and bbox number becomes round(float(x), 2) (Python's rounding: ties to even on the
binary value). So integer keypoints score normally, unrounded coordinates are scored at two
decimals, a `frames` that is a dict (not a list) is dropped and scores 0, and an answer the
rewrite fails on (a frame without frame_number, say) is never stored, so never scored.
run --score and bench --score score their result the same way.";

#[derive(clap::Args)]
#[command(after_long_help = STORED_FORM)]
pub struct ScoreArgs {
    /// The video the answer is for.
    #[arg(long)]
    pub video: PathBuf,
    /// The answer (Score Vision JSON, as `run` writes it and a miner sends it), scored in
    /// the form the validator stores it: coordinates rounded to 2 decimals (see --help).
    #[arg(long)]
    pub answer: PathBuf,
    /// Print every component as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[cfg(feature = "opencv")]
pub fn run(args: ScoreArgs) -> Result<()> {
    let score = pitchside_score::score_answer(&args.video, &args.answer)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&score)?);
    } else {
        print!("{score}");
    }
    Ok(())
}

#[cfg(not(feature = "opencv"))]
pub fn run(_args: ScoreArgs) -> Result<()> {
    Err(unavailable("`pitchside score`"))
}

/// The keypoint score of a response just computed for `video`, scored as the validator
/// would score its JSON: through the rewrite it stores answers with, as `score` does (a
/// bench limited to the first N frames is scored on those frames: the response holds only
/// them).
#[cfg(feature = "opencv")]
pub fn of_response(video: &Path, response: &Response) -> Result<KeypointScore> {
    use pitchside_score::{VideoEvidence, score_answer_json};
    let evidence = VideoEvidence::from_video(video)?;
    let json = serde_json::to_vec(response)?;
    let frames: Vec<_> = response
        .frames
        .iter()
        .map(|f| f.frame_number as i64)
        .collect();
    Ok(score_answer_json(&evidence, &json, Some(&frames))?)
}

#[cfg(not(feature = "opencv"))]
pub fn of_response(_video: &Path, _response: &Response) -> Result<KeypointScore> {
    Err(unavailable("--score"))
}
