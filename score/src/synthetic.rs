//! A synthetic broadcast-like clip with known ground truth, for testing the score where no
//! football footage can be fetched: the validator's pitch template drawn through a moving
//! camera (a pan, then a cut to a tighter view), striped grass with grain,
//! worn lines, stands beyond the far touchline, and players (two teams, red and white), two
//! goalkeepers in their own shirts (purple, cyan), a referee (yellow) and a ball moving
//! with ids. Everything is deterministic (own PRNG, integer drawing), and the video is
//! written losslessly so that any decoder returns exactly the rendered pixels.
//!
//! `answers` derives the test answers from the truth: exact, noisy, partially missing,
//! wrongly ordered, all-zero, and probes of the validator's quirks and of its rewrite
//! before storing (integer keypoints, a 33rd keypoint, unrounded, ties, frames as a dict);
//! `truth_positions` gives every mover's true pitch position and velocity (analytics).

use std::path::Path;

use opencv::core::{self, Mat, Point, Scalar, Size, Vector};
use opencv::imgproc;
use opencv::prelude::*;
use opencv::videoio::VideoWriter;
use serde_json::{Value, json};

use crate::ScoreError;
use crate::template::{self, KEYPOINT_COUNT, PITCH_LENGTH, PITCH_WIDTH};

pub const WIDTH: i32 = 960;
pub const HEIGHT: i32 = 540;
pub const FRAMES: usize = 80;
/// The first frame of the second shot.
pub const CUT_AT: usize = 48;
pub const FPS: f64 = 25.0;

/// splitmix64: small, fast, and the same on every platform.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-12);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// A pinhole camera looking at the pitch (world in cm: x along the length, y across, z up).
#[derive(Debug, Clone, Copy)]
pub struct Camera {
    /// Rows: right, down, forward.
    rot: [[f64; 3]; 3],
    centre: [f64; 3],
    focal: f64,
}

impl Camera {
    fn look_at(centre: [f64; 3], target: [f64; 3], focal: f64) -> Self {
        let f = normalize(sub(target, centre));
        let r = normalize(cross([0.0, 0.0, 1.0], f));
        let d = cross(r, f); // image down: towards the camera and down in the world
        Self {
            rot: [r, d, f],
            centre,
            focal,
        }
    }

    /// The camera of frame `t`: a pan across the left half, then (from `CUT_AT`) a cut to a
    /// tighter view of the same area.
    pub fn at(t: usize) -> Self {
        let centre = [PITCH_LENGTH / 2.0, PITCH_WIDTH + 2600.0, 1300.0];
        if t < CUT_AT {
            let s = t as f64 / (CUT_AT - 1) as f64;
            Self::look_at(
                centre,
                [2600.0 + 1400.0 * s, 3300.0, 0.0],
                1100.0 + 150.0 * s,
            )
        } else {
            // A tighter shot of the same area: most players stay in view but jump in the
            // image, which is how the validator recognises a cut.
            let s = (t - CUT_AT) as f64 / (FRAMES - CUT_AT - 1) as f64;
            Self::look_at(centre, [4200.0 + 500.0 * s, 3600.0, 0.0], 1700.0)
        }
    }

    /// Image position and depth of a world point.
    pub fn project3(&self, p: [f64; 3]) -> ([f64; 2], f64) {
        let q = sub(p, self.centre);
        let c = [
            dot(self.rot[0], q),
            dot(self.rot[1], q),
            dot(self.rot[2], q),
        ];
        let u = self.focal * c[0] / c[2] + f64::from(WIDTH) / 2.0;
        let v = self.focal * c[1] / c[2] + f64::from(HEIGHT) / 2.0;
        ([u, v], c[2])
    }

    pub fn project(&self, x: f64, y: f64) -> [f64; 2] {
        self.project3([x, y, 0.0]).0
    }

    /// Depth of a ground point.
    fn depth(&self, p: [f64; 2]) -> f64 {
        dot(self.rot[2], sub([p[0], p[1], 0.0], self.centre))
    }

    /// A ground polygon clipped to the part in front of the camera (Sutherland-Hodgman
    /// against the near plane), projected in fixed point: a polygon with a corner behind
    /// the camera would otherwise project inside out.
    fn polygon(&self, poly: &[[f64; 2]]) -> Vector<Point> {
        let mut out = Vec::new();
        for (i, &a) in poly.iter().enumerate() {
            let b = poly[(i + 1) % poly.len()];
            let (da, db) = (self.depth(a) - NEAR, self.depth(b) - NEAR);
            if da >= 0.0 {
                out.push(a);
            }
            if (da >= 0.0) != (db >= 0.0) {
                let s = da / (da - db);
                out.push([a[0] + (b[0] - a[0]) * s, a[1] + (b[1] - a[1]) * s]);
            }
        }
        out.iter()
            .map(|p| to_fixed(self.project(p[0], p[1])))
            .collect()
    }
}

/// Nearest depth drawn, in cm.
const NEAR: f64 = 100.0;

fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}
fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}
fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}
fn normalize(a: [f64; 3]) -> [f64; 3] {
    let n = dot(a, a).sqrt();
    [a[0] / n, a[1] / n, a[2] / n]
}

/// One object of the ground truth, in the answer's terms.
#[derive(Debug, Clone)]
pub struct TruthObject {
    pub id: u32,
    pub class_id: u32,
    pub bbox: [f64; 4],
}

/// The ground truth of one frame.
#[derive(Debug, Clone)]
pub struct TruthFrame {
    /// The 32 template vertices in the image, `None` outside it.
    pub keypoints: Vec<Option<[f64; 2]>>,
    pub objects: Vec<TruthObject>,
}

struct Mover {
    id: u32,
    class_id: u32,
    start: [f64; 2],
    velocity: [f64; 2],
    phase: f64,
    height: f64,
}

impl Mover {
    fn position(&self, t: usize) -> [f64; 2] {
        let t = t as f64;
        [
            self.start[0] + self.velocity[0] * t + 120.0 * (0.07 * t + self.phase).sin(),
            self.start[1] + self.velocity[1] * t + 80.0 * (0.05 * t + 2.0 * self.phase).cos(),
        ]
    }
}

/// Where every mover truly is at frame `t`, visible or not: (id, class_id, position on the
/// pitch in metres, velocity in m/s), for the analytics' tests.
pub fn truth_positions(t: usize) -> Vec<(u32, u32, [f64; 2], [f64; 2])> {
    let tf = t as f64;
    movers()
        .iter()
        .map(|m| {
            let p = m.position(t);
            // d/dt of Mover::position, per frame, in cm.
            let v = [
                m.velocity[0] + 120.0 * 0.07 * (0.07 * tf + m.phase).cos(),
                m.velocity[1] - 80.0 * 0.05 * (0.05 * tf + 2.0 * m.phase).sin(),
            ];
            (
                m.id,
                m.class_id,
                [p[0] / 100.0, p[1] / 100.0],
                [v[0] / 100.0 * FPS, v[1] / 100.0 * FPS],
            )
        })
        .collect()
}

fn movers() -> Vec<Mover> {
    let mut rng = Rng::new(0x5C0E_0001);
    let mut v = Vec::new();
    for id in 1..=22u32 {
        v.push(Mover {
            id,
            class_id: 2,
            start: [
                600.0 + rng.uniform() * 10800.0,
                600.0 + rng.uniform() * 5800.0,
            ],
            velocity: [(rng.uniform() - 0.5) * 30.0, (rng.uniform() - 0.5) * 20.0],
            phase: rng.uniform() * 6.0,
            height: 170.0 + rng.uniform() * 20.0,
        });
    }
    v.push(Mover {
        id: 23,
        class_id: 3,
        start: [4200.0, 3000.0],
        velocity: [30.0, 4.0],
        phase: 1.0,
        height: 178.0,
    });
    v.push(Mover {
        id: 24,
        class_id: 0,
        start: [3600.0, 3400.0],
        velocity: [60.0, 5.0],
        phase: 0.3,
        height: 22.0,
    });
    // Two goalkeepers (class 1) in their own shirts, each moving with a team-mate a few
    // metres from him: 25 beside white's 18 (in front of the left goal in the first shot),
    // 26 beside red's 4. Nearest team-mates decide a goalkeeper's team (`analytics`).
    for (id, mate, offset) in [(25, 18, [-400.0, 300.0]), (26, 4, [-300.0, -200.0])] {
        let m = &v[mate - 1];
        v.push(Mover {
            id,
            class_id: 1,
            start: [m.start[0] + offset[0], m.start[1] + offset[1]],
            velocity: m.velocity,
            phase: m.phase,
            height: 186.0,
        });
    }
    v
}

/// The team (0: red, ids 1-11; 1: white, ids 12-22) each goalkeeper of the clip plays for.
pub const GOALKEEPER_TEAMS: [(u32, u8); 2] = [(25, 1), (26, 0)];

fn to_fixed(p: [f64; 2]) -> Point {
    // 4 fractional bits (the `shift` argument of the drawing calls).
    Point::new((p[0] * 16.0).round() as i32, (p[1] * 16.0).round() as i32)
}

/// Render the clip into `path` (FFV1, lossless) and return its ground truth.
pub fn render(path: &Path) -> Result<Vec<TruthFrame>, ScoreError> {
    let fourcc = VideoWriter::fourcc('F', 'F', 'V', '1')?;
    let mut writer = VideoWriter::new(path, fourcc, FPS, Size::new(WIDTH, HEIGHT), true)?;
    if !writer.is_opened()? {
        return Err(ScoreError::Video(format!(
            "{}: cannot write FFV1",
            path.display()
        )));
    }
    let mut truth = Vec::with_capacity(FRAMES);
    for t in 0..FRAMES {
        let (img, tf) = render_frame(t)?;
        writer.write(&img)?;
        truth.push(tf);
    }
    writer.release()?;
    Ok(truth)
}

/// The grain added to every frame: a fixed field, shifted a little from frame to frame.
fn grain() -> Result<Mat, ScoreError> {
    let (gw, gh) = (WIDTH + 64, HEIGHT + 64);
    let mut rng = Rng::new(0x5C0E_0002);
    let data: Vec<u8> = (0..gw * gh * 3)
        .map(|_| (rng.next_u64() % 9) as u8)
        .collect();
    let flat = Mat::from_slice(&data)?;
    Ok(flat.reshape(3, gh)?.try_clone()?)
}

/// One frame and its truth.
pub fn render_frame(t: usize) -> Result<(Mat, TruthFrame), ScoreError> {
    let cam = Camera::at(t);
    let mut img = Mat::new_rows_cols_with_default(
        HEIGHT,
        WIDTH,
        core::CV_8UC3,
        Scalar::new(70.0, 58.0, 52.0, 0.0),
    )?;

    // Stands: a band of coloured blocks above the far touchline's surround.
    let mut rng = Rng::new(0x5C0E_0003);
    for i in 0..40 {
        let x = f64::from(i) * 320.0 - 400.0;
        let poly = cam.polygon(&[
            [x, -2600.0],
            [x + 320.0, -2600.0],
            [x + 320.0, -500.0],
            [x, -500.0],
        ]);
        let c = 60.0 + rng.uniform() * 90.0;
        let colour = Scalar::new(c, c * 0.8, c * 1.1, 0.0);
        if poly.len() >= 3 {
            imgproc::fill_convex_poly(&mut img, &poly, colour, imgproc::LINE_8, 4)?;
        }
    }

    // Grass with mowing stripes across the length (pitch plus a 5 m surround).
    let stripe = 600.0;
    let n = ((PITCH_LENGTH + 1000.0) / stripe).ceil() as i32;
    for i in 0..n {
        let x0 = -500.0 + f64::from(i) * stripe;
        let poly = cam.polygon(&[
            [x0, -500.0],
            [x0 + stripe, -500.0],
            [x0 + stripe, PITCH_WIDTH + 500.0],
            [x0, PITCH_WIDTH + 500.0],
        ]);
        let colour = if i % 2 == 0 {
            Scalar::new(48.0, 128.0, 58.0, 0.0)
        } else {
            Scalar::new(58.0, 146.0, 70.0, 0.0)
        };
        if poly.len() >= 3 {
            imgproc::fill_convex_poly(&mut img, &poly, colour, imgproc::LINE_8, 4)?;
        }
    }

    // Lines, 12 cm wide, in 25 cm pieces; wear fixed in pitch space (the same piece is worn
    // in every frame): brightness varies and some pieces are missing.
    for (li, line) in template::markings().iter().enumerate() {
        let mut wear = Rng::new(0x5C0E_1000 + li as u64);
        for seg in line.windows(2) {
            let len = ((seg[1][0] - seg[0][0]).powi(2) + (seg[1][1] - seg[0][1]).powi(2)).sqrt();
            let pieces = (len / 25.0).ceil().max(1.0) as usize;
            for k in 0..pieces {
                let (a, b) = (k as f64 / pieces as f64, (k + 1) as f64 / pieces as f64);
                let lerp = |s: f64| {
                    [
                        seg[0][0] + (seg[1][0] - seg[0][0]) * s,
                        seg[0][1] + (seg[1][1] - seg[0][1]) * s,
                    ]
                };
                let (pa, pb) = (lerp(a), lerp(b));
                let worn = wear.uniform();
                // Greenish white, as lines on grass look on broadcasts: pure white would not
                // pass the validator's grass mask (saturation >= 40) and no line would count.
                let shade = 215.0 + 35.0 * wear.uniform();
                if worn < 0.04 {
                    continue;
                }
                let (ia, za) = cam.project3([pa[0], pa[1], 0.0]);
                if za < NEAR || cam.depth(pb) < NEAR {
                    continue;
                }
                let ib = cam.project(pb[0], pb[1]);
                let thickness = ((12.0 * cam.focal / za).round() as i32).clamp(1, 4);
                imgproc::line(
                    &mut img,
                    to_fixed(ia),
                    to_fixed(ib),
                    Scalar::new(shade * 0.8, shade, shade * 0.82, 0.0),
                    thickness,
                    imgproc::LINE_AA,
                    4,
                )?;
            }
        }
    }

    // Players, referee, ball: far ones first.
    let mut objs: Vec<(f64, TruthObject, [f64; 2], f64)> = Vec::new();
    for m in movers() {
        let p = m.position(t);
        let (foot, depth) = cam.project3([p[0], p[1], 0.0]);
        if depth < NEAR {
            continue;
        }
        let (head, _) = cam.project3([p[0], p[1], m.height]);
        let h = foot[1] - head[1];
        let w = if m.class_id == 0 { h } else { h * 0.42 };
        let cx = foot[0];
        let bbox = [cx - w / 2.0, head[1], cx + w / 2.0, foot[1]];
        // In the answer only when its foot is in the frame; clipped like a detector's boxes.
        if !(0.0..f64::from(WIDTH)).contains(&cx) || !(0.0..f64::from(HEIGHT)).contains(&foot[1]) {
            continue;
        }
        let clipped = [
            bbox[0].max(0.0),
            bbox[1].max(0.0),
            bbox[2].min(f64::from(WIDTH)),
            bbox[3].min(f64::from(HEIGHT)),
        ];
        objs.push((
            depth,
            TruthObject {
                id: m.id,
                class_id: m.class_id,
                bbox: clipped,
            },
            [cx, foot[1]],
            h,
        ));
    }
    objs.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (_, o, foot, h) in &objs {
        draw_figure(&mut img, o, *foot, *h)?;
    }

    // A little softness, then grain.
    let mut soft = Mat::default();
    imgproc::gaussian_blur(
        &img,
        &mut soft,
        Size::new(3, 3),
        0.7,
        0.7,
        core::BORDER_DEFAULT,
    )?;
    let g = grain()?;
    let off = ((t * 7) % 64) as i32;
    let roi = Mat::roi(&g, core::Rect::new(off, (t as i32 * 3) % 64, WIDTH, HEIGHT))?;
    let mut grained = Mat::default();
    core::add(&soft, &roi, &mut grained, &core::no_array(), -1)?;
    let mut out = Mat::default();
    core::subtract(&grained, &Scalar::all(4.0), &mut out, &core::no_array(), -1)?;

    let keypoints = template::vertices()
        .iter()
        .map(|v| {
            let (p, depth) = cam.project3([v[0], v[1], 0.0]);
            (depth > NEAR
                && (0.0..f64::from(WIDTH)).contains(&p[0])
                && (0.0..f64::from(HEIGHT)).contains(&p[1]))
            .then_some(p)
        })
        .collect();
    let mut objects: Vec<TruthObject> = objs.into_iter().map(|(_, o, _, _)| o).collect();
    objects.sort_by_key(|o| (o.class_id, o.id));
    Ok((out, TruthFrame { keypoints, objects }))
}

fn draw_figure(img: &mut Mat, o: &TruthObject, foot: [f64; 2], h: f64) -> Result<(), ScoreError> {
    if o.class_id == 0 {
        let r = (h / 2.0).max(1.5);
        let c = [foot[0], foot[1] - r];
        imgproc::circle(
            img,
            to_fixed(c),
            (r * 16.0) as i32,
            Scalar::all(245.0),
            -1,
            imgproc::LINE_AA,
            4,
        )?;
        return Ok(());
    }
    let shirt = match (o.class_id, o.id) {
        (3, _) => Scalar::new(20.0, 220.0, 240.0, 0.0),
        // Goalkeepers: purple (white's), cyan (red's).
        (1, 25) => Scalar::new(150.0, 40.0, 140.0, 0.0),
        (1, _) => Scalar::new(220.0, 190.0, 40.0, 0.0),
        (_, id) if id <= 11 => Scalar::new(40.0, 40.0, 200.0, 0.0),
        _ => Scalar::new(230.0, 230.0, 235.0, 0.0),
    };
    let shorts = if o.class_id == 3 {
        Scalar::all(20.0)
    } else {
        Scalar::new(90.0, 30.0, 20.0, 0.0)
    };
    let w = h * 0.42;
    let x = foot[0];
    let top = foot[1] - h;
    let rect = |x0: f64, y0: f64, x1: f64, y1: f64| {
        let a = to_fixed([x0, y0]);
        let b = to_fixed([x1, y1]);
        (a, b)
    };
    // legs, shorts, shirt, head
    let (a, b) = rect(x - w * 0.3, top + h * 0.62, x + w * 0.3, foot[1]);
    imgproc::rectangle_points(
        img,
        a,
        b,
        Scalar::new(40.0, 60.0, 80.0, 0.0),
        -1,
        imgproc::LINE_8,
        4,
    )?;
    let (a, b) = rect(x - w * 0.4, top + h * 0.5, x + w * 0.4, top + h * 0.64);
    imgproc::rectangle_points(img, a, b, shorts, -1, imgproc::LINE_8, 4)?;
    let (a, b) = rect(x - w * 0.5, top + h * 0.16, x + w * 0.5, top + h * 0.52);
    imgproc::rectangle_points(img, a, b, shirt, -1, imgproc::LINE_8, 4)?;
    let r = h * 0.085;
    imgproc::circle(
        img,
        to_fixed([x, top + r]),
        (r * 16.0) as i32,
        Scalar::new(120.0, 150.0, 200.0, 0.0),
        -1,
        imgproc::LINE_AA,
        4,
    )?;
    Ok(())
}

fn r2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn answer_json(frames: Vec<Value>) -> Value {
    json!({ "challenge_id": "synthetic", "frames": frames, "processing_time": 1.0 })
}

fn objects_json(objs: &[TruthObject], jitter: Option<&mut Rng>) -> Vec<Value> {
    let mut jitter = jitter;
    objs.iter()
        .map(|o| {
            let bbox: Vec<f64> = o
                .bbox
                .iter()
                .map(|&v| r2(v + jitter.as_mut().map_or(0.0, |r| 1.5 * r.normal())))
                .collect();
            json!({ "id": o.id, "bbox": bbox, "class_id": o.class_id })
        })
        .collect()
}

fn kp_json(kps: &[Option<[f64; 2]>]) -> Vec<Value> {
    kps.iter()
        .map(|k| match k {
            Some([x, y]) => json!([r2(*x), r2(*y)]),
            None => json!([0.0, 0.0]),
        })
        .collect()
}

/// The test answers, by name: `exact` (the truth, rounded to 2 decimals like Pitchside's
/// output), `noisy` (keypoints with 4 px Gaussian noise, boxes with 1.5 px), `partial`
/// (every other visible keypoint dropped, every 7th frame missing), `wrong_order` (the
/// keypoints in a shuffled vertex order), `all_zero` (32 × `[0, 0]`, true objects), two
/// quirk probes, `integer_keypoints` and `extra_keypoint` (33 keypoints), and three probes of
/// the validator's rewrite before it stores an answer (`crate::rewrite`): `unrounded`
/// (keypoints with 3 px noise and boxes with 1.5 px, every number at full precision),
/// `ties` (the truth snapped to eighths of a pixel: the odd eighths are exact ties at two
/// decimals, which Python rounds to even) and `frames_dict` (the exact answer with its
/// frames as a dict keyed by frame number, which the rewrite drops).
pub fn answers(truth: &[TruthFrame]) -> Vec<(&'static str, Value)> {
    let frame = |t: usize, kps: Vec<Value>, objects: Vec<Value>| json!({ "frame_number": t, "keypoints": kps, "objects": objects });
    let exact = truth
        .iter()
        .enumerate()
        .map(|(t, f)| frame(t, kp_json(&f.keypoints), objects_json(&f.objects, None)))
        .collect();

    let mut rng = Rng::new(0x5C0E_0004);
    let noisy = truth
        .iter()
        .enumerate()
        .map(|(t, f)| {
            let kps: Vec<Option<[f64; 2]>> = f
                .keypoints
                .iter()
                .map(|k| k.map(|[x, y]| [x + 4.0 * rng.normal(), y + 4.0 * rng.normal()]))
                .collect();
            let objs = objects_json(&f.objects, Some(&mut rng));
            frame(t, kp_json(&kps), objs)
        })
        .collect();

    let partial = truth
        .iter()
        .enumerate()
        .filter(|(t, _)| t % 7 != 3)
        .map(|(t, f)| {
            let mut seen = 0;
            let kps: Vec<Option<[f64; 2]>> = f
                .keypoints
                .iter()
                .map(|k| {
                    k.filter(|_| {
                        seen += 1;
                        seen % 2 == 1
                    })
                })
                .collect();
            frame(t, kp_json(&kps), objects_json(&f.objects, None))
        })
        .collect();

    let mut perm: Vec<usize> = (0..KEYPOINT_COUNT).collect();
    let mut prng = Rng::new(0x5C0E_0005);
    for i in (1..perm.len()).rev() {
        perm.swap(i, (prng.next_u64() % (i as u64 + 1)) as usize);
    }
    let wrong = truth
        .iter()
        .enumerate()
        .map(|(t, f)| {
            let kps: Vec<Option<[f64; 2]>> = perm.iter().map(|&i| f.keypoints[i]).collect();
            frame(t, kp_json(&kps), objects_json(&f.objects, None))
        })
        .collect();

    let zero = truth
        .iter()
        .enumerate()
        .map(|(t, f)| {
            frame(
                t,
                kp_json(&[None; KEYPOINT_COUNT]),
                objects_json(&f.objects, None),
            )
        })
        .collect();

    // Two probes of validator quirks: every keypoint number a JSON integer (as sent, numpy
    // would make an int64 array that cv2.perspectiveTransform rejects; the stored form has
    // floats) and a 33rd keypoint (an index past the template).
    let integer = truth
        .iter()
        .enumerate()
        .map(|(t, f)| {
            let kps: Vec<Value> = f
                .keypoints
                .iter()
                .map(|k| {
                    k.map_or(json!([0, 0]), |[x, y]| {
                        json!([x.round() as i64, y.round() as i64])
                    })
                })
                .collect();
            frame(t, kps, objects_json(&f.objects, None))
        })
        .collect();
    let extra = truth
        .iter()
        .enumerate()
        .map(|(t, f)| {
            let mut kps = kp_json(&f.keypoints);
            kps.push(json!([7.5, 530.5]));
            frame(t, kps, objects_json(&f.objects, None))
        })
        .collect();

    let mut rng = Rng::new(0x5C0E_0026);
    let unrounded = truth
        .iter()
        .enumerate()
        .map(|(t, f)| {
            let kps: Vec<Value> = f
                .keypoints
                .iter()
                .map(|k| {
                    k.map_or(json!([0.0, 0.0]), |[x, y]| {
                        json!([x + 3.0 * rng.normal(), y + 3.0 * rng.normal()])
                    })
                })
                .collect();
            let objs: Vec<Value> = f
                .objects
                .iter()
                .map(|o| {
                    let bbox: Vec<f64> = o.bbox.iter().map(|&v| v + 1.5 * rng.normal()).collect();
                    json!({ "id": o.id, "bbox": bbox, "class_id": o.class_id })
                })
                .collect();
            frame(t, kps, objs)
        })
        .collect();
    let eighth = |v: f64| (v * 8.0).round() / 8.0;
    let ties = truth
        .iter()
        .enumerate()
        .map(|(t, f)| {
            let kps: Vec<Value> = f
                .keypoints
                .iter()
                .map(|k| k.map_or(json!([0.0, 0.0]), |[x, y]| json!([eighth(x), eighth(y)])))
                .collect();
            let objs: Vec<Value> = f
                .objects
                .iter()
                .map(|o| {
                    let bbox: Vec<f64> = o.bbox.iter().map(|&v| eighth(v)).collect();
                    json!({ "id": o.id, "bbox": bbox, "class_id": o.class_id })
                })
                .collect();
            frame(t, kps, objs)
        })
        .collect();
    let mut by_number = serde_json::Map::new();
    for (t, f) in truth.iter().enumerate() {
        by_number.insert(
            t.to_string(),
            frame(t, kp_json(&f.keypoints), objects_json(&f.objects, None)),
        );
    }
    let frames_dict =
        json!({ "challenge_id": "synthetic", "frames": by_number, "processing_time": 1.0 });

    vec![
        ("exact", answer_json(exact)),
        ("noisy", answer_json(noisy)),
        ("partial", answer_json(partial)),
        ("wrong_order", answer_json(wrong)),
        ("all_zero", answer_json(zero)),
        ("integer_keypoints", answer_json(integer)),
        ("extra_keypoint", answer_json(extra)),
        ("unrounded", answer_json(unrounded)),
        ("ties", answer_json(ties)),
        ("frames_dict", frames_dict),
    ]
}
