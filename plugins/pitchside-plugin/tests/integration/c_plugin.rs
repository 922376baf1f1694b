//! The README's C example, compiled against include/pitchside_plugin.h with the system C
//! compiler and loaded through the host: proves the header matches the Rust ABI (its
//! static asserts check the layout, the calls check the conventions).

use std::path::PathBuf;
use std::process::Command;

use pitchside_plugin::host::{self, LoadError, SharedDetector};
use pitchside_plugin::serde_json::json;
use pitchside_plugin::{Detector, FrameRef, PixelFormat, PluginKind};

use crate::support;

/// Compiles `c/minimal_detector.c`; `None` (and a note) without a C compiler.
fn compile() -> Option<PathBuf> {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let dir = support::outer_target_dir().join("plugin-tests").join("c");
    std::fs::create_dir_all(&dir).unwrap();
    let lib = dir.join(format!(
        "{}brightest_spot{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    let output = match Command::new(&cc)
        .args([
            "-std=c11",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-O2",
        ])
        .args(["-shared", "-fPIC", "-fvisibility=hidden", "-I"])
        .arg(support::crate_dir().join("include"))
        .arg("-o")
        .arg(&lib)
        .arg(support::crate_dir().join("c/minimal_detector.c"))
        .output()
    {
        Ok(output) => output,
        Err(e) => {
            eprintln!("SKIPPED: no C compiler ({cc}: {e})");
            return None;
        }
    };
    assert!(
        output.status.success(),
        "compiling the C example failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(lib)
}

#[test]
fn the_c_example_loads_and_detects() {
    let Some(lib) = compile() else { return };
    let desc = host::inspect(&lib).unwrap();
    assert_eq!(desc.info.name, "brightest-spot");
    assert_eq!(desc.info.kind, PluginKind::Detector);

    let (w, h) = (40u32, 30u32);
    // Padded rows: the plugin must honour row_stride.
    let stride = w as usize * 3 + 8;
    let lit = |x: usize, y: usize| {
        let mut data = vec![10u8; stride * h as usize];
        data[y * stride + x * 3..][..3].fill(255);
        data
    };
    let (middle, corner) = (lit(20, 15), lit(1, 2));
    let frame = |data, n| FrameRef {
        data,
        width: w,
        height: h,
        row_stride: stride,
        format: PixelFormat::Rgb8,
        frame_number: n,
    };

    let mut d = SharedDetector::load(&lib, &json!({"box": 10})).unwrap();
    let out = d.detect(&[frame(&middle, 0), frame(&corner, 1)]).unwrap();
    // Pixel (20, 15): centre (20.5, 15.5), a 10-pixel box around it.
    assert_eq!(out[0][0].bbox, [15.5, 10.5, 25.5, 20.5]);
    assert_eq!(out[0][0].score, 1.0);
    // Pixel (1, 2): the box [-3.5, -2.5, 6.5, 7.5] reaches outside and is clipped.
    assert_eq!(out[1][0].bbox, [0.0, 0.0, 6.5, 7.5]);
    assert_eq!(d.report().clipped, 1);

    let err = match host::load_detector(&lib, &json!({"box": 0})) {
        Ok(_) => panic!("box 0 must be refused"),
        Err(e) => e,
    };
    assert!(matches!(err, LoadError::CreateFailed { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("create failed: invalid parameters: \"box\" must be a positive integer"),
        "{err}"
    );
}

#[test]
fn the_header_compiles_as_cpp() {
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".to_owned());
    let output = match Command::new(&cxx)
        .args([
            "-std=c++11",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-fsyntax-only",
            "-x",
            "c++",
        ])
        .arg(support::crate_dir().join("include/pitchside_plugin.h"))
        .output()
    {
        Ok(output) => output,
        Err(e) => {
            eprintln!("SKIPPED: no C++ compiler ({cxx}: {e})");
            return;
        }
    };
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
