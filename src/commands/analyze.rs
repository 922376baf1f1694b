//! `pitchside analyze`: the pitch analytics of a Score Vision answer (positions in metres,
//! per-track distance and top speed; crate `pitchside-score`, module `analytics`), as
//! `score` gives its score; `run --analytics` writes the same for the run's result, with the
//! shirt colours collected from the run's own frames ([`Shirts`]: the video is not decoded
//! a second time). `--annotate` (of `run`, and of `analyze`) draws the analytics on the
//! video: a ring in each object's colour, and the radar (`pitchside_score::radar`) when the
//! frame has a homography.

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
    /// Also write the video with the answer's boxes and keypoints drawn, a ring in each
    /// object's team colour, and the radar inset where the frame has a homography.
    #[arg(long)]
    pub annotate: Option<PathBuf>,
}

#[cfg(feature = "opencv")]
pub fn run(args: AnalyzeArgs) -> Result<()> {
    use anyhow::Context;
    use pitchside_score::analytics::Shirts as From;
    let json = std::fs::read(&args.answer)
        .with_context(|| format!("reading {}", args.answer.display()))?;
    let a = compute(&args.video, &json, From::Video(&args.video))?;
    write(&a, &args.out, args.format)?;
    if let Some(png) = &args.radar {
        let n = pitchside_score::radar::write_png(&a, args.radar_frame, png)?;
        tracing::info!(path = %png.display(), frame = n, "radar written");
    }
    if let Some(out) = &args.annotate {
        annotate(&args.video, &frame_results(&a), &a, out)?;
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

/// What `run` collects while the video is analysed, for `--analytics` and `--annotate`:
/// each tracked player's shirt colour on each processed frame
/// (`RunOptions::on_frame_pixels`), read off the frames the detectors saw.
#[derive(Default)]
pub struct Shirts {
    #[cfg(feature = "opencv")]
    samples: std::sync::Mutex<pitchside_score::teams::ShirtSamples>,
    /// Time spent sampling, inside the run (ns): logged with the analytics' own cost.
    #[cfg(feature = "opencv")]
    sampling_ns: std::sync::atomic::AtomicU64,
}

impl Shirts {
    /// Samples one processed frame: the players (not goalkeepers, referees or the ball,
    /// which the teams are not clustered from).
    #[cfg(feature = "opencv")]
    pub fn collect(
        &self,
        p: &pitchside_engine::pipeline::Processed,
        px: &pitchside_engine::pipeline::FramePixels<'_>,
    ) {
        use pitchside_score::teams::{BALL, Bgr, GOALKEEPER, REFEREE, shirt_colour};
        let start = std::time::Instant::now();
        let img = Bgr {
            data: px.image.data,
            width: px.image.width as usize,
            height: px.image.height as usize,
            stride: px.image.row_stride,
        };
        let (sx, sy) = (f64::from(px.scale.0), f64::from(px.scale.1));
        let got: Vec<(String, [f64; 3])> = p
            .objects
            .iter()
            .filter(|o| ![BALL, GOALKEEPER, REFEREE].contains(&f64::from(o.class_id)))
            .filter_map(|o| {
                let b = o.bbox.map(f64::from);
                let on_image = [b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy];
                shirt_colour(&img, on_image).map(|c| (o.id.to_string(), c))
            })
            .collect();
        if let Ok(mut s) = self.samples.lock() {
            for (track, c) in got {
                s.add(&track, c);
            }
        }
        let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.sampling_ns
            .fetch_add(ns, std::sync::atomic::Ordering::Relaxed);
    }

    #[cfg(not(feature = "opencv"))]
    pub fn collect(
        &self,
        _p: &pitchside_engine::pipeline::Processed,
        _px: &pitchside_engine::pipeline::FramePixels<'_>,
    ) {
    }
}

/// After a run: the analytics of its response (teams from the shirt colours collected
/// during the run) written to `analytics` (CSV when it ends in `.csv`, else JSON), and the
/// annotated video with the radar written to `annotate`.
#[cfg(feature = "opencv")]
pub fn after_run(
    video: &Path,
    response: &Response,
    shirts: &Shirts,
    analytics: Option<&Path>,
    annotate_out: Option<&Path>,
) -> Result<()> {
    use pitchside_score::analytics::Shirts as From;
    if analytics.is_none() && annotate_out.is_none() {
        return Ok(());
    }
    let start = std::time::Instant::now();
    let json = serde_json::to_vec(response)?;
    let samples = shirts
        .samples
        .lock()
        .map(|mut s| std::mem::take(&mut *s))
        .unwrap_or_default();
    let a = compute(video, &json, From::Sampled(&samples))?;
    if let Some(out) = analytics {
        let csv = out
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        write(&a, out, if csv { Format::Csv } else { Format::Json })?;
    }
    // What the analytics add to a run (BENCHMARKS.md): sampling during it, the rest after.
    tracing::info!(
        sampling_s = shirts
            .sampling_ns
            .load(std::sync::atomic::Ordering::Relaxed) as f64
            * 1e-9,
        after_run_s = start.elapsed().as_secs_f64(),
        "analytics cost"
    );
    if let Some(out) = annotate_out {
        annotate(video, &response.frames, &a, out)?;
    }
    Ok(())
}

#[cfg(not(feature = "opencv"))]
pub fn after_run(
    _video: &Path,
    _response: &Response,
    _shirts: &Shirts,
    analytics: Option<&Path>,
    annotate_out: Option<&Path>,
) -> Result<()> {
    check_available(analytics.is_some())?;
    if annotate_out.is_some() {
        return Err(pitchside_engine::media::MediaError::NeedsOpenCv {
            what: "the annotated video (--annotate)",
        }
        .into());
    }
    Ok(())
}

#[cfg(feature = "opencv")]
fn compute(
    video: &Path,
    answer: &[u8],
    shirts: pitchside_score::analytics::Shirts<'_>,
) -> Result<pitchside_score::analytics::Analytics> {
    use pitchside_score::analytics::{VideoInfo, analyze_answer};
    let info = VideoInfo::probe(video)?;
    let a = analyze_answer(answer, info, shirts)?;
    if let Some(note) = &a.note {
        tracing::warn!("{note}");
    }
    Ok(a)
}

#[cfg(feature = "opencv")]
fn write(a: &pitchside_score::analytics::Analytics, out: &Path, format: Format) -> Result<()> {
    use anyhow::Context;
    match format {
        Format::Json => std::fs::write(out, serde_json::to_string(a)?)
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
    Ok(())
}

/// The video with `frames` drawn (the engine's boxes, ids and keypoints), then the
/// analytics' layer: a ring in each object's colour, the radar where there is a homography.
#[cfg(feature = "opencv")]
fn annotate(
    video: &Path,
    frames: &[pitchside_engine::response::FrameResult],
    a: &pitchside_score::analytics::Analytics,
    out: &Path,
) -> Result<()> {
    use pitchside_score::analytics::FrameAnalytics;
    let by_number: std::collections::HashMap<i64, &FrameAnalytics> =
        a.frames.iter().map(|f| (f.frame_number, f)).collect();
    let mut layer = |f: &pitchside_engine::response::FrameResult,
                     m: &mut opencv::core::Mat|
     -> Result<(), String> {
        match i64::try_from(f.frame_number)
            .ok()
            .and_then(|n| by_number.get(&n))
        {
            Some(fa) => pitchside_score::radar::overlay(a, fa, m).map_err(|e| e.to_string()),
            None => Ok(()),
        }
    };
    pitchside_engine::media::annotate_video(video, frames, out, Some(&mut layer))?;
    tracing::info!(path = %out.display(), "annotated video written");
    Ok(())
}

/// An answer's frames as the engine draws them (`analyze --annotate`): ids that are not
/// non-negative integers are drawn as 0, frames with negative numbers left out.
#[cfg(feature = "opencv")]
fn frame_results(
    a: &pitchside_score::analytics::Analytics,
) -> Vec<pitchside_engine::response::FrameResult> {
    use pitchside_engine::response::{FrameResult, ObjectResult};
    let mut frames: Vec<FrameResult> = a
        .frames
        .iter()
        .filter_map(|f| {
            Some(FrameResult {
                frame_number: u64::try_from(f.frame_number).ok()?,
                keypoints: f.keypoints.clone(),
                objects: f
                    .objects
                    .iter()
                    .map(|o| ObjectResult {
                        id: o.id.as_u64().unwrap_or(0),
                        bbox: o.bbox,
                        class_id: o
                            .class_id
                            .filter(|c| c.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(c))
                            .map_or(u32::MAX, |c| c as u32),
                    })
                    .collect(),
            })
        })
        .collect();
    frames.sort_by_key(|f| f.frame_number);
    frames
}

/// `out.csv` → `out-tracks.csv`, beside it.
#[cfg(feature = "opencv")]
fn tracks_path(out: &Path) -> PathBuf {
    let stem = out
        .file_stem()
        .map_or_else(|| "analytics".into(), |s| s.to_string_lossy().into_owned());
    out.with_file_name(format!("{stem}-tracks.csv"))
}
