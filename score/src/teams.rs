//! Two teams found without training, per video: each player's shirt colour from the torso
//! part of the box with grass and shadow pixels left out, the colours clustered into two
//! (k-means), each track's team the vote of its frames (a track does not flip team frame to
//! frame). Referees (class 3) belong to no team and are not clustered; goalkeepers (class 1)
//! wear their own colours and are given to a team by position (`analytics`). Where a model
//! has no goalkeeper or referee classes, everything is a player and is clustered.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use opencv::core::Mat;
use opencv::prelude::*;
use opencv::videoio::{self, VideoCapture};

use crate::ScoreError;

/// The class ids of the Score Vision answer.
pub const BALL: f64 = 0.0;
pub const GOALKEEPER: f64 = 1.0;
pub const REFEREE: f64 = 3.0;

/// Fewer shirt pixels than this in a box: no colour (a box mostly grass, or tiny).
const MIN_PIXELS: usize = 12;

/// One object to sample: its track key, and its box.
#[derive(Debug, Clone)]
pub struct Sample {
    pub track: String,
    pub bbox: [f64; 4],
}

/// A packed 8-bit BGR image, borrowed: a decoded video frame (`Bgr::of_mat`) or a frame
/// the pipeline hands out as it runs (no copy either way).
#[derive(Debug, Clone, Copy)]
pub struct Bgr<'a> {
    pub data: &'a [u8],
    pub width: usize,
    pub height: usize,
    /// Bytes per row.
    pub stride: usize,
}

impl<'a> Bgr<'a> {
    /// The pixels of a continuous 8-bit 3-channel `Mat`.
    pub fn of_mat(img: &'a Mat) -> Result<Self, ScoreError> {
        if img.typ() != opencv::core::CV_8UC3 || !img.is_continuous() {
            return Err(ScoreError::Video(
                "shirt colours: the frame is not continuous 8-bit BGR".into(),
            ));
        }
        Ok(Self {
            data: img.data_bytes()?,
            width: img.cols() as usize,
            height: img.rows() as usize,
            stride: img.cols() as usize * 3,
        })
    }
}

/// OpenCV's 8-bit HSV of a BGR pixel (hue 0..180, saturation and value 0..255), as
/// `cvtColor(BGR2HSV)` gives it within a level of rounding.
fn hsv(b: u8, g: u8, r: u8) -> (u8, u8, u8) {
    let (bf, gf, rf) = (f64::from(b), f64::from(g), f64::from(r));
    let v = bf.max(gf).max(rf);
    let diff = v - bf.min(gf).min(rf);
    let s = if v > 0.0 { 255.0 * diff / v } else { 0.0 };
    let h = if diff == 0.0 {
        0.0
    } else if v == rf {
        60.0 * (gf - bf) / diff
    } else if v == gf {
        120.0 + 60.0 * (bf - rf) / diff
    } else {
        240.0 + 60.0 * (rf - gf) / diff
    };
    let h = if h < 0.0 { h + 360.0 } else { h };
    ((h / 2.0).round() as u8 % 180, s.round() as u8, v as u8)
}

/// The mean BGR of the torso (the box's middle half across, 15–50 % down) without grass
/// (green hue, saturated) and shadow (dark) pixels; `None` when too few remain.
pub fn shirt_colour(img: &Bgr<'_>, bbox: [f64; 4]) -> Option<[f64; 3]> {
    let (w, h) = (bbox[2] - bbox[0], bbox[3] - bbox[1]);
    if !(w.is_finite() && h.is_finite()) {
        return None;
    }
    let clamp = |v: f64, hi: usize| v.max(0.0).min(hi as f64) as usize;
    let x0 = clamp((bbox[0] + 0.25 * w).floor(), img.width);
    let x1 = clamp((bbox[2] - 0.25 * w).ceil(), img.width);
    let y0 = clamp((bbox[1] + 0.15 * h).floor(), img.height);
    let y1 = clamp((bbox[1] + 0.5 * h).ceil(), img.height);
    if x1 < x0 + 2 || y1 < y0 + 2 {
        return None;
    }
    let (mut sum, mut n) = ([0.0; 3], 0usize);
    for row in y0..y1 {
        let start = row * img.stride + x0 * 3;
        let Some(px) = img.data.get(start..start + (x1 - x0) * 3) else {
            break;
        };
        for p in px.chunks_exact(3) {
            let (hue, sat, val) = hsv(p[0], p[1], p[2]);
            let grass = (30..=90).contains(&hue) && sat > 50;
            let shadow = val < 45;
            if grass || shadow {
                continue;
            }
            for (s, &v) in sum.iter_mut().zip(p) {
                *s += f64::from(v);
            }
            n += 1;
        }
    }
    (n >= MIN_PIXELS).then(|| sum.map(|s| s / n as f64))
}

/// At most this many shirt colours are kept per track (evenly spread over its frames): the
/// team vote needs a few dozen, and a match's run at stride 1 would otherwise keep every
/// player on every frame (~1.4 million samples for 90 minutes).
pub const MAX_SAMPLES_PER_TRACK: usize = 128;

/// Shirt colours by track, bounded: each track keeps at most [`MAX_SAMPLES_PER_TRACK`],
/// evenly spaced over the samples it was offered (when a track's store is full, every other
/// sample is dropped and from then on only every second one, then fourth, ... is kept), so a
/// long track does not outvote the others by its length alone and memory stays flat
/// however long the video.
#[derive(Debug, Clone, Default)]
pub struct ShirtSamples {
    tracks: BTreeMap<String, TrackShirts>,
}

#[derive(Debug, Clone)]
struct TrackShirts {
    kept: Vec<[f64; 3]>,
    /// One offered sample in `every` is kept (a power of two).
    every: u64,
    offered: u64,
}

impl ShirtSamples {
    /// Offers one sample of `track`.
    pub fn add(&mut self, track: &str, colour: [f64; 3]) {
        let t = match self.tracks.get_mut(track) {
            Some(t) => t,
            None => self.tracks.entry(track.to_owned()).or_insert(TrackShirts {
                kept: Vec::new(),
                every: 1,
                offered: 0,
            }),
        };
        let n = t.offered;
        t.offered += 1;
        if !n.is_multiple_of(t.every) {
            return;
        }
        if t.kept.len() == MAX_SAMPLES_PER_TRACK {
            // Kept: offered samples 0, every, 2*every, ...; keep 0, 2*every, ... of them.
            let mut i = 0;
            t.kept.retain(|_| {
                i += 1;
                i % 2 == 1
            });
            t.every *= 2;
            if !n.is_multiple_of(t.every) {
                return;
            }
        }
        t.kept.push(colour);
    }

    /// The samples kept, track by track (tracks in key order).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[f64; 3])> {
        self.tracks
            .iter()
            .flat_map(|(k, t)| t.kept.iter().map(move |c| (k.as_str(), c)))
    }

    /// The number of samples kept.
    pub fn len(&self) -> usize {
        self.tracks.values().map(|t| t.kept.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Only the tracks `keep` says yes to.
    pub fn only(&self, keep: impl Fn(&str) -> bool) -> Self {
        Self {
            tracks: self
                .tracks
                .iter()
                .filter(|(k, _)| keep(k))
                .map(|(k, t)| (k.clone(), t.clone()))
                .collect(),
        }
    }
}

/// Shirt colours of the given objects, frame by frame, read from the video (frames by
/// number, in decoding order). A run collects them from its own frames instead
/// (`analytics::Shirts::Sampled`): the video is not decoded twice.
pub fn sample_video(
    path: &Path,
    frames: &BTreeMap<i64, Vec<Sample>>,
) -> Result<ShirtSamples, ScoreError> {
    let mut cap = VideoCapture::from_file(path, videoio::CAP_ANY)?;
    if !cap.is_opened()? {
        return Err(ScoreError::Video(format!(
            "{}: cannot open",
            path.display()
        )));
    }
    let last = frames.keys().next_back().copied().unwrap_or(-1);
    let mut out = ShirtSamples::default();
    let mut img = Mat::default();
    let mut n = 0i64;
    while n <= last && cap.read(&mut img)? {
        if let Some(samples) = frames.get(&n) {
            let bgr = Bgr::of_mat(&img)?;
            for s in samples {
                if let Some(c) = shirt_colour(&bgr, s.bbox) {
                    out.add(&s.track, c);
                }
            }
        }
        n += 1;
    }
    Ok(out)
}

fn d2(a: [f64; 3], b: [f64; 3]) -> f64 {
    (0..3).map(|k| (a[k] - b[k]).powi(2)).sum()
}

/// Two clusters of colours (k-means, seeded by the colour farthest from the mean and the
/// one farthest from it): the label of each colour.
pub fn two_means(colours: &[[f64; 3]]) -> Vec<u8> {
    if colours.len() < 2 {
        return vec![0; colours.len()];
    }
    let mean = |v: &mut dyn Iterator<Item = [f64; 3]>| {
        let (mut s, mut n) = ([0.0; 3], 0.0);
        for c in v {
            for k in 0..3 {
                s[k] += c[k];
            }
            n += 1.0;
        }
        (n > 0.0).then(|| s.map(|x| x / n))
    };
    let all = mean(&mut colours.iter().copied()).unwrap_or([0.0; 3]);
    let far = |from: [f64; 3]| {
        colours
            .iter()
            .copied()
            .max_by(|a, b| d2(*a, from).total_cmp(&d2(*b, from)))
            .unwrap_or(from)
    };
    let c0 = far(all);
    let mut centres = [c0, far(c0)];
    let mut labels = vec![0u8; colours.len()];
    for _ in 0..50 {
        let next: Vec<u8> = colours
            .iter()
            .map(|&c| u8::from(d2(c, centres[1]) < d2(c, centres[0])))
            .collect();
        let changed = next != labels;
        labels = next;
        for (k, centre) in centres.iter_mut().enumerate() {
            let members = colours
                .iter()
                .zip(&labels)
                .filter(|(_, l)| usize::from(**l) == k)
                .map(|(c, _)| *c);
            if let Some(m) = mean(&mut { members }) {
                *centre = m;
            }
        }
        if !changed {
            break;
        }
    }
    labels
}

/// Each track's team: the majority of its frames' clusters (ties to team 0); and each
/// team's shirt colour (BGR), the mean over its tracks' samples.
pub fn teams_by_vote(samples: &ShirtSamples) -> (HashMap<String, u8>, [Option<[f64; 3]>; 2]) {
    let colours: Vec<[f64; 3]> = samples.iter().map(|s| *s.1).collect();
    let labels = two_means(&colours);
    let mut votes: HashMap<String, [usize; 2]> = HashMap::new();
    for ((track, _), l) in samples.iter().zip(labels) {
        votes.entry(track.to_owned()).or_default()[usize::from(l)] += 1;
    }
    let team: HashMap<String, u8> = votes
        .into_iter()
        .map(|(t, v)| (t, u8::from(v[1] > v[0])))
        .collect();
    let mut sums = [([0.0; 3], 0usize); 2];
    for (track, c) in samples.iter() {
        let s = &mut sums[usize::from(team[track])];
        for (acc, v) in s.0.iter_mut().zip(c) {
            *acc += v;
        }
        s.1 += 1;
    }
    let colours = sums.map(|(s, n)| (n > 0).then(|| s.map(|v| v / n as f64)));
    (team, colours)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opencv::core::{Rect, Vec3b};
    use opencv::imgproc;

    #[test]
    fn a_track_keeps_a_bounded_evenly_spread_set_of_samples() {
        let mut s = ShirtSamples::default();
        // Sample i of the long track has colour [i, 0, 0]: which were kept is readable.
        let n = 10 * MAX_SAMPLES_PER_TRACK as u64 + 7;
        for i in 0..n {
            s.add("long", [i as f64, 0.0, 0.0]);
            if i < 5 {
                s.add("short", [0.0, 0.0, i as f64]);
            }
        }
        let long: Vec<f64> = s.iter().filter(|t| t.0 == "long").map(|t| t.1[0]).collect();
        assert!(long.len() <= MAX_SAMPLES_PER_TRACK, "{}", long.len());
        assert!(long.len() >= MAX_SAMPLES_PER_TRACK / 2, "{}", long.len());
        // Evenly spaced from the first sample, and spanning the track's whole length.
        let step = long[1] - long[0];
        assert_eq!(long[0], 0.0);
        assert!(long.windows(2).all(|w| w[1] - w[0] == step), "{long:?}");
        assert!(*long.last().unwrap() + 2.0 * step > n as f64, "{long:?}");
        // A short track keeps everything, and the order is by track key.
        let short: Vec<f64> = s
            .iter()
            .filter(|t| t.0 == "short")
            .map(|t| t.1[2])
            .collect();
        assert_eq!(short, [0.0, 1.0, 2.0, 3.0, 4.0]);
        assert_eq!(s.len(), long.len() + 5);
        assert_eq!(s.iter().next().unwrap().0, "long");
        assert_eq!(s.only(|k| k == "short").len(), 5);
    }

    #[test]
    fn the_vote_on_capped_samples_keeps_a_long_track_in_its_team() {
        // Track "a" (red, 20,000 samples, a few of them noisy blue) and many short blue
        // tracks: the red track is still its own team, and memory holds ~128 of it.
        let (red, blue) = ([40.0, 40.0, 200.0], [200.0, 60.0, 40.0]);
        let mut s = ShirtSamples::default();
        for i in 0..20_000 {
            s.add("a", if i % 50 == 0 { blue } else { red });
        }
        for t in 0..20 {
            for _ in 0..30 {
                s.add(&format!("b{t}"), blue);
            }
        }
        let (team, colours) = teams_by_vote(&s);
        assert!(
            team.iter()
                .filter(|t| t.0 != "a")
                .all(|t| *t.1 != team["a"])
        );
        let c = colours[usize::from(team["a"])].unwrap();
        assert!((c[2] - 200.0).abs() < 10.0, "{c:?}");
        assert!(s.len() <= MAX_SAMPLES_PER_TRACK + 20 * 30);
    }

    #[test]
    fn two_means_splits_two_shirts() {
        let mut colours = Vec::new();
        for i in 0..20 {
            let j = f64::from(i % 5);
            colours.push([40.0 + j, 40.0, 200.0 - j]);
            colours.push([230.0 - j, 230.0, 235.0]);
        }
        let l = two_means(&colours);
        for pair in l.chunks(2) {
            assert_ne!(pair[0], pair[1]);
        }
        assert!(l.iter().step_by(2).all(|&x| x == l[0]));
    }

    #[test]
    fn the_torso_without_grass() {
        // A green box with a red torso block.
        let mut img = Mat::new_rows_cols_with_default(
            100,
            100,
            opencv::core::CV_8UC3,
            opencv::core::Scalar::new(40.0, 160.0, 40.0, 0.0),
        )
        .unwrap();
        imgproc::rectangle(
            &mut img,
            Rect::new(40, 20, 20, 30),
            opencv::core::Scalar::new(40.0, 40.0, 200.0, 0.0),
            -1,
            imgproc::LINE_8,
            0,
        )
        .unwrap();
        let c = shirt_colour(&Bgr::of_mat(&img).unwrap(), [30.0, 10.0, 70.0, 90.0]).unwrap();
        assert!(
            (c[2] - 200.0).abs() < 1.0 && (c[1] - 40.0).abs() < 1.0,
            "{c:?}"
        );
    }

    #[test]
    fn hsv_is_opencvs_within_a_level() {
        // Every 7th level of each channel: 37^3 colours through cvtColor and through `hsv`.
        let levels: Vec<u8> = (0..=255).step_by(7).collect();
        let mut px = Vec::new();
        for &b in &levels {
            for &g in &levels {
                for &r in &levels {
                    px.extend([b, g, r]);
                }
            }
        }
        let n = (px.len() / 3) as i32;
        let img = Mat::from_slice(&px)
            .unwrap()
            .reshape(3, n)
            .unwrap()
            .try_clone()
            .unwrap();
        let mut cv = Mat::default();
        imgproc::cvt_color_def(&img, &mut cv, imgproc::COLOR_BGR2HSV).unwrap();
        for i in 0..n {
            let p = *img.at_2d::<Vec3b>(i, 0).unwrap();
            let want = *cv.at_2d::<Vec3b>(i, 0).unwrap();
            let (h, s, v) = hsv(p[0], p[1], p[2]);
            // Hue wraps at 180.
            let dh = (i32::from(h) - i32::from(want[0])).rem_euclid(180);
            assert!(
                dh.min(180 - dh) <= 1
                    && (i32::from(s) - i32::from(want[1])).abs() <= 1
                    && v == want[2],
                "{p:?}: ours {:?}, OpenCV {want:?}",
                (h, s, v)
            );
        }
    }
}
