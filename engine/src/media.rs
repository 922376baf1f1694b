//! Images: reading with OpenCV (as `cv2.imread`, so pixels match ultralytics exactly),
//! drawing detections for people to look at.
//!
//! Without the `opencv` feature (the self-contained build) images are read with the
//! `image` crate: JPEG, and PNG with the `png` feature (off by default: see
//! engine/Cargo.toml). Sizes and orientation are as `cv2.imread`'s, but JPEG pixels may
//! differ by the decoders' IDCT and upsampling rounding: on bus.jpg and zidane.jpg at most
//! 4 levels, in 10 % and 8 % of the values (the unit test
//! `image_crate_reads_as_imread_within_rounding`).
//! Drawing (annotated output) needs OpenCV and says so.

use std::path::Path;

#[cfg(feature = "opencv")]
use opencv::core::{Mat, Point, Rect, Scalar};
#[cfg(feature = "opencv")]
use opencv::prelude::*;
use pitchside_plugin::{Detection, FrameRef, PixelFormat};

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("{path}: {message}")]
    Image { path: String, message: String },
    #[error(
        "{what} needs OpenCV, and this pitchside was built without it (the self-contained \
         build); use a build with the default features"
    )]
    NeedsOpenCv { what: &'static str },
}

/// Whether this build can draw (`--annotate`): drawing is OpenCV's.
pub const CAN_DRAW: bool = cfg!(feature = "opencv");

/// An owned, packed BGR image.
#[derive(Clone)]
pub struct Image {
    pub data: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

impl std::fmt::Debug for Image {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Image({}x{})", self.width, self.height)
    }
}

impl Image {
    pub fn frame(&self, frame_number: u64) -> FrameRef<'_> {
        FrameRef {
            data: &self.data,
            width: self.width,
            height: self.height,
            row_stride: self.width as usize * 3,
            format: PixelFormat::Bgr8,
            frame_number,
        }
    }

    /// Copies a BGR `Mat` (continuous or not).
    #[cfg(feature = "opencv")]
    pub fn from_mat(m: &Mat) -> opencv::Result<Image> {
        let m = if m.is_continuous() {
            m.clone()
        } else {
            m.try_clone()?
        };
        Ok(Image {
            data: m.data_bytes()?.to_vec(),
            width: m.cols() as u32,
            height: m.rows() as u32,
        })
    }

    #[cfg(feature = "opencv")]
    pub fn to_mat(&self) -> opencv::Result<Mat> {
        let m =
            Mat::new_rows_cols_with_data(self.height as i32, (self.width * 3) as i32, &self.data)?;
        m.reshape(3, self.height as i32)?.try_clone()
    }
}

fn err(path: &Path, message: impl Into<String>) -> MediaError {
    MediaError::Image {
        path: path.display().to_string(),
        message: message.into(),
    }
}

/// Reads an image file as BGR.
pub fn read_image(path: &Path) -> Result<Image, MediaError> {
    if !path.is_file() {
        return Err(err(path, "no such file"));
    }
    #[cfg(feature = "opencv")]
    return read_image_opencv(path);
    #[cfg(not(feature = "opencv"))]
    return read_image_pure(path);
}

/// `cv2.imread(path, IMREAD_COLOR)`.
#[cfg(feature = "opencv")]
fn read_image_opencv(path: &Path) -> Result<Image, MediaError> {
    let m = opencv::imgcodecs::imread(&*path.to_string_lossy(), opencv::imgcodecs::IMREAD_COLOR)
        .map_err(|e| err(path, e.to_string()))?;
    if m.empty() {
        return Err(err(path, "not a readable image"));
    }
    Image::from_mat(&m).map_err(|e| err(path, e.to_string()))
}

/// Reads a JPEG or PNG with the `image` crate as `cv2.imread(IMREAD_COLOR)` does: EXIF
/// orientation applied, grey expanded and alpha dropped, 16-bit reduced to 8, BGR out.
pub fn read_image_pure(path: &Path) -> Result<Image, MediaError> {
    use image::ImageDecoder;
    let e = |x: image::ImageError| err(path, format!("not a readable image: {x}"));
    let mut decoder = image::ImageReader::open(path)
        .map_err(|x| err(path, x.to_string()))?
        .with_guessed_format()
        .map_err(|x| err(path, x.to_string()))?
        .into_decoder()
        .map_err(e)?;
    let orientation = decoder.orientation().map_err(e)?;
    let mut img = image::DynamicImage::from_decoder(decoder).map_err(e)?;
    img.apply_orientation(orientation);
    let rgb = img.into_rgb8();
    let (width, height) = rgb.dimensions();
    let mut data = rgb.into_raw();
    for px in data.chunks_exact_mut(3) {
        px.swap(0, 2);
    }
    Ok(Image {
        data,
        width,
        height,
    })
}

/// A distinct colour per class / id.
#[cfg(feature = "opencv")]
pub fn colour(i: u64) -> Scalar {
    const P: [(f64, f64, f64); 8] = [
        (56.0, 56.0, 255.0),
        (151.0, 157.0, 255.0),
        (31.0, 112.0, 255.0),
        (29.0, 178.0, 255.0),
        (49.0, 210.0, 207.0),
        (10.0, 249.0, 72.0),
        (23.0, 204.0, 146.0),
        (134.0, 219.0, 61.0),
    ];
    let (b, g, r) = P[(i % P.len() as u64) as usize];
    Scalar::new(b, g, r, 0.0)
}

/// Draws a labelled box.
#[cfg(feature = "opencv")]
pub fn draw_box(img: &mut Mat, bbox: [f32; 4], label: &str, col: Scalar) -> opencv::Result<()> {
    let r = Rect::new(
        bbox[0] as i32,
        bbox[1] as i32,
        (bbox[2] - bbox[0]).max(1.0) as i32,
        (bbox[3] - bbox[1]).max(1.0) as i32,
    );
    opencv::imgproc::rectangle(img, r, col, 2, opencv::imgproc::LINE_8, 0)?;
    opencv::imgproc::put_text(
        img,
        label,
        Point::new(r.x, (r.y - 4).max(10)),
        opencv::imgproc::FONT_HERSHEY_SIMPLEX,
        0.5,
        col,
        1,
        opencv::imgproc::LINE_AA,
        false,
    )
}

/// Draws keypoints `[x, y, conf]` with confidence of at least `min_conf`.
#[cfg(feature = "opencv")]
pub fn draw_keypoints(img: &mut Mat, kps: &[[f32; 3]], min_conf: f32) -> opencv::Result<()> {
    for (i, k) in kps.iter().enumerate() {
        if k[2] >= min_conf && (k[0] > 0.0 || k[1] > 0.0) {
            opencv::imgproc::circle(
                img,
                Point::new(k[0] as i32, k[1] as i32),
                4,
                colour(i as u64 + 3),
                -1,
                opencv::imgproc::LINE_AA,
                0,
            )?;
        }
    }
    Ok(())
}

/// Writes `image` with `dets` drawn to `out`.
#[cfg(not(feature = "opencv"))]
pub fn annotate_detections(
    _image: &Image,
    _dets: &[Detection],
    _names: &dyn Fn(u32) -> String,
    _out: &Path,
) -> Result<(), MediaError> {
    Err(MediaError::NeedsOpenCv {
        what: "drawing detections (--annotate)",
    })
}

/// Writes `image` with `dets` drawn to `out`.
#[cfg(feature = "opencv")]
pub fn annotate_detections(
    image: &Image,
    dets: &[Detection],
    names: &dyn Fn(u32) -> String,
    out: &Path,
) -> Result<(), MediaError> {
    let go = || -> opencv::Result<()> {
        let mut m = image.to_mat()?;
        for d in dets {
            let label = format!("{} {:.2}", names(d.class_id), d.score);
            draw_box(&mut m, d.bbox, &label, colour(d.class_id as u64))?;
            draw_keypoints(&mut m, &d.keypoints, 0.5)?;
        }
        let ok =
            opencv::imgcodecs::imwrite(&*out.to_string_lossy(), &m, &opencv::core::Vector::new())?;
        if !ok {
            return Err(opencv::Error::new(
                0,
                "imwrite refused the file name".to_string(),
            ));
        }
        Ok(())
    };
    go().map_err(|e| err(out, e.to_string()))
}

/// What a front end draws on a frame after the boxes (the radar of `--annotate`): a layer
/// above the engine's, which the engine does not know.
#[cfg(feature = "opencv")]
pub type Overlay<'a> =
    dyn FnMut(&crate::response::FrameResult, &mut Mat) -> Result<(), String> + 'a;

/// Writes `src` again with each frame's tracked boxes, ids and keypoints drawn (a second
/// decoding pass, so the pipeline never holds frames for drawing), then `overlay`'s layer.
/// Every frame of the video up to the last result is written; frames without a result
/// (an answer that skips some) are written as they are.
#[cfg(feature = "opencv")]
pub fn annotate_video(
    src: &Path,
    frames: &[crate::response::FrameResult],
    out: &Path,
    mut overlay: Option<&mut Overlay<'_>>,
) -> Result<(), MediaError> {
    use opencv::videoio::{self, VideoCapture, VideoWriter};
    let e = |m: String| err(out, m);
    let mut cap = VideoCapture::from_file(&*src.to_string_lossy(), videoio::CAP_ANY)
        .map_err(|x| err(src, x.to_string()))?;
    let fps = cap.get(videoio::CAP_PROP_FPS).unwrap_or(25.0).max(1.0);
    let w = cap.get(videoio::CAP_PROP_FRAME_WIDTH).unwrap_or(0.0) as i32;
    let h = cap.get(videoio::CAP_PROP_FRAME_HEIGHT).unwrap_or(0.0) as i32;
    let fourcc = VideoWriter::fourcc('m', 'p', '4', 'v').map_err(|x| e(x.to_string()))?;
    let mut writer = VideoWriter::new(
        &*out.to_string_lossy(),
        fourcc,
        fps,
        opencv::core::Size::new(w, h),
        true,
    )
    .map_err(|x| e(x.to_string()))?;
    if !writer.is_opened().unwrap_or(false) {
        return Err(e("cannot open a video writer (mp4v) for this path".into()));
    }
    let mut m = Mat::default();
    let mut n = 0u64;
    for f in frames {
        if f.frame_number < n {
            // Out of order or repeated: the video is not read backwards.
            continue;
        }
        // Frames the result skips, as they are.
        while n < f.frame_number {
            if !cap.read(&mut m).unwrap_or(false) || m.empty() {
                break;
            }
            writer.write(&m).map_err(|x| e(x.to_string()))?;
            n += 1;
        }
        if !cap.read(&mut m).unwrap_or(false) || m.empty() {
            break;
        }
        n += 1;
        for o in &f.objects {
            let b = o.bbox.map(|v| v as f32);
            draw_box(
                &mut m,
                b,
                &format!("#{} c{}", o.id, o.class_id),
                colour(o.id),
            )
            .map_err(|x| e(x.to_string()))?;
        }
        let kps: Vec<[f32; 3]> = f
            .keypoints
            .iter()
            .map(|k| [k[0] as f32, k[1] as f32, 1.0])
            .collect();
        draw_keypoints(&mut m, &kps, 0.5).map_err(|x| e(x.to_string()))?;
        if let Some(draw) = overlay.as_mut() {
            draw(f, &mut m).map_err(|x| e(format!("frame {}: {x}", f.frame_number)))?;
        }
        writer.write(&m).map_err(|x| e(x.to_string()))?;
    }
    writer.release().map_err(|x| e(x.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::workspace_root;

    #[test]
    fn a_missing_or_unreadable_image_says_which_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.jpg");
        let msg = read_image(&missing).unwrap_err().to_string();
        assert!(
            msg.contains("none.jpg") && msg.contains("no such file"),
            "{msg}"
        );
        let junk = dir.path().join("junk.jpg");
        std::fs::write(&junk, b"not an image at all").unwrap();
        for msg in [
            read_image(&junk).unwrap_err().to_string(),
            read_image_pure(&junk).unwrap_err().to_string(),
        ] {
            assert!(
                msg.contains("junk.jpg") && msg.contains("not a readable image"),
                "{msg}"
            );
        }
    }

    /// The image crate's reading against cv2.imread's (OpenCV's libjpeg / libpng): the same
    /// size and, for PNG, the same bytes; JPEG may differ by the IDCT's and upsampler's
    /// rounding, by a level or so.
    #[cfg(feature = "opencv")]
    #[test]
    fn image_crate_reads_as_imread_within_rounding() {
        for name in ["bus.jpg", "zidane.jpg"] {
            let p = workspace_root().join("assets").join(name);
            let cv = read_image_opencv(&p).unwrap();
            let pure = read_image_pure(&p).unwrap();
            assert_eq!((pure.width, pure.height), (cv.width, cv.height), "{name}");
            let deltas: Vec<u8> = cv
                .data
                .iter()
                .zip(&pure.data)
                .map(|(a, b)| a.abs_diff(*b))
                .collect();
            let max = deltas.iter().copied().max().unwrap();
            let differing = deltas.iter().filter(|&&d| d > 0).count();
            eprintln!(
                "{name}: max |imread - image| = {max}, {differing} of {} values differ",
                deltas.len()
            );
            assert!(max <= JPEG_MAX_DELTA, "{name}: max delta {max}");
            // Measured: 10.1 % (bus), 8.0 % (zidane).
            assert!(
                differing * 100 <= deltas.len() * 12,
                "{name}: {differing} differ"
            );
        }
    }

    /// PNG is lossless: byte for byte. A PNG of bus.jpg's pixels, written by OpenCV.
    #[cfg(all(feature = "opencv", feature = "png"))]
    #[test]
    fn image_crate_reads_png_as_imread() {
        let dir = tempfile::tempdir().unwrap();
        let png = dir.path().join("bus.png");
        let bus = read_image_opencv(&workspace_root().join("assets/bus.jpg")).unwrap();
        assert!(
            opencv::imgcodecs::imwrite(
                &*png.to_string_lossy(),
                &bus.to_mat().unwrap(),
                &opencv::core::Vector::new()
            )
            .unwrap()
        );
        let (cv, pure) = (
            read_image_opencv(&png).unwrap(),
            read_image_pure(&png).unwrap(),
        );
        assert_eq!((pure.width, pure.height), (cv.width, cv.height));
        assert!(pure.data == cv.data, "PNG pixels differ");
    }

    /// Measured on bus.jpg and zidane.jpg: 4 levels (libjpeg-turbo's ISLOW IDCT and fancy
    /// upsampling against zune-jpeg's).
    #[cfg(feature = "opencv")]
    const JPEG_MAX_DELTA: u8 = 4;
}
