//! Paths, images and fixtures shared by the model tests.

use std::path::{Path, PathBuf};

use opencv::prelude::*;
use pitchside_plugin::{FrameRef, PixelFormat};
use serde_json::Value;

pub fn root() -> PathBuf {
    Path::new(
        &std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("..")
}

/// A file fetched by scripts/fetch-assets.sh; fails clearly when it is missing.
pub fn asset(name: &str) -> PathBuf {
    let p = root().join("assets").join(name);
    assert!(
        p.is_file(),
        "{} is missing: run scripts/fetch-assets.sh",
        p.display()
    );
    p
}

/// A fixture of tests/fixtures/detect.
pub fn fixture(name: &str) -> Value {
    let p = root().join("tests/fixtures/detect").join(name);
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

/// An image as OpenCV reads it: BGR, rows without padding.
pub struct Bgr {
    pub data: Vec<u8>,
    pub w: u32,
    pub h: u32,
}

pub fn imread(path: &Path) -> Bgr {
    let m = opencv::imgcodecs::imread(&*path.to_string_lossy(), opencv::imgcodecs::IMREAD_COLOR)
        .unwrap();
    assert!(!m.empty(), "cannot read {}", path.display());
    Bgr {
        data: m.data_bytes().unwrap().to_vec(),
        w: m.cols() as u32,
        h: m.rows() as u32,
    }
}

impl Bgr {
    pub fn frame(&self) -> FrameRef<'_> {
        FrameRef {
            data: &self.data,
            width: self.w,
            height: self.h,
            row_stride: self.w as usize * 3,
            format: PixelFormat::Bgr8,
            frame_number: 0,
        }
    }
}
