//! decode → batch → detect → track → result, one direction.
//!
//! The decoder thread runs ahead by `prefetch` frames; each batch goes to every detector
//! at once (one thread per detector); tracking runs per processed frame in order; the
//! result has one entry for every source frame, skipped frames interpolated.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pitchside_plugin::{Detection, FrameRef, PluginError, Tracker};
use serde::Serialize;

use crate::admission::{AdmissionError, AdmittedVideo};
use crate::config::{Deployment, DeviceId, EffectiveConfig, FrameConversion, Profile, Role};
use crate::device::Backend;
use crate::plugin_host::{DetectorSlot, HostError, build_detectors_on, build_tracker};
use crate::response::{BALL_CLASS, DEFAULT_KEYPOINTS, KEYPOINT_MIN_CONF, processing_time};
/// Re-exported: the response is what a pipeline run yields.
pub use crate::response::{FrameResult, ObjectResult, Response};
use crate::video::{
    DecodeOptions, Decoder, DecoderEvent, Output, Segmenting, VideoError, VideoInfo,
};

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Video(#[from] VideoError),
    #[error(transparent)]
    Host(#[from] HostError),
    #[error("warming up the {role} detector: {message}")]
    WarmUp { role: Role, message: String },
}

/// Where the time went, for `pitchside bench`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunStats {
    pub source_frames: u64,
    pub processed_frames: u64,
    pub batches: u64,
    pub wall_s: f64,
    /// Time the decoder thread spent decoding (overlaps inference).
    pub decode_s: f64,
    /// Time the pipeline waited for decoded frames.
    pub decode_wait_s: f64,
    /// Per detector role: wall time of its calls and, for built-in YOLO, the stages.
    pub detectors: BTreeMap<String, DetectorStats>,
    /// Wall time of each batch's concurrent detection.
    pub detect_wall_s: f64,
    pub tracking_s: f64,
    pub assemble_s: f64,
    /// "software" or "nvdec".
    pub decode_acceleration: String,
    /// Segments decoded in parallel (1: one frame-threaded decoder).
    pub decode_segments: u64,
    /// The profile's `frame_conversion`.
    pub frame_conversion: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DetectorStats {
    pub calls_s: f64,
    pub preprocess_s: f64,
    pub forward_s: f64,
    pub postprocess_s: f64,
}

/// A tracked object on a processed frame, before assembly.
#[derive(Debug, Clone, PartialEq)]
struct Tracked {
    id: u64,
    bbox: [f32; 4],
    score: f32,
    class_id: u32,
}

#[derive(Debug, Clone)]
struct Processed {
    frame_number: u64,
    objects: Vec<Tracked>,
    keypoints: Vec<[f32; 2]>,
}

/// Per-run options.
#[derive(Default)]
pub struct RunOptions<'a> {
    pub challenge_id: String,
    /// Set to stop early; the frames done so far are returned, marked partial.
    pub cancel: Option<&'a AtomicBool>,
    /// Called after each batch with (source frames read so far, container frame count).
    pub progress: Option<&'a (dyn Fn(u64, u64) + Sync)>,
    /// Read at most this many source frames (benchmarks on a prefix of a clip).
    pub max_frames: Option<u64>,
    /// Whether long inputs may be decoded in parallel segments (benchmarks compare).
    pub segmenting: Segmenting,
}

/// A loaded pipeline: detectors stay loaded across videos; trackers are made per video.
pub struct Pipeline {
    deployment: Deployment,
    effective: EffectiveConfig,
    detectors: Vec<DetectorSlot>,
    /// Pad a video's short last batch to the profile's batch size: on a GPU every new batch
    /// shape costs kernel compilation and autotuning (minutes on a cold cache), so the
    /// shape `pitchside tune` warmed must be the only one. On the CPU a padded frame costs
    /// as much as a real one and nothing is tuned: no padding.
    pad_batches: bool,
    /// The device the models run on: decoding follows it ([`hardware_decoding`]).
    device: DeviceId,
}

/// Whether videos for models on `device` are decoded on NVDEC (where FFmpeg and the driver
/// offer it; software otherwise): a CUDA device, whatever the profile is called.
pub fn hardware_decoding(device: DeviceId) -> bool {
    device.backend == Backend::Cuda
}

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
    /// Network input, width × height, for built-in YOLO models (letterboxed as predictions
    /// are); unknown for plugin libraries.
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
    pub fn load(
        deployment: Deployment,
        effective: EffectiveConfig,
        backend: Backend,
    ) -> Result<Pipeline, PipelineError> {
        Self::load_on(deployment, effective, DeviceId::new(backend, 0))
    }

    /// Loads the pipeline's models on one device (`cuda:1`), for a [`crate::pool`].
    pub fn load_on(
        deployment: Deployment,
        effective: EffectiveConfig,
        device: DeviceId,
    ) -> Result<Pipeline, PipelineError> {
        let detectors = build_detectors_on(&deployment, &effective, device)?;
        Ok(Pipeline {
            deployment,
            effective,
            detectors,
            pad_batches: device.backend != Backend::Cpu,
            device,
        })
    }

    pub fn profile(&self) -> &Profile {
        &self.effective.profile
    }

    pub fn effective(&self) -> &EffectiveConfig {
        &self.effective
    }

    /// Keypoints per frame in the response.
    pub fn num_keypoints(&self) -> usize {
        self.detectors
            .iter()
            .find(|d| d.role == Role::Pitch)
            .map(|d| d.detector.num_keypoints())
            .unwrap_or(DEFAULT_KEYPOINTS)
    }

    /// Every shape this pipeline runs its detectors at on frames of the given sizes (width,
    /// height): each detector × frame size, at the profile's batch size and precision.
    /// The one list both `pitchside tune` and `serve`'s warm-up run.
    pub fn warm_up_shapes(&self, frames: &[[u32; 2]]) -> Vec<WarmUpShape> {
        let e = &self.effective;
        let batch = e.profile.batch_size.max(1);
        // Half precision applies where the backend has it (`model_device`): CUDA, LibTorch.
        let precision = match crate::model_device(e.device, e.profile.half) {
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
                let input = builtin.map(|m| {
                    let lb = pitchside_models::Letterbox::new(w, h, m.imgsz.get(), true, 32);
                    [lb.out_w(), lb.out_h()]
                });
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

    /// Admits a video to this pipeline: probed once, every bound of its profile checked.
    pub fn admit(&self, path: &Path) -> Result<AdmittedVideo, AdmissionError> {
        crate::admission::admit(&self.effective.profile, path)
    }

    /// Runs an admitted video through the pipeline.
    pub fn run(
        &mut self,
        video: &AdmittedVideo,
        opts: &RunOptions<'_>,
    ) -> Result<(Response, RunStats), PipelineError> {
        let start = Instant::now();
        let p = self.effective.profile.clone();
        let mut stats = RunStats::default();
        let stride = p.frame_stride.max(1);
        let decode = DecodeOptions {
            max_frames: opts.max_frames,
            threads: p.decode_threads,
            hardware: hardware_decoding(self.device),
            segmenting: opts.segmenting,
            max_frame_pixels: p.max_frame_pixels,
            ..DecodeOptions::new(stride, p.prefetch_frames as usize)
        };
        // Which decoder output each detector reads (index into the outputs).
        let mut inputs: Vec<usize> = Vec::new();
        let conversion = p.frame_conversion;
        let detectors = &self.detectors;
        let decoder = Decoder::start_admitted(video, &decode, |info| {
            let (outputs, which) = decoder_outputs(detectors, conversion, info);
            inputs = which;
            outputs
        })?;
        let info = decoder.info;
        stats.decode_acceleration = format!("{:?}", decoder.acceleration()).to_lowercase();
        stats.decode_segments = decoder.segment_decoders() as u64;
        stats.frame_conversion = conversion.to_string();
        // Scale factors from each detector's input back to source pixels.
        let back: Vec<Option<(f32, f32)>> = inputs
            .iter()
            .map(|&k| match decoder.outputs()[k] {
                Output::Full => None,
                Output::Scaled { width, height } => Some((
                    info.width as f32 / width as f32,
                    info.height as f32 / height as f32,
                )),
            })
            .collect();
        let fps = if info.fps.is_finite() && info.fps > 0.0 {
            info.fps
        } else {
            30.0
        };
        // Trackers count processed frames: with a stride their frame rate is the video's / stride.
        let rate = fps / stride as f64;
        let mut tracker = build_tracker(&self.deployment, &self.effective.pipeline.tracker, rate)?;
        let mut ball_tracker = match &self.effective.pipeline.ball_tracker {
            Some(r) => Some(build_tracker(&self.deployment, r, rate)?),
            None => None,
        };
        let has_ball_model = self.detectors.iter().any(|d| d.role == Role::Ball);
        let nk = self.num_keypoints();
        let deadline = start + Duration::from_secs(p.timeout_s);
        let mut ids = IdMap::default();
        let mut processed: Vec<Processed> = Vec::new();
        let mut call_time: HashMap<Role, Duration> = HashMap::new();
        let mut end: Option<(u64, Option<String>)> = None;
        let mut error: Option<String> = None;
        let batch_size = p.batch_size.max(1) as usize;
        // The probe's bound on the frame count (`Profile::check_video`) trusts the
        // container; one that declares none (or too few) is held to it here, as it decodes.
        let mut over_frame_bound = false;

        'outer: loop {
            let mut batch = Vec::with_capacity(batch_size);
            let wait = Instant::now();
            while batch.len() < batch_size {
                match decoder.recv() {
                    Ok(DecoderEvent::Frame(f)) if f.frame_number >= p.max_video_frames => {
                        decoder.recycle(f);
                        over_frame_bound = true;
                        break;
                    }
                    Ok(DecoderEvent::Frame(f)) => batch.push(f),
                    Ok(DecoderEvent::End {
                        frames_read,
                        error,
                        decode_time,
                    }) => {
                        stats.decode_s = decode_time.as_secs_f64();
                        end = Some((frames_read, error));
                        break;
                    }
                    Err(_) => {
                        end = Some((0, Some("the decoder stopped unexpectedly".into())));
                        break;
                    }
                }
            }
            stats.decode_wait_s += wait.elapsed().as_secs_f64();
            if !batch.is_empty() {
                let frames: Vec<Vec<FrameRef<'_>>> = inputs
                    .iter()
                    .map(|&k| {
                        batch
                            .iter()
                            .map(|f| f.images[k].frame(f.frame_number))
                            .collect()
                    })
                    .collect();
                let t = Instant::now();
                let pad_to = if self.pad_batches { batch_size } else { 0 };
                let padded: Vec<Vec<FrameRef<'_>>> =
                    frames.iter().map(|f| pad_batch(f, pad_to)).collect();
                let padded_len = padded.first().map_or(batch.len(), Vec::len);
                let results = unpad(
                    detect_each(&mut self.detectors, &padded, &mut call_time),
                    batch.len(),
                    padded_len,
                );
                stats.detect_wall_s += t.elapsed().as_secs_f64();
                stats.batches += 1;
                let mut per_role: Vec<(Role, Vec<Vec<Detection>>)> = Vec::new();
                for ((role, r), back) in results.into_iter().zip(&back) {
                    match r {
                        Ok(mut d) if d.len() == batch.len() => {
                            if let Some((sx, sy)) = *back {
                                to_source_pixels(&mut d, sx, sy);
                            }
                            per_role.push((role, d))
                        }
                        Ok(d) => {
                            error = Some(format!(
                                "detector for role {role} returned {} results for {} frames",
                                d.len(),
                                batch.len()
                            ));
                            break 'outer;
                        }
                        Err(e) => {
                            error = Some(format!("detector for role {role} failed: {e}"));
                            break 'outer;
                        }
                    }
                }
                let t = Instant::now();
                for (i, f) in batch.iter().enumerate() {
                    let mut players = Vec::new();
                    let mut keypoints = vec![[0f32; 2]; nk];
                    for (role, dets) in &per_role {
                        match role {
                            Role::Players => players.extend(
                                dets[i]
                                    .iter()
                                    .filter(|d| !(has_ball_model && d.class_id == BALL_CLASS))
                                    .cloned(),
                            ),
                            Role::Ball => players.extend(dets[i].iter().map(|d| Detection {
                                class_id: BALL_CLASS,
                                ..d.clone()
                            })),
                            Role::Pitch => keypoints = pitch_keypoints(&dets[i], nk),
                        }
                    }
                    match track_frame(
                        f.frame_number,
                        &players,
                        tracker.as_mut(),
                        ball_tracker.as_deref_mut(),
                        &mut ids,
                    ) {
                        Ok(objects) => processed.push(Processed {
                            frame_number: f.frame_number,
                            objects,
                            keypoints,
                        }),
                        Err(e) => {
                            error =
                                Some(format!("tracker failed at frame {}: {e}", f.frame_number));
                            break 'outer;
                        }
                    }
                }
                stats.tracking_s += t.elapsed().as_secs_f64();
                if let (Some(cb), Some(last)) = (opts.progress, batch.last()) {
                    cb(last.frame_number + 1, info.frame_count);
                }
                drop(frames);
                for f in batch {
                    decoder.recycle(f);
                }
            }
            if over_frame_bound {
                error = Some(format!(
                    "the video has more than {} frames (its container declares {}), above \
                     the profile's max_video_frames; stopped there",
                    p.max_video_frames, info.frame_count
                ));
                break;
            }
            if end.is_some() {
                break;
            }
            if Instant::now() > deadline {
                error = Some(format!(
                    "timed out after {} s (profile timeout)",
                    p.timeout_s
                ));
                break;
            }
            if opts.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                error = Some("cancelled".into());
                break;
            }
        }
        decoder.stop();
        let complete = error.is_none();
        let (frames_read, decode_error) = end.unwrap_or((0, None));
        let error = error.or(decode_error);
        // Complete runs report every source frame read; partial ones stop at the last
        // processed frame (nothing after it is known).
        let total = if complete && frames_read > 0 {
            frames_read
        } else {
            processed.last().map(|p| p.frame_number + 1).unwrap_or(0)
        };
        let t = Instant::now();
        let frames = assemble(&processed, total);
        stats.assemble_s = t.elapsed().as_secs_f64();
        for slot in &mut self.detectors {
            let mut d = DetectorStats {
                calls_s: call_time
                    .get(&slot.role)
                    .map(|t| t.as_secs_f64())
                    .unwrap_or(0.0),
                ..Default::default()
            };
            if let Some(st) = slot.detector.take_stage_times() {
                d.preprocess_s = st.preprocess.as_secs_f64();
                d.forward_s = st.forward.as_secs_f64();
                d.postprocess_s = st.postprocess.as_secs_f64();
            }
            stats.detectors.insert(slot.role.to_string(), d);
        }
        stats.source_frames = total;
        stats.processed_frames = processed.len() as u64;
        let wall = start.elapsed();
        stats.wall_s = wall.as_secs_f64();
        let partial = error.is_some();
        Ok((
            Response {
                challenge_id: opts.challenge_id.clone().into(),
                frames,
                processing_time: processing_time(wall),
                partial,
                error,
            },
            stats,
        ))
    }
}

/// The decoder outputs for a video: with `model_size`, one scaled output per distinct size
/// the detectors ask for (a size equal to the source's is the full-size one), full-size BGR
/// for the others; and which output each detector reads.
fn decoder_outputs(
    detectors: &[DetectorSlot],
    conversion: FrameConversion,
    info: &VideoInfo,
) -> (Vec<Output>, Vec<usize>) {
    let mut outputs: Vec<Output> = Vec::new();
    let which = detectors
        .iter()
        .map(|slot| {
            let wanted = match conversion {
                FrameConversion::Exact => None,
                FrameConversion::ModelSize => slot.detector.input_size(info.width, info.height),
            };
            let o = match wanted {
                Some((w, h)) if w > 0 && h > 0 && (w, h) != (info.width, info.height) => {
                    Output::Scaled {
                        width: w,
                        height: h,
                    }
                }
                _ => Output::Full,
            };
            match outputs.iter().position(|x| *x == o) {
                Some(k) => k,
                None => {
                    outputs.push(o);
                    outputs.len() - 1
                }
            }
        })
        .collect();
    (outputs, which)
}

/// Detections on a frame scaled by 1/`sx`×1/`sy` mapped back to source pixels.
fn to_source_pixels(frames: &mut [Vec<Detection>], sx: f32, sy: f32) {
    for d in frames.iter_mut().flatten() {
        d.bbox = [
            d.bbox[0] * sx,
            d.bbox[1] * sy,
            d.bbox[2] * sx,
            d.bbox[3] * sy,
        ];
        for k in &mut d.keypoints {
            k[0] *= sx;
            k[1] *= sy;
        }
    }
}

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
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0) as f64;
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0) as f64;
    let inter = w * h;
    let area = |r: &[f32; 4]| ((r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0)) as f64;
    let union = area(a) + area(b) - inter;
    if union > 0.0 { inter / union } else { 0.0 }
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
        let decoder = Decoder::start_admitted(video, &decode, |info| {
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
                let err = |e: PluginError| PipelineError::WarmUp {
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

/// One detector's answer for a batch: detections per frame.
type DetectResult = Result<Vec<Vec<Detection>>, PluginError>;

/// `frames` filled up to `n` with copies of its last frame (as is when it has `n` or more).
fn pad_batch<'a>(frames: &[FrameRef<'a>], n: usize) -> Vec<FrameRef<'a>> {
    let mut out = frames.to_vec();
    if let Some(&last) = frames.last() {
        out.resize(n.max(frames.len()), last);
    }
    out
}

/// Drops the answers for padding frames: a detector that answered for all `padded` frames
/// keeps its first `real`; any other count is left for the caller to report.
fn unpad(
    results: Vec<(Role, DetectResult)>,
    real: usize,
    padded: usize,
) -> Vec<(Role, DetectResult)> {
    results
        .into_iter()
        .map(|(role, r)| {
            let r = r.map(|mut d| {
                if d.len() == padded {
                    d.truncate(real);
                }
                d
            });
            (role, r)
        })
        .collect()
}

/// Runs every detector at once, one thread each, detector `i` on `frames[i]`.
fn detect_each(
    detectors: &mut [DetectorSlot],
    frames: &[Vec<FrameRef<'_>>],
    call_time: &mut HashMap<Role, Duration>,
) -> Vec<(Role, DetectResult)> {
    let timed = |slot: &mut DetectorSlot, frames: &[FrameRef<'_>]| {
        let t = Instant::now();
        let r = slot.detector.detect(frames);
        (slot.role, r, t.elapsed())
    };
    let results: Vec<_> = if detectors.len() == 1 {
        vec![timed(&mut detectors[0], &frames[0])]
    } else if rayon::current_thread_index().is_some() {
        // On a pool's pipeline (its own rayon threads, `crate::pool`): threads of our own
        // would run the detectors' parallel loops on the global pool, outside the pipeline's
        // share of the cores; rayon tasks keep them in it.
        let mut out: Vec<_> = detectors.iter().map(|s| (s.role, None)).collect();
        rayon::scope(|s| {
            for ((slot, frames), cell) in detectors.iter_mut().zip(frames).zip(out.iter_mut()) {
                s.spawn(|_| {
                    let run = std::panic::AssertUnwindSafe(|| timed(slot, frames));
                    cell.1 = std::panic::catch_unwind(run).ok();
                });
            }
        });
        out.into_iter()
            .map(|(role, r)| {
                r.unwrap_or_else(|| {
                    (
                        role,
                        Err(PluginError::Panicked("detector task panicked".into())),
                        Duration::ZERO,
                    )
                })
            })
            .collect()
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = detectors
                .iter_mut()
                .zip(frames)
                .map(|(slot, frames)| {
                    let role = slot.role;
                    (role, s.spawn(move || timed(slot, frames)))
                })
                .collect();
            handles
                .into_iter()
                .map(|(role, h)| {
                    h.join().unwrap_or_else(|_| {
                        (
                            role,
                            Err(PluginError::Panicked("detector thread panicked".into())),
                            Duration::ZERO,
                        )
                    })
                })
                .collect()
        })
    };
    results
        .into_iter()
        .map(|(role, r, t)| {
            *call_time.entry(role).or_default() += t;
            (role, r)
        })
        .collect()
}

/// The pitch keypoints of a frame: the best pose detection's keypoints, `[0, 0]` where
/// unseen or below `KEYPOINT_MIN_CONF`; always `nk` pairs.
pub fn pitch_keypoints(dets: &[Detection], nk: usize) -> Vec<[f32; 2]> {
    let mut out = vec![[0f32; 2]; nk];
    let best = dets.iter().max_by(|a, b| a.score.total_cmp(&b.score));
    if let Some(d) = best {
        for (o, k) in out.iter_mut().zip(&d.keypoints) {
            if k[2] >= KEYPOINT_MIN_CONF && k[0].is_finite() && k[1].is_finite() {
                *o = [k[0], k[1]];
            }
        }
    }
    out
}

/// Gives every (tracker, local id) a response-wide id, in order of first appearance.
#[derive(Default)]
struct IdMap {
    map: HashMap<(u8, u64), u64>,
    next: u64,
}

impl IdMap {
    fn get(&mut self, tracker: u8, id: u64) -> u64 {
        let next = &mut self.next;
        *self.map.entry((tracker, id)).or_insert_with(|| {
            *next += 1;
            *next
        })
    }
}

fn track_frame(
    frame_number: u64,
    dets: &[Detection],
    tracker: &mut dyn Tracker,
    ball_tracker: Option<&mut (dyn Tracker + 'static)>,
    ids: &mut IdMap,
) -> Result<Vec<Tracked>, PluginError> {
    let mut out = Vec::new();
    let (main, ball): (Vec<Detection>, Vec<Detection>) = match &ball_tracker {
        Some(_) => dets.iter().cloned().partition(|d| d.class_id != BALL_CLASS),
        None => (dets.to_vec(), Vec::new()),
    };
    for t in tracker.update(frame_number, &main)? {
        out.push(Tracked {
            id: ids.get(0, t.id),
            bbox: t.bbox,
            score: t.score,
            class_id: t.class_id,
        });
    }
    if let Some(bt) = ball_tracker {
        for t in bt.update(frame_number, &ball)? {
            out.push(Tracked {
                id: ids.get(1, t.id),
                bbox: t.bbox,
                score: t.score,
                class_id: t.class_id,
            });
        }
    }
    Ok(out)
}

fn object_results(objects: &[Tracked]) -> Vec<ObjectResult> {
    let mut o: Vec<&Tracked> = objects.iter().collect();
    // By class, then descending score; ids break ties so output is deterministic.
    o.sort_by(|a, b| {
        a.class_id
            .cmp(&b.class_id)
            .then(b.score.total_cmp(&a.score))
            .then(a.id.cmp(&b.id))
    });
    o.into_iter()
        .map(|t| ObjectResult::new(t.id, t.bbox, t.class_id))
        .collect()
}

/// One entry per source frame `0..total`: processed frames as tracked, skipped frames with
/// each track's box interpolated between the neighbouring processed frames where it
/// appears in both, and the nearest processed frame's keypoints. Frames after the last
/// processed one repeat it.
fn assemble(processed: &[Processed], total: u64) -> Vec<FrameResult> {
    let mut out = Vec::with_capacity(total as usize);
    let mut j = 0usize; // index of the last processed frame <= f
    for f in 0..total {
        while j + 1 < processed.len() && processed[j + 1].frame_number <= f {
            j += 1;
        }
        let Some(prev) = processed.get(j).filter(|p| p.frame_number <= f) else {
            // Before the first processed frame (cannot happen: frame 0 is always processed).
            out.push(FrameResult::new(f, &[], Vec::new()));
            continue;
        };
        if prev.frame_number == f {
            out.push(FrameResult::new(
                f,
                &prev.keypoints,
                object_results(&prev.objects),
            ));
            continue;
        }
        let next = processed.get(j + 1);
        let (objects, keypoints) = match next {
            Some(next) => {
                let span = (next.frame_number - prev.frame_number) as f32;
                let t = (f - prev.frame_number) as f32 / span;
                let objects: Vec<Tracked> = prev
                    .objects
                    .iter()
                    .filter_map(|a| {
                        let b = next.objects.iter().find(|b| b.id == a.id)?;
                        let bbox: [f32; 4] =
                            std::array::from_fn(|k| a.bbox[k] + (b.bbox[k] - a.bbox[k]) * t);
                        Some(Tracked { bbox, ..a.clone() })
                    })
                    .collect();
                let nearest = if f - prev.frame_number <= next.frame_number - f {
                    prev
                } else {
                    next
                };
                (objects, &nearest.keypoints)
            }
            None => (prev.objects.clone(), &prev.keypoints),
        };
        out.push(FrameResult::new(f, keypoints, object_results(&objects)));
    }
    out
}

/// Peak resident memory of this process (VmHWM), in bytes, where /proc tells.
pub fn peak_rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(id: u64, x: f32, class_id: u32, score: f32) -> Tracked {
        Tracked {
            id,
            bbox: [x, 0.0, x + 10.0, 10.0],
            score,
            class_id,
        }
    }

    fn p(frame_number: u64, objects: Vec<Tracked>, k: f32) -> Processed {
        Processed {
            frame_number,
            objects,
            keypoints: vec![[k, k]; 2],
        }
    }

    #[test]
    fn stride_keeps_source_numbers_and_interpolates() {
        let processed = vec![
            p(0, vec![t(1, 0.0, 2, 0.9), t(2, 50.0, 2, 0.8)], 1.0),
            p(2, vec![t(1, 10.0, 2, 0.9)], 2.0),
            p(4, vec![t(1, 20.0, 2, 0.9), t(2, 70.0, 2, 0.8)], 3.0),
        ];
        let frames = assemble(&processed, 6);
        assert_eq!(
            frames.iter().map(|f| f.frame_number).collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4, 5]
        );
        // Frame 1: track 1 halfway between 0 and 10; track 2 missing on frame 2 -> absent.
        assert_eq!(frames[1].objects.len(), 1);
        assert_eq!(frames[1].objects[0].bbox, [5.0, 0.0, 15.0, 10.0]);
        // Nearest processed frame's keypoints (ties go to the earlier frame).
        assert_eq!(frames[1].keypoints, vec![[1.0, 1.0]; 2]);
        assert_eq!(frames[3].objects[0].bbox, [15.0, 0.0, 25.0, 10.0]);
        // Tail frame after the last processed one repeats it.
        assert_eq!(frames[5].objects.len(), 2);
        assert_eq!(frames[5].keypoints, vec![[3.0, 3.0]; 2]);
    }

    #[test]
    fn uneven_gaps_interpolate_linearly_and_pick_nearest_keypoints() {
        let processed = vec![
            p(0, vec![t(7, 0.0, 2, 0.5)], 1.0),
            p(3, vec![t(7, 30.0, 2, 0.5)], 2.0),
        ];
        let frames = assemble(&processed, 4);
        assert_eq!(frames[1].objects[0].bbox[0], 10.0);
        assert_eq!(frames[2].objects[0].bbox[0], 20.0);
        assert_eq!(frames[1].keypoints[0], [1.0, 1.0]);
        assert_eq!(frames[2].keypoints[0], [2.0, 2.0]);
    }

    #[test]
    fn objects_sorted_by_class_then_score_and_rounded() {
        let objs = vec![
            t(1, 0.123, 2, 0.5),
            t(2, 0.0, 0, 0.3),
            t(3, 0.0, 2, 0.9),
            t(4, 0.0, 1, 0.1),
        ];
        let r = object_results(&objs);
        assert_eq!(r.iter().map(|o| o.id).collect::<Vec<_>>(), vec![2, 4, 3, 1]);
        assert_eq!(r[3].bbox[0], 0.12);
    }

    #[test]
    fn keypoints_are_always_nk_pairs_with_low_confidence_zeroed() {
        assert_eq!(pitch_keypoints(&[], 32), vec![[0.0, 0.0]; 32]);
        let d = |score: f32, c: f32| Detection {
            bbox: [0.0; 4],
            score,
            class_id: 0,
            keypoints: vec![[5.0, 6.0, c], [7.0, 8.0, 0.2]],
        };
        let k = pitch_keypoints(&[d(0.3, 0.9), d(0.8, 0.6)], 3);
        assert_eq!(k, vec![[5.0, 6.0], [0.0, 0.0], [0.0, 0.0]]);
    }

    fn frame(data: &[u8], frame_number: u64) -> FrameRef<'_> {
        FrameRef {
            data,
            width: 1,
            height: 1,
            row_stride: 3,
            format: pitchside_plugin::PixelFormat::Bgr8,
            frame_number,
        }
    }

    #[test]
    fn a_short_batch_is_padded_with_its_last_frame_and_the_padding_answers_dropped() {
        let (a, b) = ([1u8; 3], [2u8; 3]);
        let frames = [frame(&a, 30), frame(&b, 32)];
        let padded = pad_batch(&frames, 4);
        assert_eq!(padded.len(), 4);
        assert!(
            padded[1..]
                .iter()
                .all(|f| f.frame_number == 32 && f.data == b)
        );
        // Full batches and no padding (n = 0) stay as they are.
        assert_eq!(pad_batch(&frames, 2).len(), 2);
        assert_eq!(pad_batch(&frames, 0).len(), 2);
        assert!(pad_batch(&[], 4).is_empty());
        let det = |score: f32| Detection {
            bbox: [0.0; 4],
            score,
            class_id: 0,
            keypoints: Vec::new(),
        };
        let answers = vec![
            (
                Role::Players,
                Ok((0..4).map(|i| vec![det(i as f32)]).collect()),
            ),
            // A wrong count is kept as it is, for the caller's check to report.
            (Role::Pitch, Ok(vec![vec![]; 3])),
            (Role::Ball, Err(PluginError::Failed("x".into()))),
        ];
        let out = unpad(answers, 2, 4);
        let players = out[0].1.as_ref().unwrap();
        assert_eq!(players.len(), 2);
        assert_eq!(players[1][0].score, 1.0);
        assert_eq!(out[1].1.as_ref().unwrap().len(), 3);
        assert!(out[2].1.is_err());
    }

    #[test]
    fn hardware_decoding_follows_the_device_not_the_profile_name() {
        // A CUDA device decodes on NVDEC whatever its profile is called (`profile: cpu`
        // pinned on a CUDA host, a custom profile); the CPU and WGPU never ask for it.
        assert!(hardware_decoding(DeviceId::new(Backend::Cuda, 0)));
        assert!(hardware_decoding(DeviceId::new(Backend::Cuda, 3)));
        assert!(!hardware_decoding(DeviceId::new(Backend::Cpu, 0)));
        assert!(!hardware_decoding(DeviceId::new(Backend::Wgpu, 0)));
    }

    #[test]
    fn ids_are_unique_across_trackers_in_order_of_appearance() {
        let mut ids = IdMap::default();
        assert_eq!(ids.get(0, 5), 1);
        assert_eq!(ids.get(1, 5), 2);
        assert_eq!(ids.get(0, 5), 1);
        assert_eq!(ids.get(0, 9), 3);
    }
}
