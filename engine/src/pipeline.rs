//! decode → batch → detect → track → result, one direction.
//!
//! The decoder thread runs ahead by `prefetch` frames; each batch goes to every detector
//! at once (one thread per detector); tracking runs per processed frame in order; the
//! result has one entry for every source frame, skipped frames interpolated.

mod assemble;
mod detect;
mod parity;
mod track;
mod warm_up;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pitchside_plugin::{Detection, FrameRef, PluginError, Tracker};
use serde::Serialize;

pub use assemble::Processed;
pub use assemble::pitch_keypoints;
use assemble::{IdMap, assemble, track_frame};
use detect::{PerRole, decoder_outputs, detect_batch};
pub use parity::ConversionParity;
pub use pitchside_plugin::TrackedObject;
pub use track::Tracking;
use track::track_batch;
pub use warm_up::WarmUpShape;

use crate::admission::{AdmissionError, AdmittedVideo};
use crate::config::{Deployment, DeviceId, EffectiveConfig, Profile, Role};
use crate::device::Backend;
use crate::plugin_host::{DetectorSlot, HostError, build_detectors_on, build_tracker};
use crate::response::{BALL_CLASS, DEFAULT_KEYPOINTS, processing_time};
/// Re-exported: the response is what a pipeline run yields.
pub use crate::response::{FrameResult, ObjectResult, Response};
use crate::video::{DecodeOptions, DecoderEvent, Output, Segmenting, VideoError};

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Video(#[from] VideoError),
    #[error(transparent)]
    Host(#[from] HostError),
    #[error("warming up the {role} detector: {message}")]
    WarmUp { role: Role, message: String },
    #[error("the {role} detector, comparing frame conversions: {message}")]
    Parity { role: Role, message: String },
    /// A detector or tracker failed on frames given by the caller
    /// ([`Pipeline::detect_frames`]).
    #[error("{0}")]
    Frames(String),
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
    /// Decode in software even where the device would take NVDEC (benchmarks compare).
    pub software_decoding: bool,
    /// Called with each processed frame, in order, as soon as it is tracked (streaming
    /// front ends: the Python binding's `frames()`); the run still returns the response.
    pub on_frame: Option<&'a (dyn Fn(&Processed) + Sync)>,
    /// Called with each processed frame and the pixels its detections came from, in order,
    /// as soon as it is tracked (what is read off the frames themselves, such as shirt
    /// colours, without decoding the video again).
    pub on_frame_pixels: Option<&'a OnFramePixels<'a>>,
}

/// The callback of [`RunOptions::on_frame_pixels`].
pub type OnFramePixels<'a> = dyn Fn(&Processed, &FramePixels<'_>) + Sync + 'a;

/// A processed frame's pixels as the detectors saw them: the largest image the decoder
/// made of it (packed BGR, full size where a detector reads full size, else scaled to a
/// model's input).
pub struct FramePixels<'a> {
    pub image: FrameRef<'a>,
    /// Image pixels per source pixel, across and down (1 at full size): a box of the
    /// [`Processed`] frame times this is a box on `image`.
    pub scale: (f32, f32),
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
    device.backend.is_cuda()
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
            pad_batches: !device.backend.is_cpu(),
            device,
        })
    }

    pub fn profile(&self) -> &Profile {
        &self.effective.profile
    }

    pub fn effective(&self) -> &EffectiveConfig {
        &self.effective
    }

    /// The device the models run on (`cuda:1`; `cpu`).
    pub fn device(&self) -> DeviceId {
        self.device
    }

    /// Keypoints per frame in the response.
    pub fn num_keypoints(&self) -> usize {
        self.detectors
            .iter()
            .find(|d| d.role == Role::Pitch)
            .map(|d| d.detector.num_keypoints())
            .unwrap_or(DEFAULT_KEYPOINTS)
    }
}

impl Pipeline {
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
            hardware: hardware_decoding(self.device) && !opts.software_decoding,
            segmenting: opts.segmenting,
            max_frame_pixels: p.max_frame_pixels,
            ..DecodeOptions::new(stride, p.prefetch_frames as usize)
        };
        // Which decoder output each detector reads (index into the outputs).
        let mut inputs: Vec<usize> = Vec::new();
        let conversion = p.frame_conversion;
        let detectors = &self.detectors;
        let decoder = video.decode(&decode, |info| {
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
        // The decoder output `on_frame_pixels` sees: the largest.
        let largest = (0..decoder.outputs().len())
            .max_by_key(|&k| match decoder.outputs()[k] {
                Output::Full => u64::from(info.width) * u64::from(info.height),
                Output::Scaled { width, height } => u64::from(width) * u64::from(height),
            })
            .unwrap_or(0);
        let fps = if info.fps.is_finite() && info.fps > 0.0 {
            info.fps
        } else {
            30.0
        };
        // Trackers count processed frames: with a stride their frame rate is the video's / stride.
        let rate = fps / stride as f64;
        let mut tracking = self.tracking(rate)?;
        let deadline = start + Duration::from_secs(p.timeout_s);
        let mut processed: Vec<Processed> = Vec::new();
        let mut call_time: HashMap<Role, Duration> = HashMap::new();
        let mut end: Option<(u64, Option<String>)> = None;
        let batch_size = p.batch_size.max(1) as usize;
        // Past max_video_frames ([`Stop::TooManyFrames`]).
        let mut over_frame_bound = false;

        let outcome: Result<(), Stop> = loop {
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
                let detected =
                    detect_batch(&mut self.detectors, &frames, &back, pad_to, &mut call_time);
                stats.detect_wall_s += t.elapsed().as_secs_f64();
                stats.batches += 1;
                let per_role = match detected {
                    Ok(d) => d,
                    Err(stop) => break Err(stop),
                };
                let t = Instant::now();
                let numbers: Vec<u64> = batch.iter().map(|f| f.frame_number).collect();
                let before = processed.len();
                let tracked = track_batch(
                    &per_role,
                    &numbers,
                    self.merging(),
                    Some(&mut tracking),
                    &mut processed,
                );
                stats.tracking_s += t.elapsed().as_secs_f64();
                if let Some(cb) = opts.on_frame {
                    processed[before..].iter().for_each(cb);
                }
                if let Some(cb) = opts.on_frame_pixels {
                    for p in &processed[before..] {
                        let Some(f) = batch.iter().find(|f| f.frame_number == p.frame_number)
                        else {
                            continue;
                        };
                        let Some(image) = f.images.get(largest) else {
                            continue;
                        };
                        let scale = (
                            image.width as f32 / info.width.max(1) as f32,
                            image.height as f32 / info.height.max(1) as f32,
                        );
                        cb(
                            p,
                            &FramePixels {
                                image: image.frame(f.frame_number),
                                scale,
                            },
                        );
                    }
                }
                if let Err(stop) = tracked {
                    break Err(stop);
                }
                if let (Some(cb), Some(last)) = (opts.progress, batch.last()) {
                    cb(last.frame_number + 1, info.frame_count);
                }
                drop(frames);
                for f in batch {
                    decoder.recycle(f);
                }
            }
            if over_frame_bound {
                break Err(Stop::TooManyFrames {
                    max: p.max_video_frames,
                    declared: info.frame_count,
                });
            }
            if end.is_some() {
                break Ok(());
            }
            if Instant::now() > deadline {
                break Err(Stop::Timeout(p.timeout_s));
            }
            if opts.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                break Err(Stop::Cancelled);
            }
        };
        decoder.stop();
        let complete = outcome.is_ok();
        let (frames_read, decode_error) = end.unwrap_or((0, None));
        let error = outcome.err().map(|s| s.to_string()).or(decode_error);
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

/// Why a run stopped before the end of the video: its message is the response's `error`.
#[derive(Debug, thiserror::Error)]
enum Stop {
    #[error("detector for role {role} returned {got} results for {frames} frames")]
    DetectorCount {
        role: Role,
        got: usize,
        frames: usize,
    },
    #[error("detector for role {role} failed: {error}")]
    Detector { role: Role, error: PluginError },
    #[error("tracker failed at frame {frame}: {error}")]
    Tracker { frame: u64, error: PluginError },
    /// The probe's bound on the frame count (`Profile::check_video`) trusts the container;
    /// one that declares none (or too few) is held to it as it decodes.
    #[error(
        "the video has more than {max} frames (its container declares {declared}), above \
         the profile's max_video_frames; stopped there"
    )]
    TooManyFrames { max: u64, declared: u64 },
    #[error("timed out after {0} s (profile timeout)")]
    Timeout(u64),
    #[error("cancelled")]
    Cancelled,
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

    #[test]
    fn hardware_decoding_follows_the_device_not_the_profile_name() {
        // A CUDA device decodes on NVDEC whatever its profile is called (`profile: cpu`
        // pinned on a CUDA host, a custom profile); the CPU and WGPU never ask for it.
        assert!(hardware_decoding(DeviceId::new(Backend::Cuda, 0)));
        assert!(hardware_decoding(DeviceId::new(Backend::Cuda, 3)));
        assert!(hardware_decoding(DeviceId::new(Backend::TorchCuda, 1)));
        assert!(!hardware_decoding(DeviceId::new(Backend::TorchCpu, 0)));
        assert!(!hardware_decoding(DeviceId::new(Backend::Cpu, 0)));
        assert!(!hardware_decoding(DeviceId::new(Backend::Wgpu, 0)));
    }
}
