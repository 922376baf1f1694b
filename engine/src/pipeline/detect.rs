//! A batch through the detectors: which decoder output each reads, padding a short batch,
//! every detector at once, and detections mapped back to source pixels.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use pitchside_plugin::{Detection, FrameRef, PluginError};

use super::Stop;
use crate::config::{FrameConversion, Role};
use crate::plugin_host::DetectorSlot;
use crate::video::{Output, VideoInfo};

/// The decoder outputs for a video: with `model_size`, one scaled output per distinct size
/// the detectors ask for (a size equal to the source's is the full-size one), full-size BGR
/// for the others; and which output each detector reads.
pub(super) fn decoder_outputs(
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
pub(super) fn to_source_pixels(frames: &mut [Vec<Detection>], sx: f32, sy: f32) {
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

/// One detector's answer for a batch: detections per frame.
pub(super) type DetectResult = Result<Vec<Vec<Detection>>, PluginError>;

/// `frames` filled up to `n` with copies of its last frame (as is when it has `n` or more).
pub(super) fn pad_batch<'a>(frames: &[FrameRef<'a>], n: usize) -> Vec<FrameRef<'a>> {
    let mut out = frames.to_vec();
    if let Some(&last) = frames.last() {
        out.resize(n.max(frames.len()), last);
    }
    out
}

/// Drops the answers for padding frames: a detector that answered for all `padded` frames
/// keeps its first `real`; any other count is left for the caller to report.
pub(super) fn unpad(
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
pub(super) fn detect_each(
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

/// Each detector's detections on a batch, per frame.
pub(super) type PerRole = Vec<(Role, Vec<Vec<Detection>>)>;

/// One batch through every detector at once (padded to `pad_to` frames, the padding's
/// answers dropped), detections in source pixels: per role, per frame.
pub(super) fn detect_batch(
    detectors: &mut [DetectorSlot],
    frames: &[Vec<FrameRef<'_>>],
    back: &[Option<(f32, f32)>],
    pad_to: usize,
    call_time: &mut HashMap<Role, Duration>,
) -> Result<PerRole, Stop> {
    let real = frames.first().map_or(0, Vec::len);
    let padded: Vec<Vec<FrameRef<'_>>> = frames.iter().map(|f| pad_batch(f, pad_to)).collect();
    let padded_len = padded.first().map_or(real, Vec::len);
    let results = unpad(detect_each(detectors, &padded, call_time), real, padded_len);
    let mut per_role = Vec::with_capacity(results.len());
    for ((role, r), back) in results.into_iter().zip(back) {
        match r {
            Ok(mut d) if d.len() == real => {
                if let Some((sx, sy)) = *back {
                    to_source_pixels(&mut d, sx, sy);
                }
                per_role.push((role, d))
            }
            Ok(d) => {
                return Err(Stop::DetectorCount {
                    role,
                    got: d.len(),
                    frames: real,
                });
            }
            Err(error) => return Err(Stop::Detector { role, error }),
        }
    }
    Ok(per_role)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
