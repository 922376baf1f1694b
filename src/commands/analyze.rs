//! `pitchside analyze`: the pitch analytics of a Score Vision answer (positions in metres,
//! per-track distance and top speed; crate `pitchside-score`, module `analytics`), as
//! `score` gives its score; `run --analytics` writes the same for the run's result.

use std::path::{Path, PathBuf};

use anyhow::Result;
use pitchside_engine::response::Response;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON document: per frame and object, per track.
    Json,
    /// FILE: one row per object and frame; FILE's stem + `-tracks.csv`: one row per track.
    Csv,
}

#[derive(clap::Args)]
pub struct AnalyzeArgs {
    /// The video the answer is for (its size and frame rate are read).
    #[arg(long)]
    pub video: PathBuf,
    /// The answer (Score Vision JSON), read as the validator stores it.
    #[arg(long)]
    pub answer: PathBuf,
    /// Where to write the analytics.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value = "json")]
    pub format: Format,
    /// Also draw the radar (bird's-eye view of the pitch, players in their team's colour)
    /// of one frame as a PNG.
    #[arg(long)]
    pub radar: Option<PathBuf>,
    /// The frame the radar shows (default: the first with a homography).
    #[arg(long, requires = "radar")]
    pub radar_frame: Option<i64>,
}

#[cfg(feature = "opencv")]
pub fn run(args: AnalyzeArgs) -> Result<()> {
    use anyhow::Context;
    let json = std::fs::read(&args.answer)
        .with_context(|| format!("reading {}", args.answer.display()))?;
    let a = write(&args.video, &json, &args.out, args.format)?;
    if let Some(png) = &args.radar {
        let n = pitchside_score::radar::write_png(&a, args.radar_frame, png)?;
        tracing::info!(path = %png.display(), frame = n, "radar written");
    }
    Ok(())
}

#[cfg(not(feature = "opencv"))]
pub fn run(_args: AnalyzeArgs) -> Result<()> {
    anyhow::bail!(
        "`pitchside analyze` needs OpenCV (the homography), and this pitchside was built \
         without it (the self-contained build)"
    )
}

/// Fails early (before a run) when `--analytics` is asked of a build that cannot.
pub fn check_available(asked: bool) -> Result<()> {
    if asked && !cfg!(feature = "opencv") {
        anyhow::bail!(
            "--analytics needs OpenCV (the homography), and this pitchside was built without it"
        );
    }
    Ok(())
}

/// `run --analytics FILE`: the analytics of the response just computed (CSV when FILE ends
/// in `.csv`, else JSON).
pub fn of_response(video: &Path, response: &Response, out: &Path) -> Result<()> {
    let json = serde_json::to_vec(response)?;
    let csv = out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let format = if csv { Format::Csv } else { Format::Json };
    write(video, &json, out, format).map(drop)
}

#[cfg(feature = "opencv")]
fn write(
    video: &Path,
    answer: &[u8],
    out: &Path,
    format: Format,
) -> Result<pitchside_score::analytics::Analytics> {
    use anyhow::Context;
    use pitchside_score::analytics::{VideoInfo, analyze_answer};
    let info = VideoInfo::probe(video)?;
    let a = analyze_answer(answer, info, Some(video))?;
    if let Some(note) = &a.note {
        tracing::warn!("{note}");
    }
    match format {
        Format::Json => std::fs::write(out, serde_json::to_string(&a)?)
            .with_context(|| format!("writing {}", out.display()))?,
        Format::Csv => {
            std::fs::write(out, a.objects_csv())
                .with_context(|| format!("writing {}", out.display()))?;
            let tracks = tracks_path(out);
            std::fs::write(&tracks, a.tracks_csv())
                .with_context(|| format!("writing {}", tracks.display()))?;
        }
    }
    tracing::info!(
        path = %out.display(),
        frames_with_homography = a.frames_with_homography,
        tracks = a.tracks.len(),
        "analytics written"
    );
    Ok(a)
}

#[cfg(not(feature = "opencv"))]
fn write(_video: &Path, _answer: &[u8], _out: &Path, _format: Format) -> Result<()> {
    check_available(true)
}

/// `out.csv` → `out-tracks.csv`, beside it.
#[cfg(feature = "opencv")]
fn tracks_path(out: &Path) -> PathBuf {
    let stem = out
        .file_stem()
        .map_or_else(|| "analytics".into(), |s| s.to_string_lossy().into_owned());
    out.with_file_name(format!("{stem}-tracks.csv"))
}
