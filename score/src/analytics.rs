//! From pixels to the pitch: every object's position in metres, every track's motion and
//! team, from a Score Vision answer (issue 27). Teams: `crate::teams`; the radar:
//! `crate::radar`.
//!
//! Per frame, a homography from the image to the pitch plane (metres, true geometry:
//! `template::vertices_m`, 120 × 70 m) is fitted with RANSAC from the visible keypoints of
//! a 32-keypoint frame (five inliers at least and most of them, else none). Within a shot
//! it is held steady: each frame's homography is a least-squares line through the fitted
//! ones within ±6 frames of the same shot, taken at the frame (fits mapping the image
//! centre more than 3 m from the others' median left out; a frame without a fit borrows its
//! neighbours'), so keypoint noise averages out and one bad fit does not move the pitch;
//! nothing crosses a cut (shots split where the validator's scene-transition rule fires,
//! `scoring::detect_scene_transitions`). Each object's ground point (a person's feet, the
//! bottom centre of the box; the ball's centre) is mapped through it.
//!
//! Per track: positions far from the median of their neighbours are rejected as jumps (a
//! homography error must not become a sprint), then a local linear fit over half a second
//! smooths the path and gives the velocity; distance is the smoothed path's length, top
//! speed the largest fitted speed, both within shots only.

use std::collections::{BTreeMap, HashMap};

use opencv::calib3d;
use opencv::core::{Mat, Point2d, Vector};
use opencv::prelude::*;
use serde::Serialize;
use serde_json::Value;

use crate::answer::{Frames, python_int_str};
use crate::scoring::{Homography, detect_scene_transitions};
use crate::teams;
use crate::template::{KEYPOINT_COUNT, PITCH_LENGTH_M, PITCH_WIDTH_M, vertices_m};
use crate::{ScoreError, parse_answer};

/// Half-width, in frames, of the window a frame's homography is fitted over.
const HOLD: i64 = 6;
/// A position further than this from the median of its ±2 neighbours is a jump (m).
const JUMP_M: f64 = 3.0;
/// Ground points mapped further than this outside the pitch are not positions (m).
const OUTSIDE_M: f64 = 30.0;

/// What the analytics need of the video.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct VideoInfo {
    pub width: u32,
    pub height: u32,
    pub fps: f64,
}

impl VideoInfo {
    /// Size and frame rate from the container (no decoding).
    pub fn probe(path: &std::path::Path) -> Result<Self, ScoreError> {
        use opencv::videoio::{self, VideoCapture};
        let cap = VideoCapture::from_file(path, videoio::CAP_ANY)?;
        if !cap.is_opened()? {
            return Err(ScoreError::Video(format!(
                "{}: cannot open",
                path.display()
            )));
        }
        let fps = cap.get(videoio::CAP_PROP_FPS)?;
        Ok(Self {
            width: cap.get(videoio::CAP_PROP_FRAME_WIDTH)? as u32,
            height: cap.get(videoio::CAP_PROP_FRAME_HEIGHT)? as u32,
            // A container without a rate: 25, the Score Vision clips' rate.
            fps: if fps.is_finite() && fps > 0.0 {
                fps
            } else {
                25.0
            },
        })
    }
}

/// Where the shirt colours (teams) come from.
#[derive(Debug, Clone, Copy)]
pub enum Shirts<'a> {
    /// No pixels: no teams.
    None,
    /// Read from the video (a second decoding: `pitchside analyze`).
    Video(&'a std::path::Path),
    /// Collected while the video was analysed (`teams::shirt_colour` on the frames the
    /// pipeline hands out), by track id as the answer writes it. Samples of tracks the
    /// answer does not cluster (goalkeepers, referees, the ball) are left out here.
    Sampled(&'a teams::ShirtSamples),
}

/// The analytics of one answer.
#[derive(Debug, Clone, Serialize)]
pub struct Analytics {
    pub video: VideoInfo,
    /// The pitch the positions are on: x along the length, y across, metres, origin at the
    /// corner of keypoint 1.
    pub pitch_length_m: f64,
    pub pitch_width_m: f64,
    /// First frame of each shot.
    pub shots: Vec<i64>,
    pub frames_with_homography: usize,
    /// Said when no frame has a homography (no pitch in view): no positions, no speeds.
    pub note: Option<String>,
    /// Each team's mean shirt colour (BGR), `None` without teams.
    pub team_colours_bgr: [Option<[u8; 3]>; 2],
    pub frames: Vec<FrameAnalytics>,
    pub tracks: Vec<TrackSummary>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FrameAnalytics {
    pub frame_number: i64,
    pub shot: usize,
    /// Image → pitch (metres), row-major, `None` without one.
    pub homography: Option<Homography>,
    pub objects: Vec<ObjectPosition>,
    /// The answer's keypoints (for drawing; not written out).
    #[serde(skip)]
    pub keypoints: Vec<[f64; 2]>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ObjectPosition {
    /// The answer's track id.
    pub id: Value,
    pub class_id: Option<f64>,
    /// Ground point on the pitch (m), `None` without a homography or off the pitch's
    /// surroundings.
    pub x: Option<f64>,
    pub y: Option<f64>,
    /// 0 or 1: the two teams found by shirt colour (goalkeepers by position); `None` for
    /// referees, the ball, and without the video's pixels.
    pub team: Option<u8>,
    /// The answer's box (for drawing; not written out).
    #[serde(skip)]
    pub bbox: [f64; 4],
}

#[derive(Debug, Clone, Serialize)]
pub struct TrackSummary {
    pub id: Value,
    pub class_id: Option<f64>,
    /// Frames the track is in the answer.
    pub frames: usize,
    pub seconds_on_screen: f64,
    /// Frames with a pitch position kept (not rejected as a jump).
    pub positioned_frames: usize,
    pub distance_m: f64,
    /// `None` when no half-second window of positions exists.
    pub top_speed_kmh: Option<f64>,
    pub team: Option<u8>,
}

/// The analytics of an answer (JSON bytes, read as the validator stores it).
/// `shirts`: where the shirt colours (teams) come from.
pub fn analyze_answer(
    json: &[u8],
    video: VideoInfo,
    shirts: Shirts<'_>,
) -> Result<Analytics, ScoreError> {
    let stored = crate::rewrite::optimize_response_data(json)?;
    let numbers: Vec<i64> = stored
        .frames
        .iter()
        .filter_map(|(k, _)| python_int_str(k))
        .collect();
    let (frames, dropped) = parse_answer(json, &numbers)?;
    let mut a = analyze(&frames, video, shirts)?;
    if let Some(why) = dropped {
        a.note = Some(why);
    }
    Ok(a)
}

struct Input<'a> {
    number: i64,
    keypoints: Vec<[f64; 2]>,
    objects: &'a [crate::answer::Object],
}

/// The analytics of parsed answer frames.
pub fn analyze(
    frames: &Frames,
    video: VideoInfo,
    shirts: Shirts<'_>,
) -> Result<Analytics, ScoreError> {
    let (w, h) = (f64::from(video.width), f64::from(video.height));
    let mut input: Vec<Input> = Vec::new();
    for (key, frame) in frames.iter() {
        let (Some(number), Ok(frame)) = (python_int_str(key), frame) else {
            continue;
        };
        // Only the 32 pitch keypoints are template vertices (a pose model's 17 are not).
        let keypoints = frame
            .keypoints
            .as_ref()
            .filter(|k| k.raw_len == KEYPOINT_COUNT)
            .and_then(|k| k.points.as_ref().ok().cloned())
            .unwrap_or_default();
        input.push(Input {
            number,
            keypoints,
            objects: &frame.objects,
        });
    }
    input.sort_by_key(|f| f.number);
    // Shots: the validator's rule (half the players jump > 20 px) marks the first frame of
    // each new shot; an answer it cannot segment is one shot.
    let transitions = detect_scene_transitions(frames)
        .map(|(t, _)| t)
        .unwrap_or_default();
    let mut shots = vec![input.first().map_or(0, |f| f.number)];
    shots.extend(transitions);
    // `shots` ascends (transitions come in frame order, after the first frame).
    let shot_of = |n: i64| shots.partition_point(|&s| s <= n).saturating_sub(1);

    let raw: Vec<Option<Homography>> = input
        .iter()
        .map(|f| fit_image_to_pitch(&f.keypoints, w, h))
        .collect::<Result<_, _>>()?;
    let held = hold_within_shots(&input, &raw, &shot_of, w, h);

    let mut out_frames = Vec::with_capacity(input.len());
    // The track key of each output object, for the teams.
    let mut keys: Vec<Vec<Option<String>>> = Vec::with_capacity(input.len());
    let mut to_sample: BTreeMap<i64, Vec<teams::Sample>> = BTreeMap::new();
    let mut samples: BTreeMap<String, Track> = BTreeMap::new();
    // The tracks clustered into teams (not goalkeepers, referees or the ball).
    let mut clustered_tracks: std::collections::HashSet<&str> = Default::default();
    for (f, hm) in input.iter().zip(&held) {
        let shot = shot_of(f.number);
        let mut objects = Vec::with_capacity(f.objects.len());
        let mut frame_keys = Vec::with_capacity(f.objects.len());
        for o in f.objects {
            let Some(b) = o.bbox.as_deref().filter(|b| b.len() >= 4) else {
                continue;
            };
            let ground = if o.class_id == Some(0.0) {
                [(b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0]
            } else {
                [(b[0] + b[2]) / 2.0, b[3]]
            };
            let pos = hm.as_ref().and_then(|hm| to_pitch(hm, ground));
            let id: Value =
                o.id.as_deref()
                    .and_then(|t| serde_json::from_str(t).ok())
                    .unwrap_or(Value::Null);
            if let Some(key) = &o.id {
                let clustered = !matches!(
                    o.class_id,
                    Some(c) if c == teams::BALL || c == teams::GOALKEEPER || c == teams::REFEREE
                );
                if clustered {
                    clustered_tracks.insert(key);
                    if matches!(shirts, Shirts::Video(_)) {
                        to_sample.entry(f.number).or_default().push(teams::Sample {
                            track: key.clone(),
                            bbox: [b[0], b[1], b[2], b[3]],
                        });
                    }
                }
                let t = samples.entry(key.clone()).or_insert_with(|| Track {
                    id: id.clone(),
                    class_id: o.class_id,
                    seen: 0,
                    points: Vec::new(),
                });
                t.seen += 1;
                if let Some(p) = pos {
                    t.points.push((f.number, shot, p));
                }
            }
            frame_keys.push(o.id.clone());
            objects.push(ObjectPosition {
                id,
                class_id: o.class_id,
                x: pos.map(|p| p[0]),
                y: pos.map(|p| p[1]),
                team: None,
                bbox: [b[0], b[1], b[2], b[3]],
            });
        }
        keys.push(frame_keys);
        out_frames.push(FrameAnalytics {
            frame_number: f.number,
            shot,
            homography: *hm,
            objects,
            keypoints: f.keypoints.clone(),
        });
    }
    let (mut team_of, team_colours) = match shirts {
        Shirts::Video(path) => teams::teams_by_vote(&teams::sample_video(path, &to_sample)?),
        Shirts::Sampled(all) => teams::teams_by_vote(&all.only(|k| clustered_tracks.contains(k))),
        Shirts::None => (HashMap::new(), [None, None]),
    };
    if !team_of.is_empty() {
        goalkeepers_by_position(&out_frames, &keys, &samples, &mut team_of);
    }
    for (f, ks) in out_frames.iter_mut().zip(&keys) {
        for (o, k) in f.objects.iter_mut().zip(ks) {
            o.team = k.as_ref().and_then(|k| team_of.get(k).copied());
        }
    }
    let tracks = samples
        .into_iter()
        .map(|(k, t)| {
            let mut s = t.summary(video.fps);
            s.team = team_of.get(&k).copied();
            s
        })
        .collect();
    let frames_with_homography = held.iter().filter(|h| h.is_some()).count();
    Ok(Analytics {
        video,
        pitch_length_m: PITCH_LENGTH_M,
        pitch_width_m: PITCH_WIDTH_M,
        shots,
        frames_with_homography,
        note: (frames_with_homography == 0).then(|| {
            "no frame has a homography (no frame has 32 keypoints of which at least 5, and \
             most, fit one): no pitch in view, so no pitch positions, distances or speeds"
                .to_string()
        }),
        team_colours_bgr: team_colours
            .map(|c| c.map(|c| c.map(|v| v.round().clamp(0.0, 255.0) as u8))),
        frames: out_frames,
        tracks,
    })
}

/// A goalkeeper's team: the team whose players stand nearest him on the pitch, on average
/// over the frames where both have positions.
fn goalkeepers_by_position(
    frames: &[FrameAnalytics],
    keys: &[Vec<Option<String>>],
    tracks: &BTreeMap<String, Track>,
    team_of: &mut HashMap<String, u8>,
) {
    let keepers: Vec<&String> = tracks
        .iter()
        .filter(|(_, t)| t.class_id == Some(teams::GOALKEEPER))
        .map(|(k, _)| k)
        .collect();
    for keeper in keepers {
        let mut sum = [0.0; 2];
        let mut n = [0usize; 2];
        for (f, ks) in frames.iter().zip(keys) {
            let at = |o: &ObjectPosition| o.x.zip(o.y).map(|(x, y)| [x, y]);
            let Some(me) = f
                .objects
                .iter()
                .zip(ks)
                .find(|(_, k)| k.as_ref() == Some(keeper))
                .and_then(|(o, _)| at(o))
            else {
                continue;
            };
            let mut nearest = [f64::INFINITY; 2];
            for (o, k) in f.objects.iter().zip(ks) {
                let (Some(team), Some(p)) = (k.as_ref().and_then(|k| team_of.get(k)), at(o)) else {
                    continue;
                };
                let t = usize::from(*team);
                nearest[t] = nearest[t].min(dist(me, p));
            }
            for t in 0..2 {
                if nearest[t].is_finite() {
                    sum[t] += nearest[t];
                    n[t] += 1;
                }
            }
        }
        let mean = |t: usize| {
            if n[t] > 0 {
                sum[t] / n[t] as f64
            } else {
                f64::INFINITY
            }
        };
        if n[0] + n[1] > 0 {
            team_of.insert(keeper.clone(), u8::from(mean(1) < mean(0)));
        }
    }
}

/// RANSAC homography from the pitch (metres) to the image, from the keypoints that are in
/// the image and not `[0, 0]`, inverted to map the image onto the pitch. `None` with fewer
/// than five inliers, or inliers not the majority.
pub fn fit_image_to_pitch(
    keypoints: &[[f64; 2]],
    width: f64,
    height: f64,
) -> Result<Option<Homography>, ScoreError> {
    let template = vertices_m();
    let (mut img, mut pitch) = (Vector::<Point2d>::new(), Vector::<Point2d>::new());
    for (i, p) in keypoints.iter().enumerate().take(KEYPOINT_COUNT) {
        let visible = !(p[0] == 0.0 && p[1] == 0.0)
            && (0.0..width).contains(&p[0])
            && (0.0..height).contains(&p[1]);
        if visible {
            img.push(Point2d::new(p[0], p[1]));
            pitch.push(Point2d::new(template[i][0], template[i][1]));
        }
    }
    if img.len() < 4 {
        return Ok(None);
    }
    // The threshold is in image pixels (pitch → image): 1% of the width, as the validator.
    let thresh = (width * 0.01).max(4.0);
    let mut mask = Mat::default();
    let hm = calib3d::find_homography_ext(
        &pitch,
        &img,
        calib3d::RANSAC,
        thresh,
        &mut mask,
        2000,
        0.995,
    )?;
    if hm.empty() {
        return Ok(None);
    }
    // Four points fit any homography exactly: a fifth must agree, and most of them must.
    let inliers = mask.data_bytes()?.iter().filter(|&&b| b != 0).count();
    if inliers < 5 || 2 * inliers < img.len() {
        return Ok(None);
    }
    let mut m = [[0.0; 3]; 3];
    for (r, row) in m.iter_mut().enumerate() {
        for (c, v) in row.iter_mut().enumerate() {
            *v = *hm.at_2d::<f64>(r as i32, c as i32)?;
        }
    }
    Ok(invert(&m))
}

fn invert(m: &Homography) -> Option<Homography> {
    let c = |r: usize, k: usize| m[r % 3][k % 3];
    let mut inv = [[0.0; 3]; 3];
    for (r, row) in inv.iter_mut().enumerate() {
        for (k, v) in row.iter_mut().enumerate() {
            // Cofactor of (k, r): the adjugate is the transposed cofactor matrix.
            *v = c(k + 1, r + 1) * c(k + 2, r + 2) - c(k + 1, r + 2) * c(k + 2, r + 1);
        }
    }
    let det = m[0][0] * inv[0][0] + m[0][1] * inv[1][0] + m[0][2] * inv[2][0];
    if !det.is_finite() || det.abs() < 1e-12 {
        return None;
    }
    Some(inv.map(|row| row.map(|v| v / det)))
}

/// A homography scaled so that it maps the image centre with weight 1 (a common scale for
/// comparing and taking medians; the sign keeps the visible pitch in front).
fn normalized(hm: &Homography, w: f64, h: f64) -> Option<Homography> {
    let s = hm[2][0] * w / 2.0 + hm[2][1] * h / 2.0 + hm[2][2];
    (s.is_finite() && s.abs() > 1e-12).then(|| hm.map(|row| row.map(|v| v / s)))
}

fn hold_within_shots(
    input: &[Input],
    raw: &[Option<Homography>],
    shot_of: &dyn Fn(i64) -> usize,
    w: f64,
    h: f64,
) -> Vec<Option<Homography>> {
    let norm: Vec<Option<Homography>> = raw
        .iter()
        .map(|r| r.as_ref().and_then(|m| normalized(m, w, h)))
        .collect();
    input
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let shot = shot_of(f.number);
            // `input` is sorted by frame number: the window is a few entries either side
            // (bounded, so an answer of a million frames stays linear).
            let span = 2 * HOLD as usize + 1;
            let (lo, hi) = (i.saturating_sub(span), (i + span + 1).min(input.len()));
            let near: Vec<(f64, &Homography)> = input[lo..hi]
                .iter()
                .zip(&norm[lo..hi])
                .filter(|(g, _)| (g.number - f.number).abs() <= HOLD && shot_of(g.number) == shot)
                .filter_map(|(g, m)| m.as_ref().map(|m| ((g.number - f.number) as f64, m)))
                .collect();
            if near.is_empty() {
                return None;
            }
            // Where each maps the image centre (normalised: weight 1); fits far from the
            // median of those are wrong fits, left out.
            let centre = |m: &Homography| {
                [
                    m[0][0] * w / 2.0 + m[0][1] * h / 2.0 + m[0][2],
                    m[1][0] * w / 2.0 + m[1][1] * h / 2.0 + m[1][2],
                ]
            };
            let mut xs: Vec<f64> = near.iter().map(|(_, m)| centre(m)[0]).collect();
            let mut ys: Vec<f64> = near.iter().map(|(_, m)| centre(m)[1]).collect();
            let mid = [median(&mut xs), median(&mut ys)];
            let near: Vec<(f64, &Homography)> = near
                .into_iter()
                .filter(|(_, m)| dist(centre(m), mid) <= JUMP_M)
                .collect();
            if near.is_empty() {
                return None;
            }
            // Each entry: a least-squares line over time, taken at this frame (the camera
            // moves smoothly; a line follows a pan without lagging).
            let n = near.len() as f64;
            let ms = near.iter().map(|q| q.0).sum::<f64>() / n;
            let sss: f64 = near.iter().map(|q| (q.0 - ms).powi(2)).sum();
            let mut out = [[0.0; 3]; 3];
            for (r, row) in out.iter_mut().enumerate() {
                for (c, v) in row.iter_mut().enumerate() {
                    let mv = near.iter().map(|q| q.1[r][c]).sum::<f64>() / n;
                    let slope = if sss > 0.0 {
                        near.iter()
                            .map(|q| (q.0 - ms) * (q.1[r][c] - mv))
                            .sum::<f64>()
                            / sss
                    } else {
                        0.0
                    };
                    *v = mv - slope * ms;
                }
            }
            Some(out)
        })
        .collect()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// An image point on the pitch (m); `None` at or beyond the horizon, or far off the pitch.
pub fn to_pitch(hm: &Homography, p: [f64; 2]) -> Option<[f64; 2]> {
    let z = hm[2][0] * p[0] + hm[2][1] * p[1] + hm[2][2];
    if z <= 0.0 {
        return None;
    }
    let x = (hm[0][0] * p[0] + hm[0][1] * p[1] + hm[0][2]) / z;
    let y = (hm[1][0] * p[0] + hm[1][1] * p[1] + hm[1][2]) / z;
    let near = (-OUTSIDE_M..=PITCH_LENGTH_M + OUTSIDE_M).contains(&x)
        && (-OUTSIDE_M..=PITCH_WIDTH_M + OUTSIDE_M).contains(&y);
    near.then_some([x, y])
}

struct Track {
    id: Value,
    class_id: Option<f64>,
    seen: usize,
    /// (frame, shot, position), in frame order.
    points: Vec<(i64, usize, [f64; 2])>,
}

impl Track {
    fn summary(&self, fps: f64) -> TrackSummary {
        // Half a second of frames on either side of the fit's centre: a 0.5 s window at
        // least (the issue's smoothing span).
        let half = (0.25 * fps).ceil().max(1.0) as i64;
        let mut distance = 0.0;
        let mut top: Option<f64> = None;
        let mut kept_total = 0;
        for shot in self.shots() {
            let kept = reject_jumps(&shot);
            kept_total += kept.len();
            let fits: Vec<(i64, [f64; 2], Option<[f64; 2]>)> = kept
                .iter()
                .map(|&(t, _)| {
                    // `kept` is in frame order: the window by binary search.
                    let lo = kept.partition_point(|q| q.0 < t - half);
                    let hi = kept.partition_point(|q| q.0 <= t + half);
                    let (p, v) = local_linear(&kept[lo..hi], t, half);
                    (t, p, v)
                })
                .collect();
            for w in fits.windows(2) {
                // A gap longer than the window is not walked in a straight line.
                if w[1].0 - w[0].0 <= 2 * half {
                    distance += dist(w[0].1, w[1].1);
                }
            }
            for (_, _, v) in &fits {
                if let Some(v) = v {
                    let kmh = v[0].hypot(v[1]) * fps * 3.6;
                    top = Some(top.map_or(kmh, |t: f64| t.max(kmh)));
                }
            }
        }
        TrackSummary {
            id: self.id.clone(),
            class_id: self.class_id,
            frames: self.seen,
            seconds_on_screen: self.seen as f64 / fps,
            positioned_frames: kept_total,
            distance_m: distance,
            top_speed_kmh: top,
            team: None,
        }
    }

    /// The track's positions split by shot.
    fn shots(&self) -> Vec<Vec<(i64, [f64; 2])>> {
        let mut out: Vec<Vec<(i64, [f64; 2])>> = Vec::new();
        let mut last = None;
        for &(t, s, p) in &self.points {
            if last != Some(s) {
                out.push(Vec::new());
                last = Some(s);
            }
            if let Some(v) = out.last_mut() {
                v.push((t, p));
            }
        }
        out
    }
}

fn dist(a: [f64; 2], b: [f64; 2]) -> f64 {
    (a[0] - b[0]).hypot(a[1] - b[1])
}

/// Positions further than `JUMP_M` from the median of themselves and their two neighbours
/// on either side are dropped.
fn reject_jumps(points: &[(i64, [f64; 2])]) -> Vec<(i64, [f64; 2])> {
    points
        .iter()
        .enumerate()
        .filter(|&(i, &(_, p))| {
            let lo = i.saturating_sub(2);
            let hi = (i + 3).min(points.len());
            let mut xs: Vec<f64> = points[lo..hi].iter().map(|q| q.1[0]).collect();
            let mut ys: Vec<f64> = points[lo..hi].iter().map(|q| q.1[1]).collect();
            dist(p, [median(&mut xs), median(&mut ys)]) <= JUMP_M
        })
        .map(|(_, &q)| q)
        .collect()
}

/// Least-squares line through the positions within `half` frames of `t`: the smoothed
/// position at `t`, and the velocity (m per frame) when the window spans `2 half` frames.
fn local_linear(points: &[(i64, [f64; 2])], t: i64, half: i64) -> ([f64; 2], Option<[f64; 2]>) {
    let near: Vec<(f64, [f64; 2])> = points
        .iter()
        .filter(|(s, _)| (s - t).abs() <= half)
        .map(|&(s, p)| ((s - t) as f64, p))
        .collect();
    let n = near.len() as f64;
    let ms = near.iter().map(|q| q.0).sum::<f64>() / n;
    let mp = [
        near.iter().map(|q| q.1[0]).sum::<f64>() / n,
        near.iter().map(|q| q.1[1]).sum::<f64>() / n,
    ];
    let sss: f64 = near.iter().map(|q| (q.0 - ms).powi(2)).sum();
    let span = near.last().map_or(0.0, |q| q.0) - near.first().map_or(0.0, |q| q.0);
    if sss <= 0.0 {
        return (mp, None);
    }
    let slope = |k: usize| {
        near.iter()
            .map(|q| (q.0 - ms) * (q.1[k] - mp[k]))
            .sum::<f64>()
            / sss
    };
    let b = [slope(0), slope(1)];
    let at_t = [mp[0] - b[0] * ms, mp[1] - b[1] * ms];
    let full = span >= (2 * half) as f64;
    (at_t, full.then_some(b))
}

impl Analytics {
    /// One row per object and frame: `frame_number,shot,id,class_id,x_m,y_m,team`.
    pub fn objects_csv(&self) -> String {
        let mut s = String::from("frame_number,shot,id,class_id,x_m,y_m,team\n");
        for f in &self.frames {
            for o in &f.objects {
                s.push_str(&format!(
                    "{},{},{},{},{},{},{}\n",
                    f.frame_number,
                    f.shot,
                    csv_value(&o.id),
                    opt(o.class_id),
                    opt(o.x.map(|v| (v * 1000.0).round() / 1000.0)),
                    opt(o.y.map(|v| (v * 1000.0).round() / 1000.0)),
                    o.team.map_or(String::new(), |t| t.to_string()),
                ));
            }
        }
        s
    }

    /// One row per track:
    /// `id,class_id,frames,seconds_on_screen,positioned_frames,distance_m,top_speed_kmh,team`.
    pub fn tracks_csv(&self) -> String {
        let mut s = String::from(
            "id,class_id,frames,seconds_on_screen,positioned_frames,distance_m,top_speed_kmh,team\n",
        );
        for t in &self.tracks {
            s.push_str(&format!(
                "{},{},{},{:.3},{},{:.2},{},{}\n",
                csv_value(&t.id),
                opt(t.class_id),
                t.frames,
                t.seconds_on_screen,
                t.positioned_frames,
                t.distance_m,
                t.top_speed_kmh.map_or(String::new(), |v| format!("{v:.2}")),
                t.team.map_or(String::new(), |t| t.to_string()),
            ));
        }
        s
    }
}

fn opt(v: Option<f64>) -> String {
    v.map_or(String::new(), |v| v.to_string())
}

fn csv_value(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => format!("\"{}\"", s.replace('"', "\"\"")),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_keypoints_give_the_true_homography() {
        // An affine-free view: image = pitch * 8 px/m shifted, so every vertex is visible.
        let kps: Vec<[f64; 2]> = vertices_m()
            .iter()
            .map(|p| [10.0 + p[0] * 7.5, 5.0 + p[1] * 7.5])
            .collect();
        let hm = fit_image_to_pitch(&kps, 1000.0, 600.0).unwrap().unwrap();
        let p = to_pitch(&hm, [10.0 + 60.0 * 7.5, 5.0 + 35.0 * 7.5]).unwrap();
        assert!(
            (p[0] - 60.0).abs() < 1e-6 && (p[1] - 35.0).abs() < 1e-6,
            "{p:?}"
        );
    }

    #[test]
    fn too_few_keypoints_give_none() {
        let mut kps = vec![[0.0, 0.0]; 32];
        kps[0] = [10.0, 10.0];
        kps[1] = [20.0, 30.0];
        kps[2] = [40.0, 10.0];
        assert!(fit_image_to_pitch(&kps, 100.0, 100.0).unwrap().is_none());
    }

    #[test]
    fn a_jump_is_rejected_and_a_straight_run_measured() {
        // 2 m/s along x at 25 fps for 2 s, one sample thrown 20 m off.
        let mut pts: Vec<(i64, [f64; 2])> = (0..50).map(|t| (t, [t as f64 * 0.08, 10.0])).collect();
        pts[20].1 = [30.0, 30.0];
        let kept = reject_jumps(&pts);
        assert_eq!(kept.len(), 49);
        let track = Track {
            id: Value::from(1),
            class_id: Some(2.0),
            seen: 50,
            points: pts.iter().map(|&(t, p)| (t, 0, p)).collect(),
        };
        let s = track.summary(25.0);
        assert!(
            (s.distance_m - 49.0 * 0.08).abs() < 1e-9,
            "{}",
            s.distance_m
        );
        assert!((s.top_speed_kmh.unwrap() - 7.2).abs() < 1e-9);
    }

    #[test]
    fn a_goalkeeper_joins_the_team_standing_nearest_him() {
        let obj = |id: u64, class: f64, x: f64| ObjectPosition {
            id: Value::from(id),
            class_id: Some(class),
            x: Some(x),
            y: Some(35.0),
            team: None,
            bbox: [0.0; 4],
        };
        let frames: Vec<FrameAnalytics> = (0..3)
            .map(|n| FrameAnalytics {
                frame_number: n,
                shot: 0,
                homography: None,
                keypoints: Vec::new(),
                objects: vec![
                    obj(1, 2.0, 12.0),
                    obj(2, 2.0, 20.0),
                    obj(9, 1.0, 4.0),
                    obj(7, 1.0, 90.0),
                ],
            })
            .collect();
        let keys: Vec<Vec<Option<String>>> = frames
            .iter()
            .map(|f| f.objects.iter().map(|o| Some(o.id.to_string())).collect())
            .collect();
        let track = |class: f64| Track {
            id: Value::Null,
            class_id: Some(class),
            seen: 3,
            points: Vec::new(),
        };
        let tracks: BTreeMap<String, Track> = [
            ("1".to_string(), track(2.0)),
            ("2".to_string(), track(2.0)),
            ("9".to_string(), track(1.0)),
            ("7".to_string(), track(1.0)),
        ]
        .into_iter()
        .collect();
        let mut team_of: HashMap<String, u8> = [("1".to_string(), 1), ("2".to_string(), 0)]
            .into_iter()
            .collect();
        goalkeepers_by_position(&frames, &keys, &tracks, &mut team_of);
        assert_eq!(
            team_of.get("9"),
            Some(&1),
            "player 1 (team 1) stands nearest"
        );
        assert_eq!(
            team_of.get("7"),
            Some(&0),
            "player 2 (team 0) stands nearest"
        );
    }

    #[test]
    fn a_frames_dict_says_why_nothing_is_analysed() {
        let video = VideoInfo {
            width: 100,
            height: 100,
            fps: 25.0,
        };
        let a = analyze_answer(br#"{"frames": {"0": {}}}"#, video, Shirts::None).unwrap();
        assert!(a.frames.is_empty());
        assert!(a.note.unwrap().contains("is a dict"));
    }

    #[test]
    fn inverse_is_an_inverse() {
        let m = [[2.0, 0.3, 5.0], [0.1, 1.5, -2.0], [0.001, 0.002, 1.0]];
        let i = invert(&m).unwrap();
        for (r, row) in m.iter().enumerate() {
            for c in 0..3 {
                let v: f64 = row.iter().zip(&i).map(|(a, irow)| a * irow[c]).sum();
                assert!((v - f64::from(u8::from(r == c))).abs() < 1e-12);
            }
        }
    }
}
