//! What the service runs on a downloaded video: the [`Analyzer`] trait, and
//! [`PipelineAnalyzer`], its implementation over the engine's pipeline.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;

use pitchside_engine::pipeline::{Pipeline, PipelineError, RunOptions};
use pitchside_engine::response::Response;

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
        video: &Path,
        challenge_id: &str,
        cancel: &AtomicBool,
    ) -> Result<Response, AnalyzeError>;
}

/// An analysis failure. `kind` labels the `errors_total` metric (e.g. `decode`, `model`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AnalyzeError {
    pub kind: String,
    pub message: String,
}

impl AnalyzeError {
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> AnalyzeError {
        AnalyzeError {
            kind: kind.into(),
            message: message.into(),
        }
    }
}

/// The service's analyzer: one loaded pipeline, one video at a time (the service's slot
/// count decides how many challenges wait for it).
pub struct PipelineAnalyzer {
    pipeline: Mutex<Pipeline>,
}

impl PipelineAnalyzer {
    pub fn new(pipeline: Pipeline) -> PipelineAnalyzer {
        PipelineAnalyzer {
            pipeline: Mutex::new(pipeline),
        }
    }
}

impl Analyzer for PipelineAnalyzer {
    fn analyze(
        &self,
        video: &Path,
        challenge_id: &str,
        cancel: &AtomicBool,
    ) -> Result<Response, AnalyzeError> {
        // A panic in an earlier challenge poisons the lock, not the models: keep serving.
        let mut p = self.pipeline.lock().unwrap_or_else(|e| e.into_inner());
        let opts = RunOptions {
            challenge_id: challenge_id.to_string(),
            cancel: Some(cancel),
            progress: None,
            max_frames: None,
            ..Default::default()
        };
        let (response, stats) = p.run(video, &opts).map_err(|e| match &e {
            PipelineError::Video(_) => AnalyzeError::new("video", e.to_string()),
            PipelineError::Host(_) | PipelineError::WarmUp { .. } => {
                AnalyzeError::new("plugin", e.to_string())
            }
        })?;
        tracing::info!(
            challenge_id,
            frames = response.frames.len(),
            seconds = stats.wall_s,
            partial = response.partial,
            "challenge analysed"
        );
        Ok(response)
    }
}
