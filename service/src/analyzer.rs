//! What the service runs on a downloaded video: the [`Analyzer`] trait, and
//! [`PipelineAnalyzer`], its implementation over the engine's pool of pipelines.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use pitchside_engine::admission::{self, AdmissionError, AdmittedVideo};
use pitchside_engine::config::{DeviceId, Profile, ProfileName};
use pitchside_engine::pipeline::{Pipeline, PipelineError, RunOptions};
use pitchside_engine::pool::PipelinePool;
use pitchside_engine::response::Response;

use crate::metrics::{Histogram, PipelineGauge, PipelineGauges};

/// Turns a local video into a Score Vision answer. Implemented by the analysis pipeline
/// ([`PipelineAnalyzer`]); the tests use a stand-in that only decodes frames.
pub trait Analyzer: Send + Sync + 'static {
    /// Analyses a local video file (blocking, CPU/GPU heavy: the service calls it in
    /// spawn_blocking). `challenge_id` is the id as text, for the answer and the logs; the
    /// service echoes the validator's id as it was sent whatever the answer carries.
    /// `cancel` becomes true when the service wants it to stop early (it may return partial
    /// results).
    fn analyze(
        &self,
        video: &AdmittedVideo,
        challenge_id: &str,
        cancel: &AtomicBool,
    ) -> Result<Response, AnalyzeError>;

    /// The engine's admission of a downloaded video to this analyzer (blocking: one probe,
    /// every bound of the profile checked), before [`Analyzer::analyze`] decodes anything:
    /// the service answers 422 when it fails. The default holds it to the default profile.
    fn admit(&self, video: &Path) -> Result<AdmittedVideo, AdmissionError> {
        admission::admit(&Profile::defaults(ProfileName::Cpu), video)
    }

    /// Pipelines free now; `None` when the analyzer has no such limit (the stand-ins). The
    /// service is available only while one is free.
    fn free_pipelines(&self) -> Option<usize> {
        None
    }

    /// Each pipeline's state and the challenges waiting for one, for `/metrics`.
    fn pipelines(&self) -> Option<PipelineGauges> {
        None
    }
}

/// What kind of analysis failure: labels the `errors_total{kind="analysis_…"}` metric and
/// the answer's `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnalyzeErrorKind {
    /// Stopped before a pipeline was free (the validator hung up, or the drain timed out).
    Cancelled,
    /// The video could not be decoded.
    Video,
    /// A detector or tracker plugin failed.
    Plugin,
}

impl AnalyzeErrorKind {
    pub fn label(self) -> &'static str {
        match self {
            AnalyzeErrorKind::Cancelled => "analysis_cancelled",
            AnalyzeErrorKind::Video => "analysis_video",
            AnalyzeErrorKind::Plugin => "analysis_plugin",
        }
    }
}

/// An analysis failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AnalyzeError {
    pub kind: AnalyzeErrorKind,
    pub message: String,
}

impl AnalyzeError {
    pub fn new(kind: AnalyzeErrorKind, message: impl Into<String>) -> AnalyzeError {
        AnalyzeError {
            kind,
            message: message.into(),
        }
    }
}

/// The service's analyzer: a pool of loaded pipelines ([`PipelinePool`]), one video per
/// pipeline at a time. A challenge waits for a free pipeline (the service's slot count
/// decides how many may wait); `/availability` says false while none is free.
pub struct PipelineAnalyzer {
    pool: Arc<PipelinePool>,
    /// Analysis time per pipeline, in slot order.
    latency: Mutex<Vec<Histogram>>,
}

impl PipelineAnalyzer {
    /// One loaded pipeline on the CPU or the first GPU.
    pub fn new(pipeline: Pipeline) -> PipelineAnalyzer {
        let device = DeviceId::new(pipeline.effective().device, 0);
        Self::with_pool(Arc::new(PipelinePool::single(pipeline, device)))
    }

    pub fn with_pool(pool: Arc<PipelinePool>) -> PipelineAnalyzer {
        let latency = Mutex::new(vec![Histogram::default(); pool.len()]);
        PipelineAnalyzer { pool, latency }
    }

    pub fn pool(&self) -> &Arc<PipelinePool> {
        &self.pool
    }
}

impl Analyzer for PipelineAnalyzer {
    fn admit(&self, video: &Path) -> Result<AdmittedVideo, AdmissionError> {
        self.pool.admit(video)
    }

    fn analyze(
        &self,
        video: &AdmittedVideo,
        challenge_id: &str,
        cancel: &AtomicBool,
    ) -> Result<Response, AnalyzeError> {
        let Some(mut lease) = self.pool.acquire(Some(cancel)) else {
            return Err(AnalyzeError::new(
                AnalyzeErrorKind::Cancelled,
                "stopped while waiting for a free pipeline",
            ));
        };
        let opts = RunOptions {
            challenge_id: challenge_id.to_string(),
            cancel: Some(cancel),
            progress: None,
            max_frames: None,
            ..Default::default()
        };
        let result = lease.run(video, &opts);
        let slot = lease.slot();
        let device = lease.label().to_string();
        drop(lease);
        let (response, stats) = result.map_err(|e| match &e {
            PipelineError::Video(_) => AnalyzeError::new(AnalyzeErrorKind::Video, e.to_string()),
            PipelineError::Host(_)
            | PipelineError::WarmUp { .. }
            | PipelineError::Parity { .. }
            | PipelineError::Frames(_) => {
                AnalyzeError::new(AnalyzeErrorKind::Plugin, e.to_string())
            }
        })?;
        if let Some(h) = self
            .latency
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(slot)
        {
            h.observe(stats.wall_s);
        }
        tracing::info!(
            challenge_id,
            device,
            frames = response.frames.len(),
            seconds = stats.wall_s,
            partial = response.partial,
            "challenge analysed"
        );
        Ok(response)
    }

    fn free_pipelines(&self) -> Option<usize> {
        Some(self.pool.free())
    }

    fn pipelines(&self) -> Option<PipelineGauges> {
        let latency = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        let slots = self
            .pool
            .status()
            .into_iter()
            .zip(latency.iter())
            .map(|(s, h)| PipelineGauge {
                device: s.label,
                busy: s.busy,
                runs: s.runs,
                failures: s.failures,
                busy_s: s.busy_s,
                latency: h.clone(),
            })
            .collect();
        Some(PipelineGauges {
            slots,
            queue: self.pool.waiting(),
        })
    }
}
