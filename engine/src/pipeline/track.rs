//! Tracking a batch's detections: the trackers and response-wide ids of a video
//! ([`Tracking`]), shared by the run loop ([`Pipeline::run`]) and the caller's frames
//! ([`Pipeline::detect_frames`]).

use super::*;

/// A video's tracking state (or that of a caller's stream of frames): the trackers and the
/// response-wide ids. [`Pipeline::run`] makes one per video; [`Pipeline::tracking`] one
/// for frames given by the caller.
pub struct Tracking {
    main: Box<dyn Tracker>,
    ball: Option<Box<dyn Tracker>>,
    ids: IdMap,
}

/// What merging a frame's detections across roles needs to know about the detectors.
#[derive(Clone, Copy)]
pub(super) struct Merging {
    /// With a ball model, the players model's ball class is dropped.
    has_ball_model: bool,
    keypoints: usize,
}

impl Pipeline {
    /// Fresh tracking for frames processed at `frame_rate` per second (a video's rate
    /// divided by the stride): the deployment's trackers, ids from 1.
    pub fn tracking(&self, frame_rate: f64) -> Result<Tracking, PipelineError> {
        let pipeline = &self.effective.pipeline;
        Ok(Tracking {
            main: build_tracker(&self.deployment, &pipeline.tracker, frame_rate)?,
            ball: match &pipeline.ball_tracker {
                Some(r) => Some(build_tracker(&self.deployment, r, frame_rate)?),
                None => None,
            },
            ids: IdMap::default(),
        })
    }

    pub(super) fn merging(&self) -> Merging {
        Merging {
            has_ball_model: self.detectors.iter().any(|d| d.role == Role::Ball),
            keypoints: self.num_keypoints(),
        }
    }

    /// Detects on full-size BGR frames given by the caller (the Python binding's numpy
    /// frames), in batches of the profile's batch size; every detector letterboxes them
    /// itself, as with `frame_conversion: exact`. With `tracking` the frames are tracked in
    /// the order given, continuing its tracks; without, objects keep id 0.
    pub fn detect_frames(
        &mut self,
        frames: &[FrameRef<'_>],
        mut tracking: Option<&mut Tracking>,
    ) -> Result<Vec<Processed>, PipelineError> {
        let batch = self.effective.profile.batch_size.max(1) as usize;
        let pad_to = if self.pad_batches { batch } else { 0 };
        let back = vec![None; self.detectors.len()];
        let merging = self.merging();
        let mut call_time = HashMap::new();
        let mut out = Vec::with_capacity(frames.len());
        let mut result = Ok(());
        for chunk in frames.chunks(batch) {
            let per_detector = vec![chunk.to_vec(); self.detectors.len()];
            let numbers: Vec<u64> = chunk.iter().map(|f| f.frame_number).collect();
            result = detect_batch(
                &mut self.detectors,
                &per_detector,
                &back,
                pad_to,
                &mut call_time,
            )
            .and_then(|per_role| {
                track_batch(
                    &per_role,
                    &numbers,
                    merging,
                    tracking.as_deref_mut(),
                    &mut out,
                )
            });
            if result.is_err() {
                break;
            }
        }
        // The next run's stage times are its own.
        for slot in &mut self.detectors {
            slot.detector.take_stage_times();
        }
        result.map_err(|stop| PipelineError::Frames(stop.to_string()))?;
        Ok(out)
    }
}

/// Merges each frame's detections across roles and, with `tracking`, tracks the frames
/// `numbers` of a batch in order (without, every detection is kept, with id 0).
pub(super) fn track_batch(
    per_role: &PerRole,
    numbers: &[u64],
    merging: Merging,
    mut tracking: Option<&mut Tracking>,
    processed: &mut Vec<Processed>,
) -> Result<(), Stop> {
    for (i, &frame_number) in numbers.iter().enumerate() {
        let mut players = Vec::new();
        let mut keypoints = vec![[0f32; 2]; merging.keypoints];
        for (role, dets) in per_role {
            match role {
                Role::Players => players.extend(
                    dets[i]
                        .iter()
                        .filter(|d| !(merging.has_ball_model && d.class_id == BALL_CLASS))
                        .cloned(),
                ),
                Role::Ball => players.extend(dets[i].iter().map(|d| Detection {
                    class_id: BALL_CLASS,
                    ..d.clone()
                })),
                Role::Pitch => keypoints = pitch_keypoints(&dets[i], merging.keypoints),
            }
        }
        let objects = match tracking.as_deref_mut() {
            Some(t) => track_frame(
                frame_number,
                &players,
                t.main.as_mut(),
                t.ball.as_deref_mut(),
                &mut t.ids,
            )
            .map_err(|error| Stop::Tracker {
                frame: frame_number,
                error,
            })?,
            None => players
                .iter()
                .map(|d| TrackedObject {
                    id: 0,
                    bbox: d.bbox,
                    score: d.score,
                    class_id: d.class_id,
                })
                .collect(),
        };
        processed.push(Processed {
            frame_number,
            objects,
            keypoints,
        });
    }
    Ok(())
}
