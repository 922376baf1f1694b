//! Property tests of the checkpoint reader against hostile `.pt` files: mutated copies of
//! the real checkpoints in `assets/` (the pickle alone, the pickle repacked with the real
//! storages, the zip's own bytes) and random opcode streams. Whatever the bytes, the reader
//! returns Ok or an error: no panic, no abort on an allocation, no stack overflow, and it
//! never runs anything (the pickle machine has no way to). The cases per property are
//! bounded for CI; a long run by hand:
//! `PROPTEST_CASES=100000 cargo test -p pitchside-models --lib checkpoint::proptests`.

use std::io::{Cursor, Read, Write};
use std::path::Path;
use std::sync::OnceLock;

use proptest::prelude::*;

use super::read_pt;
use crate::pickle::{self, PickleError};
use crate::plan::Plan;

/// `PROPTEST_CASES` if set, else `default`.
fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A real checkpoint's zip entries (name, bytes), in order.
struct Seed {
    name: &'static str,
    file: Vec<u8>,
    entries: Vec<(String, Vec<u8>)>,
}

fn seeds() -> &'static [Seed] {
    static SEEDS: OnceLock<Vec<Seed>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        ["yolov8n-railway.pt", "yolo11n-pose.pt"]
            .into_iter()
            .map(|name| {
                // Read at run time: test binaries are shared between checkouts.
                let root = std::env::var("CARGO_MANIFEST_DIR")
                    .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into());
                let path = Path::new(&root).join("../assets").join(name);
                let file = std::fs::read(&path).unwrap_or_else(|e| {
                    panic!("{} ({e}): run scripts/fetch-assets.sh", path.display())
                });
                let mut zip = zip::ZipArchive::new(Cursor::new(file.clone())).unwrap();
                let entries = (0..zip.len())
                    .map(|i| {
                        let mut f = zip.by_index(i).unwrap();
                        let mut v = Vec::new();
                        f.read_to_end(&mut v).unwrap();
                        (f.name().to_string(), v)
                    })
                    .collect();
                Seed {
                    name,
                    file,
                    entries,
                }
            })
            .collect()
    })
}

fn pickle_of(seed: &Seed) -> &[u8] {
    &seed
        .entries
        .iter()
        .find(|(n, _)| n.ends_with("data.pkl"))
        .expect("data.pkl")
        .1
}

/// One edit of a byte string; positions are fractions of its length.
#[derive(Debug, Clone)]
enum Edit {
    Set(f64, u8),
    Insert(f64, Vec<u8>),
    Delete(f64, usize),
    Truncate(f64),
    /// Repeats a slice (memo references and marks get out of step).
    Duplicate(f64, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => (0.0..1.0f64, any::<u8>()).prop_map(|(p, b)| Edit::Set(p, b)),
        2 => (0.0..1.0f64, prop::collection::vec(any::<u8>(), 1..9))
            .prop_map(|(p, b)| Edit::Insert(p, b)),
        2 => (0.0..1.0f64, 1usize..64).prop_map(|(p, n)| Edit::Delete(p, n)),
        1 => (0.0..1.0f64).prop_map(Edit::Truncate),
        1 => (0.0..1.0f64, 1usize..256).prop_map(|(p, n)| Edit::Duplicate(p, n)),
    ]
}

fn apply(data: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut d = data.to_vec();
    for e in edits {
        let at = |p: f64, len: usize| ((p * len as f64) as usize).min(len);
        match e {
            Edit::Set(p, b) => {
                if !d.is_empty() {
                    let i = at(*p, d.len() - 1);
                    d[i] = *b;
                }
            }
            Edit::Insert(p, b) => {
                let i = at(*p, d.len());
                d.splice(i..i, b.iter().copied());
            }
            Edit::Delete(p, n) => {
                let i = at(*p, d.len());
                let j = (i + n).min(d.len());
                d.drain(i..j);
            }
            Edit::Truncate(p) => d.truncate(at(*p, d.len())),
            Edit::Duplicate(p, n) => {
                let i = at(*p, d.len());
                let j = (i + n).min(d.len());
                let copy = d[i..j].to_vec();
                d.splice(j..j, copy);
            }
        }
    }
    d
}

/// A zip of `entries` (stored, as torch.save writes them).
fn zip_of(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in entries {
        w.start_file(name.as_str(), opts).unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// Reads a checkpoint from bytes and, if that works, plans its network: the whole path a
/// model file takes before any weights run.
fn load(bytes: Vec<u8>) {
    if let Ok(ck) = read_pt(Cursor::new(bytes), Path::new("fuzz.pt")) {
        let _ = Plan::from_checkpoint(ck);
    }
}

/// Pickle opcodes with plausible arguments: a random program for the pickle machine.
fn opcode() -> impl Strategy<Value = Vec<u8>> {
    let ops: &[u8] = b"(N\x88\x89JKM\x8a\x8bXT\x8cUVSBC\x8e)]}\x8ft\x85\x86\x87l\x91dae\x90su\
        c\x93qrp\x94hjg012QPR\x81\x92bio\x80\x95.";
    (
        prop::sample::select(ops.to_vec()),
        prop::collection::vec(any::<u8>(), 0..5),
    )
        .prop_map(|(op, mut args)| {
            // Text opcodes take a line.
            if b"IFLVSPcgpi".contains(&op) {
                args.push(b'\n');
            }
            let mut v = vec![op];
            v.append(&mut args);
            v
        })
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn mutated_real_pickles_parse_or_fail_cleanly(
        seed in 0usize..2,
        edits in prop::collection::vec(edit(), 1..8),
    ) {
        let data = apply(pickle_of(&seeds()[seed]), &edits);
        if let Ok(v) = pickle::parse(&data) {
            let _ = super::to_json(&v);
            let mut walk = super::Walk::default();
            walk.module(&v, "", 0);
        }
    }

    #[test]
    fn random_opcode_streams_parse_or_fail_cleanly(
        ops in prop::collection::vec(opcode(), 0..400),
    ) {
        let data: Vec<u8> = ops.concat();
        if let Ok(v) = pickle::parse(&data) {
            let _ = super::to_json(&v);
            let mut walk = super::Walk::default();
            walk.module(&v, "", 0);
        }
    }
}

proptest! {
    #![proptest_config(config(32))]

    /// The mutated pickle repacked with the real storages: the tensor reads and the plan
    /// see what a hostile pickle can make of real data.
    #[test]
    fn checkpoints_with_a_mutated_pickle_load_or_fail_cleanly(
        seed in 0usize..2,
        edits in prop::collection::vec(edit(), 1..6),
    ) {
        let s = &seeds()[seed];
        let entries: Vec<_> = s
            .entries
            .iter()
            .map(|(n, b)| {
                let b = if n.ends_with("data.pkl") { apply(b, &edits) } else { b.clone() };
                (n.clone(), b)
            })
            .collect();
        load(zip_of(&entries));
    }

    /// The zip's own bytes mutated: edits near the start (local headers, data.pkl) and the
    /// end (central directory), or the file cut.
    #[test]
    fn mutated_checkpoint_files_load_or_fail_cleanly(
        seed in 0usize..2,
        head in prop::collection::vec(edit(), 0..4),
        tail in prop::collection::vec(edit(), 0..4),
        cut in prop::option::of(0.0..1.0f64),
    ) {
        let s = &seeds()[seed];
        let file = &s.file;
        let split_head = 1 << 16;
        let split_tail = file.len() - (1 << 16);
        let mut bytes = apply(&file[..split_head], &head);
        bytes.extend_from_slice(&file[split_head..split_tail]);
        bytes.extend(apply(&file[split_tail..], &tail));
        if let Some(c) = cut {
            bytes.truncate((c * bytes.len() as f64) as usize);
        }
        let _ = s.name;
        load(bytes);
    }
}

// Regressions: each of these crashed or exploded the reader before its bound.

/// `]]]…aaa…`: a list nested a million deep. Dropping it recursed once per level and
/// overflowed the stack.
#[test]
fn a_pickle_nested_a_million_deep_is_dropped_without_overflowing_the_stack() {
    let n = 1_000_000;
    let mut data = vec![0x80, 2];
    data.extend(std::iter::repeat_n(b']', n));
    data.extend(std::iter::repeat_n(b'a', n - 1));
    data.push(b'.');
    let v = pickle::parse(&data).unwrap();
    // The consumers stop at their depth bound instead of recursing a million times.
    assert!(super::to_json(&v).is_none());
    drop(v);
}

/// `}q\0` then `h\0b` repeated: BUILD of a dict with itself doubles it every 3 bytes
/// (2^40 entries from 120 bytes).
#[test]
fn a_pickle_that_doubles_a_dict_is_refused() {
    let mut data = b"\x80\x02}q\x00K\x01K\x02s".to_vec();
    for _ in 0..40 {
        data.extend_from_slice(b"h\x00b");
    }
    data.push(b'.');
    let e = pickle::parse(&data).unwrap_err();
    assert!(
        matches!(&e, PickleError::Malformed(_, m) if m.contains("container elements")),
        "{e}"
    );
}

/// A list that contains itself (APPEND of its own memo entry): the architecture dict's
/// conversion to JSON recursed forever.
#[test]
fn a_cyclic_architecture_is_an_error_not_a_stack_overflow() {
    let v = pickle::parse(b"\x80\x02]q\x00h\x00a.").unwrap();
    assert!(super::to_json(&v).is_none());
    // A DAG whose paths double at each level: 2^60 nodes if expanded.
    let mut data = b"\x80\x02]q\x00".to_vec();
    for i in 1..=60u8 {
        // [prev, prev] memoised as i.
        data.extend_from_slice(&[b'h', i - 1, b'h', i - 1, 0x86, b'q', i]);
    }
    data.push(b'.');
    let v = pickle::parse(&data).unwrap();
    assert!(super::to_json(&v).is_none());
}

/// A tensor of shape [2^62] (or with negative sizes, read as huge) over a 16-byte storage:
/// `Vec::with_capacity` aborted the process.
#[test]
fn tensor_shapes_beyond_their_storage_are_errors() {
    let t = pickle::TensorRef {
        storage: "0".into(),
        dtype: "FloatStorage".into(),
        offset: 0,
        shape: vec![1 << 62],
        stride: vec![1],
    };
    let storage = [0u8; 16];
    assert!(pickle::tensor_values(&t, &storage).is_err());
    let overflow = pickle::TensorRef {
        shape: vec![1 << 40, 1 << 40],
        stride: vec![1, 1],
        ..t.clone()
    };
    assert!(
        pickle::tensor_values(&overflow, &storage)
            .unwrap_err()
            .contains("overflows")
    );
    let offset = pickle::TensorRef {
        shape: vec![2],
        stride: vec![usize::MAX],
        ..t.clone()
    };
    assert!(pickle::tensor_values(&offset, &storage).is_err());
    // Stride 0 repeating one element a billion times: more elements than the storage holds.
    let repeat = pickle::TensorRef {
        shape: vec![1 << 30],
        stride: vec![0],
        ..t
    };
    assert!(
        pickle::tensor_values(&repeat, &storage)
            .unwrap_err()
            .contains("more elements")
    );
}

/// A zip entry that declares 1 TiB in a few stored bytes is refused before reading.
#[test]
fn a_zip_entry_declaring_more_than_it_holds_is_refused() {
    let bytes = zip_of(&[("m/data.pkl".into(), b"\x80\x02}.".to_vec())]);
    let mut z = zip::ZipArchive::new(Cursor::new(bytes.clone())).unwrap();
    assert!(pickle::read_entry(&mut z, "m/data.pkl").is_ok());
    // Patch the uncompressed size (offset 22 in the local header, 24 in the central one).
    let mut evil = bytes;
    let central = evil.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
    for at in [22, central + 24] {
        evil[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    }
    if let Ok(mut z) = zip::ZipArchive::new(Cursor::new(evil)) {
        let e = pickle::read_entry(&mut z, "m/data.pkl").unwrap_err();
        assert!(e.contains("declares"), "{e}");
    }
}

/// The real checkpoint cut at several points, and a zero-byte one: each an error that names
/// the file, never a panic.
#[test]
fn truncated_and_empty_checkpoints_are_errors_naming_the_file() {
    let file = &seeds()[0].file;
    for cut in [
        0,
        1,
        100,
        4096,
        file.len() / 2,
        file.len() - 22,
        file.len() - 1,
    ] {
        let e = read_pt(Cursor::new(file[..cut].to_vec()), Path::new("cut.pt"))
            .err()
            .unwrap_or_else(|| panic!("cut at {cut} loaded"));
        assert!(e.to_string().contains("cut.pt"), "{e}");
    }
    // A valid zip without data.pkl, and one whose storages are missing.
    let e = read_pt(
        Cursor::new(zip_of(&[("x/other".into(), vec![1])])),
        Path::new("z.pt"),
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("no data.pkl"), "{e}");
    let only_pickle: Vec<_> = seeds()[0]
        .entries
        .iter()
        .filter(|(n, _)| n.ends_with("data.pkl"))
        .cloned()
        .collect();
    let e = read_pt(Cursor::new(zip_of(&only_pickle)), Path::new("z.pt"))
        .err()
        .unwrap();
    assert!(e.to_string().contains("truncated file?"), "{e}");
}
