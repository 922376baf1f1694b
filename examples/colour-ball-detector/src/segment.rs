//! Image operations on binary masks: colour thresholds, box counts through integral images,
//! morphology and connected components. Plain loops; no image library.

use pitchside_plugin::{FrameRef, PixelFormat};

use crate::params::Params;

/// A `width x height` binary mask, row-major, one byte per pixel (0 or 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mask {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

impl Mask {
    pub fn new(width: usize, height: usize) -> Mask {
        Mask {
            width,
            height,
            data: vec![0; width * height],
        }
    }

    pub fn get(&self, x: usize, y: usize) -> bool {
        self.data[y * self.width + x] != 0
    }

    pub fn set(&mut self, x: usize, y: usize, on: bool) {
        self.data[y * self.width + x] = on as u8;
    }

    pub fn count(&self) -> usize {
        self.data.iter().map(|&v| v as usize).sum()
    }
}

/// Summed-area table of a mask: `sum(x0, y0, x1, y1)` counts set pixels in a box in O(1).
pub struct Integral {
    width: usize,
    sums: Vec<u32>,
}

impl Integral {
    pub fn new(mask: &Mask) -> Integral {
        let w = mask.width + 1;
        let mut sums = vec![0u32; w * (mask.height + 1)];
        for y in 0..mask.height {
            let mut row = 0u32;
            for x in 0..mask.width {
                row += mask.data[y * mask.width + x] as u32;
                sums[(y + 1) * w + x + 1] = sums[y * w + x + 1] + row;
            }
        }
        Integral { width: w, sums }
    }

    /// Set pixels in `[x0, x1) x [y0, y1)`.
    pub fn sum(&self, x0: usize, y0: usize, x1: usize, y1: usize) -> u32 {
        let w = self.width;
        self.sums[y1 * w + x1] + self.sums[y0 * w + x0]
            - self.sums[y0 * w + x1]
            - self.sums[y1 * w + x0]
    }
}

/// Per-pixel colour facts the detector needs.
pub struct Colour {
    /// Pitch-green pixels.
    pub green: Mask,
    /// HSV value (brightness) scaled to 0..=255.
    pub value: Vec<u8>,
}

/// Thresholds the frame in HSV. Hue is in degrees; saturation and value in 0..1.
pub fn classify_colours(frame: &FrameRef<'_>, p: &Params) -> Colour {
    let (w, h) = (frame.width as usize, frame.height as usize);
    let mut green = Mask::new(w, h);
    let mut value = vec![0u8; w * h];
    let (ri, bi) = match frame.format {
        PixelFormat::Bgr8 => (2, 0),
        PixelFormat::Rgb8 => (0, 2),
    };
    let sat_min = p.sat_min;
    let val_min = p.val_min * 255.0;
    for y in 0..h {
        let row = &frame.data[y * frame.row_stride..y * frame.row_stride + w * 3];
        for (x, px) in row.chunks_exact(3).enumerate() {
            let (r, g, b) = (px[ri] as f32, px[1] as f32, px[bi] as f32);
            let max = r.max(g).max(b);
            let min = r.min(g).min(b);
            let delta = max - min;
            value[y * w + x] = max as u8;
            // Green hues need green to be the largest channel, or tied with it: hue in
            // [60, 180] means g == max.
            if g < max || delta <= 0.0 || max < val_min || delta / max < sat_min {
                continue;
            }
            let hue = 60.0 * ((b - r) / delta + 2.0);
            if hue >= p.hue_min && hue <= p.hue_max {
                green.set(x, y, true);
            }
        }
    }
    Colour { green, value }
}

/// Pixels whose `window x window` neighbourhood (clipped to the frame) is at least
/// `density` set.
pub fn dense(mask: &Mask, window: usize, density: f32) -> Mask {
    let integral = Integral::new(mask);
    let r = window / 2;
    let mut out = Mask::new(mask.width, mask.height);
    for y in 0..mask.height {
        let (y0, y1) = (y.saturating_sub(r), (y + r + 1).min(mask.height));
        for x in 0..mask.width {
            let (x0, x1) = (x.saturating_sub(r), (x + r + 1).min(mask.width));
            let area = ((x1 - x0) * (y1 - y0)) as f32;
            let set = integral.sum(x0, y0, x1, y1) as f32;
            out.set(x, y, set >= density * area);
        }
    }
    out
}

/// Erosion with a `(2r+1)` square. Pixels outside the frame count as set, so that objects
/// cut by the frame edge are not eaten from that side.
pub fn erode(mask: &Mask, r: usize) -> Mask {
    if r == 0 {
        return mask.clone();
    }
    let integral = Integral::new(mask);
    let mut out = Mask::new(mask.width, mask.height);
    for y in 0..mask.height {
        let (y0, y1) = (y.saturating_sub(r), (y + r + 1).min(mask.height));
        for x in 0..mask.width {
            let (x0, x1) = (x.saturating_sub(r), (x + r + 1).min(mask.width));
            let area = ((x1 - x0) * (y1 - y0)) as u32;
            out.set(x, y, integral.sum(x0, y0, x1, y1) == area);
        }
    }
    out
}

/// Dilation with a `(2r+1)` square.
pub fn dilate(mask: &Mask, r: usize) -> Mask {
    if r == 0 {
        return mask.clone();
    }
    let integral = Integral::new(mask);
    let mut out = Mask::new(mask.width, mask.height);
    for y in 0..mask.height {
        let (y0, y1) = (y.saturating_sub(r), (y + r + 1).min(mask.height));
        for x in 0..mask.width {
            let (x0, x1) = (x.saturating_sub(r), (x + r + 1).min(mask.width));
            out.set(x, y, integral.sum(x0, y0, x1, y1) > 0);
        }
    }
    out
}

/// One 8-connected component: bounding box `[x0, x1) x [y0, y1)`, pixel count and the sum
/// of `value` over its pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Component {
    pub x0: usize,
    pub y0: usize,
    pub x1: usize,
    pub y1: usize,
    pub area: usize,
    pub value_sum: u64,
}

impl Component {
    pub fn width(&self) -> usize {
        self.x1 - self.x0
    }

    pub fn height(&self) -> usize {
        self.y1 - self.y0
    }
}

/// Labels 8-connected components of `mask`; returns the components and, per pixel, the
/// component index + 1 (0 for background).
pub fn components(mask: &Mask, value: Option<&[u8]>) -> (Vec<Component>, Vec<u32>) {
    let (w, h) = (mask.width, mask.height);
    let mut labels = vec![0u32; w * h];
    let mut found = Vec::new();
    let mut stack = Vec::new();
    for start in 0..w * h {
        if mask.data[start] == 0 || labels[start] != 0 {
            continue;
        }
        let label = found.len() as u32 + 1;
        let mut c = Component {
            x0: usize::MAX,
            y0: usize::MAX,
            x1: 0,
            y1: 0,
            area: 0,
            value_sum: 0,
        };
        labels[start] = label;
        stack.push(start);
        while let Some(i) = stack.pop() {
            let (x, y) = (i % w, i / w);
            c.x0 = c.x0.min(x);
            c.y0 = c.y0.min(y);
            c.x1 = c.x1.max(x + 1);
            c.y1 = c.y1.max(y + 1);
            c.area += 1;
            c.value_sum += value.map_or(0, |v| v[i] as u64);
            for ny in y.saturating_sub(1)..(y + 2).min(h) {
                for nx in x.saturating_sub(1)..(x + 2).min(w) {
                    let j = ny * w + nx;
                    if mask.data[j] != 0 && labels[j] == 0 {
                        labels[j] = label;
                        stack.push(j);
                    }
                }
            }
        }
        found.push(c);
    }
    (found, labels)
}

/// The pitch as a vertical span per column: rows `top[x]..=bottom[x]` are pitch. `None` when
/// the frame shows no pitch.
pub struct PitchSpan {
    pub top: Vec<usize>,
    pub bottom: Vec<usize>,
}

impl PitchSpan {
    pub fn contains(&self, x: usize, y: usize) -> bool {
        y >= self.top[x] && y <= self.bottom[x]
    }
}

/// Finds the pitch: large regions of solid green, reduced to a top and bottom edge per
/// column, gaps interpolated and both edges median-filtered so that objects standing on the
/// pitch (which hide its edge in their columns) do not cut notches into it.
pub fn pitch_span(green: &Mask, p: &Params) -> Option<PitchSpan> {
    let (w, h) = (green.width, green.height);
    let solid = dense(green, p.density_window as usize, p.density_min);
    let (parts, labels) = components(&solid, None);
    let min_area = (p.min_pitch_fraction * (w * h) as f32).max(1.0) as usize;
    let keep: Vec<bool> = parts.iter().map(|c| c.area >= min_area).collect();
    if !keep.iter().any(|&k| k) {
        return None;
    }
    let mut top = vec![None; w];
    let mut bottom = vec![None; w];
    for y in 0..h {
        for x in 0..w {
            let l = labels[y * w + x];
            if l != 0 && keep[l as usize - 1] {
                top[x].get_or_insert(y);
                bottom[x] = Some(y);
            }
        }
    }
    let top = median_filter(&interpolate(&top), p.edge_window_fraction, w);
    let bottom = median_filter(&interpolate(&bottom), p.edge_window_fraction, w);
    Some(PitchSpan { top, bottom })
}

/// Fills missing entries linearly between known neighbours (constant beyond the ends).
/// At least one entry is known.
fn interpolate(values: &[Option<usize>]) -> Vec<f32> {
    let known: Vec<(usize, f32)> = values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| (i, v as f32)))
        .collect();
    let mut out = Vec::with_capacity(values.len());
    let mut k = 0;
    for i in 0..values.len() {
        while k + 1 < known.len() && known[k + 1].0 <= i {
            k += 1;
        }
        let (i0, v0) = known[k];
        let v = if i <= i0 || k + 1 == known.len() {
            v0
        } else {
            let (i1, v1) = known[k + 1];
            v0 + (v1 - v0) * (i - i0) as f32 / (i1 - i0) as f32
        };
        out.push(v);
    }
    out
}

/// Running median over `fraction * width` entries (odd, at least 1), clamped at the ends.
fn median_filter(values: &[f32], fraction: f32, width: usize) -> Vec<usize> {
    let half = ((fraction * width as f32) as usize) / 2;
    let mut window = Vec::with_capacity(2 * half + 1);
    (0..values.len())
        .map(|i| {
            window.clear();
            window.extend(
                (i.saturating_sub(half)..(i + half + 1).min(values.len())).map(|j| values[j]),
            );
            let mid = window.len() / 2;
            let (_, m, _) = window.select_nth_unstable_by(mid, f32::total_cmp);
            m.round() as usize
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(rows: &[&str]) -> Mask {
        let mut m = Mask::new(rows[0].len(), rows.len());
        for (y, row) in rows.iter().enumerate() {
            for (x, c) in row.chars().enumerate() {
                m.set(x, y, c == '#');
            }
        }
        m
    }

    #[test]
    fn integral_counts_boxes() {
        let m = mask(&["#..#", ".##.", "####"]);
        let i = Integral::new(&m);
        assert_eq!(i.sum(0, 0, 4, 3), 8);
        assert_eq!(i.sum(1, 1, 3, 3), 4);
        assert_eq!(i.sum(3, 0, 4, 1), 1);
    }

    #[test]
    fn opening_removes_thin_lines_and_keeps_blobs() {
        let m = mask(&[
            "..........",
            ".####.....",
            ".####.....",
            ".####.....",
            ".####.....",
            "..........",
            "##########",
            "..........",
        ]);
        let opened = dilate(&erode(&m, 1), 1);
        assert!(opened.get(2, 2));
        assert!(!opened.get(5, 6), "the one-pixel line survives an opening");
        assert_eq!(opened.count(), 16);
    }

    #[test]
    fn components_are_eight_connected() {
        let m = mask(&["#...", ".#..", "...#", "...#"]);
        let (parts, labels) = components(&m, None);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].area, 2);
        assert_eq!(
            (parts[1].x0, parts[1].y0, parts[1].x1, parts[1].y1),
            (3, 2, 4, 4)
        );
        assert_eq!(labels[0], labels[5]);
    }

    #[test]
    fn interpolation_and_median_bridge_an_occluded_edge() {
        let mut top = [Some(10); 12];
        top[5] = None;
        top[6] = None;
        top[7] = Some(40);
        let filled = interpolate(&top);
        assert_eq!(filled[5], 20.0);
        assert_eq!(filled[6], 30.0);
        // A dent three columns wide disappears under a window of nine.
        let smooth = median_filter(&filled, 9.0 / 12.0, 12);
        assert!(smooth.iter().all(|&v| v == 10), "{smooth:?}");
    }
}
