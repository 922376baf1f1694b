//! A stand-in for the analysis pipeline: really decodes the video with OpenCV and returns one
//! empty frame entry per decoded frame. Swap in the pipeline's analyzer where this is built.
//! Also compiled into `examples/load_test_server.rs`.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use opencv::prelude::*;
use opencv::videoio::{self, VideoCapture};
use pitchside_engine::admission::{self, AdmissionError, AdmittedVideo};
use pitchside_engine::config::{Profile, ProfileName};
use pitchside_engine::response::{DEFAULT_KEYPOINTS, FrameResult, Response};
use pitchside_service::{AnalyzeError, AnalyzeErrorKind, Analyzer};

#[derive(Debug, Default)]
pub struct StandInAnalyzer {
    /// Sleep after each frame, to make a challenge last (busy and shutdown tests).
    per_frame: Duration,
    /// Analyses started / stopped early because of the cancel flag.
    pub started: AtomicUsize,
    pub cancelled: AtomicUsize,
    /// The profile's `max_video_frames` for [`Analyzer::admit`] (None: the default profile).
    max_video_frames: Option<u64>,
}

impl StandInAnalyzer {
    pub fn new() -> StandInAnalyzer {
        StandInAnalyzer::default()
    }

    /// Admits videos of at most `n` frames (and the default profile's frame size).
    pub fn with_max_video_frames(n: u64) -> StandInAnalyzer {
        StandInAnalyzer {
            max_video_frames: Some(n),
            ..Default::default()
        }
    }

    pub fn slow(per_frame: Duration) -> StandInAnalyzer {
        StandInAnalyzer {
            per_frame,
            ..Default::default()
        }
    }
}

impl Analyzer for StandInAnalyzer {
    fn admit(&self, video: &Path) -> Result<AdmittedVideo, AdmissionError> {
        let mut profile = Profile::defaults(ProfileName::Cpu);
        if let Some(n) = self.max_video_frames {
            profile.max_video_frames = n;
        }
        admission::admit(&profile, video)
    }

    fn analyze(
        &self,
        video: &AdmittedVideo,
        challenge_id: &str,
        cancel: &AtomicBool,
    ) -> Result<Response, AnalyzeError> {
        let video = video.path();
        self.started.fetch_add(1, Ordering::SeqCst);
        let t0 = Instant::now();
        let decode = |e: opencv::Error| AnalyzeError::new(AnalyzeErrorKind::Video, e.to_string());
        let mut cap =
            VideoCapture::from_file(&*video.to_string_lossy(), videoio::CAP_ANY).map_err(decode)?;
        if !cap.is_opened().map_err(decode)? {
            return Err(AnalyzeError::new(
                AnalyzeErrorKind::Video,
                format!("{}: not a video", video.display()),
            ));
        }
        let mut frames = Vec::new();
        let mut mat = opencv::core::Mat::default();
        while cap.read(&mut mat).map_err(decode)? && !mat.empty() {
            if cancel.load(Ordering::SeqCst) {
                self.cancelled.fetch_add(1, Ordering::SeqCst);
                break;
            }
            frames.push(FrameResult::new(
                frames.len() as u64,
                &[[0.0; 2]; DEFAULT_KEYPOINTS],
                Vec::new(),
            ));
            if !self.per_frame.is_zero() {
                std::thread::sleep(self.per_frame);
            }
        }
        Ok(Response {
            challenge_id: challenge_id.into(),
            frames,
            processing_time: t0.elapsed().as_secs_f64(),
            partial: false,
            error: None,
        })
    }
}
