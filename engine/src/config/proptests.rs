//! Property tests of the deployment loader against hostile or broken files: the shipped
//! configs (configs/*.yaml) mutated character by character, random YAML-ish text, and
//! random environment values. Whatever the text, loading returns a deployment or an error
//! naming a place; it never panics, and what loads passes the profile checks. Bounded case
//! counts for CI; a long run by hand:
//! `PROPTEST_CASES=100000 cargo test -p pitchside-engine --lib config::proptests`.

use std::path::Path;
use std::sync::OnceLock;

use proptest::prelude::*;

use super::{ConfigSource, Deployment, EnvOverrides};
use crate::device::Backend;

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

/// The shipped deployment files, read at run time (test binaries are shared between
/// checkouts).
fn shipped() -> &'static [String] {
    static FILES: OnceLock<Vec<String>> = OnceLock::new();
    FILES.get_or_init(|| {
        let root = std::env::var("CARGO_MANIFEST_DIR")
            .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into());
        let dir = Path::new(&root).join("../configs");
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    })
}

/// Characters that matter to YAML and to the loader's own line/column arithmetic
/// (multi-byte ones included).
fn yaml_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => prop::sample::select(vec![
            ' ', '\n', '\t', ':', '-', '#', '{', '}', '[', ']', ',', '"', '\'', '&', '*', '!',
            '|', '>', '%', '@', '`', '?', '0', '9', '.', 'e', '~', '\r',
        ]),
        1 => prop::sample::select(vec!['é', '…', '日', '\u{feff}', '\u{0}', '😀']),
        1 => any::<char>(),
    ]
}

#[derive(Debug, Clone)]
enum Edit {
    Insert(f64, String),
    Delete(f64, usize),
    /// Swap two lines (indentation and nesting go wrong).
    SwapLines(f64, f64),
    /// Repeat a line (duplicate keys).
    DupLine(f64),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => (0.0..1.0f64, prop::collection::vec(yaml_char(), 1..6))
            .prop_map(|(p, cs)| Edit::Insert(p, cs.into_iter().collect())),
        3 => (0.0..1.0f64, 1usize..12).prop_map(|(p, n)| Edit::Delete(p, n)),
        1 => (0.0..1.0f64, 0.0..1.0f64).prop_map(|(a, b)| Edit::SwapLines(a, b)),
        1 => (0.0..1.0f64).prop_map(Edit::DupLine),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for e in edits {
        let at = |p: f64, len: usize| ((p * len as f64) as usize).min(len);
        match e {
            Edit::Insert(p, s) => {
                let i = at(*p, chars.len());
                chars.splice(i..i, s.chars());
            }
            Edit::Delete(p, n) => {
                let i = at(*p, chars.len());
                let j = (i + n).min(chars.len());
                chars.drain(i..j);
            }
            Edit::SwapLines(_, _) | Edit::DupLine(_) => {
                let (a, b) = match e {
                    Edit::SwapLines(a, b) => (a, b),
                    Edit::DupLine(a) => (a, a),
                    _ => unreachable!(),
                };
                let s: String = chars.iter().collect();
                let mut lines: Vec<&str> = s.split('\n').collect();
                if lines.is_empty() {
                    continue;
                }
                let (i, j) = (at(*a, lines.len() - 1), at(*b, lines.len() - 1));
                if matches!(e, Edit::DupLine(_)) {
                    lines.insert(i, lines[i]);
                } else {
                    lines.swap(i, j);
                }
                chars = lines.join("\n").chars().collect();
            }
        }
    }
    chars.into_iter().collect()
}

/// Parses `text` and, when it loads, derives every backend's effective configuration.
fn load(text: &str) {
    match Deployment::parse(text, ConfigSource::File("fuzz.yaml".into()), ".".into()) {
        Ok(d) => {
            for backend in [Backend::Cpu, Backend::Wgpu, Backend::Cuda] {
                if let Ok(e) = d.effective(backend, &EnvOverrides::default()) {
                    e.profile
                        .check()
                        .expect("an effective profile passes its own checks");
                }
            }
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.contains("fuzz.yaml"), "the error names the file: {msg}");
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn mutated_shipped_configs_load_or_fail_with_a_place(
        file in 0usize..5,
        edits in prop::collection::vec(edit(), 1..6),
    ) {
        let files = shipped();
        load(&apply(&files[file % files.len()], &edits));
    }

    #[test]
    fn random_yaml_text_loads_or_fails_with_a_place(
        lines in prop::collection::vec(
            (0usize..8, prop::collection::vec(yaml_char(), 0..20)),
            0..30,
        ),
    ) {
        let text: String = lines
            .iter()
            .map(|(indent, cs)| format!("{}{}\n", " ".repeat(*indent), cs.iter().collect::<String>()))
            .collect();
        load(&text);
    }

    #[test]
    fn environment_values_are_read_or_refused_by_name(
        var in prop::sample::select(vec![
            "IMG_SIZE", "BATCH_SIZE", "FRAME_STRIDE", "PREFETCH_FRAMES", "MAX_DETECTIONS",
            "CONF_THRESHOLD", "PITCHSIDE_DEVICE",
        ]),
        value in prop_oneof![
            "[0-9]{0,25}",
            "-?[0-9]{0,5}\\.?[0-9]{0,5}(e[+-]?[0-9]{1,4})?",
            prop::sample::select(vec!["NaN", "inf", "-inf", "0x20", " 640 ", "", "cpu", "cuda:99"]).prop_map(str::to_string),
            any::<String>(),
        ],
    ) {
        let env = [(var, value.as_str())];
        match EnvOverrides::read(&env[..]) {
            Ok(o) => {
                let d = Deployment::parse(
                    &shipped()[0],
                    ConfigSource::File("fuzz.yaml".into()),
                    ".".into(),
                )
                .unwrap();
                if let Ok(e) = d.effective(Backend::Cpu, &o) {
                    e.profile.check().unwrap();
                }
            }
            Err(e) => prop_assert!(e.to_string().contains(var), "{}", e),
        }
    }
}

// Regressions and known hostile shapes.

/// A flow collection nested 100 000 deep, and an alias bomb (each level refers to the
/// previous one ten times): errors, not a stack overflow or gigabytes.
#[test]
fn deep_nesting_and_alias_bombs_are_errors() {
    let deep = format!("models: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
    assert!(Deployment::parse(&deep, ConfigSource::File("t.yaml".into()), ".".into()).is_err());
    let mut bomb = String::from("a: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let prev = format!("*a{}", i - 1);
        bomb.push_str(&format!(
            "a{i}: &a{i} [{}]\n",
            std::iter::repeat_n(prev.as_str(), 10)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    bomb.push_str("models: *a11\n");
    assert!(Deployment::parse(&bomb, ConfigSource::File("t.yaml".into()), ".".into()).is_err());
}
