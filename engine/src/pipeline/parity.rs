//! The benchmark-only comparison of frame conversions (`pitchside bench
//! --conversion-parity`): each detector on model-size frames against the same detector on
//! the exact path's full-size frames.

use pitchside_plugin::{Detection, PluginError};
use serde::Serialize;

use super::detect::{decoder_outputs, to_source_pixels};
use super::{Pipeline, PipelineError};
use crate::admission::AdmittedVideo;
use crate::config::FrameConversion;
use crate::video::{DecodeOptions, DecoderEvent, Output};

/// How one detector's detections on frames converted at model size compare with its
/// detections on the exact path's full-size frames (`pitchside bench --conversion-parity`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConversionParity {
    pub role: String,
    /// The size the detector asked for (`None`: it reads full-size frames either way).
    pub input_size: Option<(u32, u32)>,
    pub frames: u64,
    pub exact_detections: u64,
    pub fast_detections: u64,
    /// Pairs of the same class with IoU of at least 0.5, matched greedily by exact score.
    pub matched: u64,
    pub mean_iou: f64,
    pub min_iou: f64,
    pub mean_abs_score_delta: f64,
    pub max_abs_score_delta: f64,
    /// Pose models: mean distance in source pixels between matched keypoints seen in both.
    pub mean_keypoint_px: f64,
    #[serde(skip)]
    keypoints_seen: u64,
}

fn iou(a: &[f32; 4], b: &[f32; 4]) -> f64 {
    pitchside_models::postprocess::box_iou(a, b) as f64
}

impl ConversionParity {
    fn add(&mut self, exact: &[Detection], fast: &[Detection]) {
        self.frames += 1;
        self.exact_detections += exact.len() as u64;
        self.fast_detections += fast.len() as u64;
        let mut used = vec![false; fast.len()];
        let (mut ious, mut deltas, mut kp) = (Vec::new(), Vec::new(), Vec::new());
        for e in exact {
            let best = fast
                .iter()
                .enumerate()
                .filter(|(j, f)| !used[*j] && f.class_id == e.class_id)
                .map(|(j, f)| (j, iou(&e.bbox, &f.bbox)))
                .max_by(|a, b| a.1.total_cmp(&b.1));
            if let Some((j, v)) = best
                && v >= 0.5
            {
                used[j] = true;
                ious.push(v);
                deltas.push((e.score - fast[j].score).abs() as f64);
                for (a, b) in e.keypoints.iter().zip(&fast[j].keypoints) {
                    if a[2] >= 0.5 && b[2] >= 0.5 {
                        kp.push((((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)) as f64).sqrt());
                    }
                }
            }
        }
        let n0 = self.matched as f64;
        let n = ious.len() as f64;
        if n > 0.0 {
            let total = n0 + n;
            self.mean_iou = (self.mean_iou * n0 + ious.iter().sum::<f64>()) / total;
            self.mean_abs_score_delta =
                (self.mean_abs_score_delta * n0 + deltas.iter().sum::<f64>()) / total;
            let mi = ious.iter().cloned().fold(f64::INFINITY, f64::min);
            self.min_iou = if self.matched == 0 {
                mi
            } else {
                self.min_iou.min(mi)
            };
            let md = deltas.iter().cloned().fold(0.0, f64::max);
            self.max_abs_score_delta = self.max_abs_score_delta.max(md);
        }
        self.matched += ious.len() as u64;
        if !kp.is_empty() {
            let (k0, k) = (self.keypoints_seen as f64, kp.len() as f64);
            self.mean_keypoint_px =
                (self.mean_keypoint_px * k0 + kp.iter().sum::<f64>()) / (k0 + k);
            self.keypoints_seen += kp.len() as u64;
        }
    }
}

impl Pipeline {
    /// Decodes `path` once into both forms (full-size BGR, and each detector's model size)
    /// and runs every detector on both, frame by frame: what choosing `model_size` over
    /// `exact` changes in the detections.
    pub fn conversion_parity(
        &mut self,
        video: &AdmittedVideo,
        stride: u32,
        max_frames: Option<u64>,
    ) -> Result<Vec<ConversionParity>, PipelineError> {
        let p = self.effective.profile.clone();
        let decode = DecodeOptions {
            max_frames,
            threads: p.decode_threads,
            ..DecodeOptions::new(stride, p.prefetch_frames as usize)
        };
        let mut inputs = Vec::new();
        let mut full = 0;
        let detectors = &self.detectors;
        let decoder = video.decode(&decode, |info| {
            let (mut outputs, which) = decoder_outputs(detectors, FrameConversion::ModelSize, info);
            full = match outputs.iter().position(|o| *o == Output::Full) {
                Some(k) => k,
                None => {
                    outputs.push(Output::Full);
                    outputs.len() - 1
                }
            };
            inputs = which;
            outputs
        })?;
        let info = decoder.info;
        let mut report: Vec<ConversionParity> = self
            .detectors
            .iter()
            .zip(&inputs)
            .map(|(slot, &k)| ConversionParity {
                role: slot.role.to_string(),
                input_size: match decoder.outputs()[k] {
                    Output::Full => None,
                    Output::Scaled { width, height } => Some((width, height)),
                },
                ..Default::default()
            })
            .collect();
        while let Ok(DecoderEvent::Frame(f)) = decoder.recv() {
            for ((slot, &k), r) in self.detectors.iter_mut().zip(&inputs).zip(&mut report) {
                let err = |e: PluginError| PipelineError::Parity {
                    role: slot.role,
                    message: e.to_string(),
                };
                let exact = slot
                    .detector
                    .detect(&[f.images[full].frame(f.frame_number)])
                    .map_err(err)?;
                let mut fast = slot
                    .detector
                    .detect(&[f.images[k].frame(f.frame_number)])
                    .map_err(err)?;
                if let Output::Scaled { width, height } = decoder.outputs()[k] {
                    to_source_pixels(
                        &mut fast,
                        info.width as f32 / width as f32,
                        info.height as f32 / height as f32,
                    );
                }
                r.add(&exact[0], &fast[0]);
            }
            decoder.recycle(f);
        }
        Ok(report)
    }
}
