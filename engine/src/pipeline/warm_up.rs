//! Warm-up planning: the shapes each detector runs at (what `pitchside tune` and `serve`'s
//! warm-up compile and autotune on GPUs), and running them once.

use std::path::Path;
use std::time::{Duration, Instant};

use pitchside_plugin::FrameRef;
use serde::Serialize;

use super::{Pipeline, PipelineError};
use crate::config::Role;

/// One shape a detector runs at: GPU kernels are compiled and autotuned per input shape,
/// so `pitchside tune` and `serve`'s warm-up run each of [`Pipeline::warm_up_shapes`] once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WarmUpShape {
    /// Index of the detector in the pipeline.
    pub detector: usize,
    pub role: Role,
    /// What the detector runs: the model file (built-in YOLO) or the plugin library.
    pub runs: String,
    /// Frames per call: always the profile's batch size (a short last batch is padded on
    /// GPUs).
    pub batch: u32,
    /// Source frame size, width × height.
    pub frame: [u32; 2],
    /// Network input, width × height, as the detector reports it
    /// (`Detector::network_input`: the letterboxed size for YOLO models); unknown for
    /// plugin libraries.
    pub input: Option<[u32; 2]>,
    /// "fp16" or "fp32".
    pub precision: &'static str,
}

impl std::fmt::Display for WarmUpShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = Path::new(&self.runs)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.runs.clone());
        write!(f, "{} ({name}) batch {}", self.role, self.batch)?;
        match self.input {
            Some([w, h]) => write!(f, " {w}x{h}")?,
            None => write!(f, " frames {}x{}", self.frame[0], self.frame[1])?,
        }
        write!(f, " {}", self.precision)
    }
}

impl Pipeline {
    /// Every shape this pipeline runs its detectors at on frames of the given sizes (width,
    /// height): each detector × frame size, at the profile's batch size and precision.
    /// The one list both `pitchside tune` and `serve`'s warm-up run.
    pub fn warm_up_shapes(&self, frames: &[[u32; 2]]) -> Vec<WarmUpShape> {
        let e = &self.effective;
        let batch = e.profile.batch_size.max(1);
        // Half precision applies where the backend has it (`model_device`): CUDA, LibTorch.
        let precision = match e.device.model_device(e.profile.half) {
            pitchside_models::ModelDevice::Cuda { half: true, .. }
            | pitchside_models::ModelDevice::Torch { half: true, .. } => "fp16",
            _ => "fp32",
        };
        let mut out = Vec::new();
        for (detector, (slot, config)) in
            self.detectors.iter().zip(&e.pipeline.detectors).enumerate()
        {
            let builtin = match &config.source {
                crate::config::PluginSource::Builtin(_) => e.models.get(&config.model_role()),
                crate::config::PluginSource::Library(_) => None,
            };
            let runs = match (&config.source, builtin) {
                (_, Some(model)) => model.path.display().to_string(),
                (source, None) => source.describe(),
            };
            for &[w, h] in frames {
                let input = slot.detector.network_input(w, h).map(|(w, h)| [w, h]);
                out.push(WarmUpShape {
                    detector,
                    role: slot.role,
                    runs: runs.clone(),
                    batch,
                    frame: [w, h],
                    input,
                    precision,
                });
            }
        }
        out
    }

    /// Runs one detector once on a batch of blank frames of `shape`, so that no real video
    /// pays for that shape's kernel compilation and GPU autotuning (minutes on a cold
    /// cubecl cache, see BENCHMARKS.md; the results stay in the kernel cache). Returns how
    /// long it took.
    pub fn warm_up_shape(&mut self, shape: &WarmUpShape) -> Result<Duration, PipelineError> {
        let start = Instant::now();
        let [width, height] = shape.frame;
        // Letterbox grey: what padding looks like to the models anyway.
        let data = vec![114u8; width as usize * height as usize * 3];
        let frames: Vec<FrameRef<'_>> = (0..shape.batch)
            .map(|i| FrameRef {
                data: &data,
                width,
                height,
                row_stride: width as usize * 3,
                format: pitchside_plugin::PixelFormat::Bgr8,
                frame_number: i as u64,
            })
            .collect();
        let slot = self
            .detectors
            .get_mut(shape.detector)
            .ok_or_else(|| PipelineError::WarmUp {
                role: shape.role,
                message: format!("the pipeline has no detector {}", shape.detector),
            })?;
        slot.detector
            .detect(&frames)
            .map_err(|e| PipelineError::WarmUp {
                role: shape.role,
                message: e.to_string(),
            })?;
        // Keep the first real run's stage times its own.
        slot.detector.take_stage_times();
        Ok(start.elapsed())
    }

    /// Runs every shape of [`Pipeline::warm_up_shapes`] for `width`×`height` frames, one
    /// after the other (two models tuning at once would disturb each other's timings).
    /// Returns how long it took.
    pub fn warm_up(&mut self, width: u32, height: u32) -> Result<Duration, PipelineError> {
        let start = Instant::now();
        for shape in self.warm_up_shapes(&[[width, height]]) {
            self.warm_up_shape(&shape)?;
        }
        Ok(start.elapsed())
    }
}
