//! Random-weight checkpoints from architecture descriptions: the same tensors as real
//! checkpoints of the architecture, ultralytics' parameter counts for the sizes we have no
//! weights for, and a sane forward pass through the plan (`Plan::from_checkpoint`).

use std::collections::BTreeMap;

use pitchside_models::Checkpoint;
use pitchside_models::synthetic::{load_arch_yaml, synthetic_checkpoint};
use serde_json::{Value, json};

use crate::support::asset;

/// An architecture from models/archs by scaled name (`yolov8x.yaml` reads yolov8.yaml).
fn arch(name: &str, nc: u64, kpt_shape: Option<[u64; 2]>) -> Value {
    let mut a = load_arch_yaml(crate::support::root().join("models/archs").join(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    a["nc"] = nc.into();
    if let Some(k) = kpt_shape {
        a["kpt_shape"] = json!(k);
    }
    a
}

/// Tensor shapes by name, without BatchNorm's `num_batches_tracked` counters.
fn shapes(ck: &Checkpoint) -> BTreeMap<String, Vec<usize>> {
    ck.tensors
        .iter()
        .filter(|(k, _)| !k.ends_with("num_batches_tracked"))
        .map(|(k, v)| (k.clone(), v.shape.to_vec()))
        .collect()
}

/// What `sum(p.numel() for p in model.parameters())` counts: everything but BN buffers.
fn param_count(ck: &Checkpoint) -> usize {
    ck.tensors
        .iter()
        .filter(|(k, _)| {
            !k.ends_with(".running_mean")
                && !k.ends_with(".running_var")
                && !k.ends_with(".num_batches_tracked")
        })
        .map(|(_, v)| v.shape.iter().product::<usize>())
        .sum()
}

/// A synthetic checkpoint from a real checkpoint's own architecture (and its real class
/// count: ultralytics does not always write the trained `nc` back) has the real tensors.
fn same_tensors_as(file: &str) {
    let real = Checkpoint::load(&asset(file)).unwrap();
    let mut a = real.arch.clone();
    a["nc"] = real.names.len().into();
    let syn = synthetic_checkpoint(a, None, 7).unwrap();
    let want = shapes(&real);
    let mut got = shapes(&syn);
    let dfl = "22.dfl.conv.weight";
    if !want.contains_key(dfl) {
        got.remove(dfl);
    }
    let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(*k)).collect();
    let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    let differ: Vec<_> = want
        .iter()
        .filter_map(|(k, w)| {
            got.get(k)
                .filter(|g| *g != w)
                .map(|g| format!("{k}: real {w:?}, synthetic {g:?}"))
        })
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty() && differ.is_empty(),
        "{file}: synthetic tensors differ from the real ones\n missing: {missing:?}\n extra: {extra:?}\n shapes: {differ:#?}"
    );
    // Activations too (they decide where `yolo::build` applies SiLU).
    for (k, c) in real.classes.iter().filter(|(k, _)| k.ends_with(".act")) {
        if file == "yolov8n-railway.pt" && k == "9.cv1.act" {
            // Saved by ultralytics 8.4.7, whose SPPF left cv1 unactivated even in v8 models;
            // 8.4.190, which the synthetic checkpoints follow, activates it for YAML rows
            // like v8's `[1024, 5]` again.
            assert_eq!((c.as_str(), syn.classes[k].as_str()), ("Identity", "SiLU"));
            continue;
        }
        assert_eq!(syn.classes.get(k), Some(c), "{file}: activation of {k}");
    }
    assert_eq!(
        param_count(&syn),
        param_count(&real),
        "{file}: parameter count"
    );
}

#[test]
fn yolov8n_tensors_match_the_real_checkpoint() {
    same_tensors_as("yolov8n-railway.pt");
}

#[test]
fn yolov8s_tensors_match_the_real_checkpoint() {
    same_tensors_as("yolov8s-fall.pt");
}

#[test]
fn yolo11n_pose_tensors_match_the_real_checkpoint() {
    same_tensors_as("yolo11n-pose.pt");
}

// Expected counts from ultralytics 8.4.190 (/work/venv-ul) with the stock YAMLs:
//   m = DetectionModel("yolov8x.yaml", nc=4)  # or PoseModel(cfg, nc=1, data_kpt_shape=(32, 3))
//   sum(p.numel() for p in m.parameters()), len(state_dict) less num_batches_tracked
// (yolov8x nc=80 gives 68229648, the count in ultralytics' yolov8.yaml comments.)
struct Expected {
    yaml: &'static str,
    nc: u64,
    kpt_shape: Option<[u64; 2]>,
    parameters: usize,
    /// State-dict entries less `num_batches_tracked`.
    tensors: usize,
}

const fn expect(
    yaml: &'static str,
    nc: u64,
    kpt_shape: Option<[u64; 2]>,
    parameters: usize,
    tensors: usize,
) -> Expected {
    Expected {
        yaml,
        nc,
        kpt_shape,
        parameters,
        tensors,
    }
}

const ULTRALYTICS: &[Expected] = &[
    expect("yolov8x.yaml", 4, None, 68_156_460, 498),
    expect("yolov8x.yaml", 80, None, 68_229_648, 498),
    expect("yolov8x-pose.yaml", 1, Some([32, 3]), 69_813_891, 534),
    expect("yolov8m.yaml", 80, None, 25_902_640, 398),
    expect("yolov8n.yaml", 80, None, 3_157_200, 298),
    expect("yolo11n.yaml", 80, None, 2_624_080, 418),
    expect("yolo11m.yaml", 80, None, 20_114_688, 543),
    expect("yolo11x.yaml", 80, None, 56_966_176, 848),
    expect("yolo11x-pose.yaml", 1, Some([32, 3]), 58_811_731, 884),
    expect("yolo11l-pose.yaml", 1, Some([17, 3]), 26_169_836, 884),
];

#[test]
fn parameter_counts_match_ultralytics() {
    for e in ULTRALYTICS {
        let ck = synthetic_checkpoint(arch(e.yaml, e.nc, e.kpt_shape), None, 1).unwrap();
        assert_eq!(
            (param_count(&ck), shapes(&ck).len()),
            (e.parameters, e.tensors),
            "{} nc {} kpt {:?}: (parameters, tensors)",
            e.yaml,
            e.nc,
            e.kpt_shape
        );
    }
}

#[test]
fn scale_is_guessed_from_the_name_and_can_be_overridden() {
    assert_eq!(arch("yolov8x.yaml", 80, None)["scale"], "x");
    assert_eq!(arch("yolo11n-pose.yaml", 80, None)["scale"], "n");
    // The explicit scale wins over the guessed one.
    let ck = synthetic_checkpoint(arch("yolov8x.yaml", 80, None), Some("n"), 1).unwrap();
    assert_eq!(param_count(&ck), 3_157_200);
    assert_eq!(ck.arch["scale"], "n");
    assert!(synthetic_checkpoint(arch("yolov8x.yaml", 80, None), Some("q"), 1).is_err());
    // Same seed, same weights; another seed, others.
    let w = |seed| {
        synthetic_checkpoint(arch("yolov8n.yaml", 2, None), None, seed)
            .unwrap()
            .tensors["0.conv.weight"]
            .to_vec::<f32>()
            .unwrap()
    };
    assert_eq!(w(3), w(3));
    assert_ne!(w(3), w(4));
}

#[cfg(feature = "cpu")]
mod forward {
    use burn::backend::Flex;
    use burn::tensor::{Distribution, Tensor};
    use pitchside_models::{BurnNet, Plan};

    use super::*;

    /// Builds the synthetic network, runs 64x64 inputs (tiny: the point is shapes and
    /// numerics, not speed) and checks the output is sane.
    fn run(a: Value, nc: usize, nk: usize) {
        let mut ck = synthetic_checkpoint(a, None, 11).unwrap();
        let names = ck.names.len();
        let plan = Plan::take_from(&mut ck).unwrap();
        assert_eq!((plan.graph.num_classes, names), (nc, nc));
        let left: Vec<_> = ck.tensors.keys().collect();
        assert!(left.is_empty(), "tensors the plan did not use: {left:?}");

        let device = Default::default();
        let net = BurnNet::<Flex>::new(&plan, &device);
        let x = Tensor::<Flex, 4>::random([1, 3, 64, 64], Distribution::Uniform(0.0, 1.0), &device);
        let y = net.forward(x);
        // 8x8 + 4x4 + 2x2 anchors at strides 8, 16, 32.
        assert_eq!(y.dims(), [1, 4 + nc + nk, 84]);
        let v: Vec<f32> = y.clone().into_data().to_vec().unwrap();
        assert!(v.iter().all(|x| x.is_finite()), "non-finite outputs");
        let row = |r: usize| &v[r * 84..(r + 1) * 84];
        // Boxes: DFL distances in [0, 15] bins, so sizes within 30 strides; neither
        // collapsed nor saturated (exploding activations would make the bins one-hot).
        for r in 2..4 {
            assert!(
                row(r).iter().all(|&s| s > 0.0 && s < 30.0 * 32.0),
                "box sizes {:?}",
                row(r)
            );
            let spread = row(r).iter().fold(0f32, |m, &s| m.max(s))
                - row(r).iter().fold(f32::MAX, |m, &s| m.min(s));
            assert!(spread > 0.0, "box sizes all equal");
        }
        // Scores start low (ultralytics' bias prior) but are not saturated either way.
        for r in 4..4 + nc {
            assert!(
                row(r).iter().all(|&s| s > 0.0 && s < 0.5),
                "scores {:?}",
                row(r)
            );
        }
        // Keypoints: near their anchors, not blown up.
        for r in 4 + nc..4 + nc + nk {
            assert!(
                row(r).iter().all(|&s| s.abs() < 1000.0),
                "keypoint row {r}: {:?}",
                row(r)
            );
        }
        // The input matters: features did not vanish into the biases.
        let z: Vec<f32> = net
            .forward(Tensor::zeros([1, 3, 64, 64], &device))
            .into_data()
            .to_vec()
            .unwrap();
        let diff = v
            .iter()
            .zip(&z)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(
            diff > 1e-3,
            "output does not depend on the input (max diff {diff})"
        );
    }

    #[test]
    fn yolov8x_detect_runs() {
        run(arch("yolov8x.yaml", 4, None), 4, 0);
    }

    #[test]
    fn yolov8x_pose_runs() {
        run(arch("yolov8x-pose.yaml", 1, Some([32, 3])), 1, 96);
    }

    #[test]
    fn yolo11m_detect_runs() {
        // C3k inner blocks (m/l/x) and C2PSA, which the real checkpoints here lack.
        run(arch("yolo11m.yaml", 3, None), 3, 0);
    }
}

#[test]
fn a_model_the_cpu_executor_cannot_run_falls_back_to_burn_flex() {
    use pitchside_models::{ComparisonBackend, ModelDevice, YoloModel};
    let plain = arch("yolov8n.yaml", 4, None);
    let mut grouped = plain.clone();
    // Layer 1 as a grouped convolution (Conv args: c2, k, s, p, g), which the executor
    // does not implement.
    grouped["backbone"][1][3] = json!([128, 3, 2, null, 2]);
    let ck = |a: &Value| synthetic_checkpoint(a.clone(), None, 0).unwrap();
    let cpu = |a: &Value| YoloModel::from_checkpoint(ck(a), ModelDevice::Cpu).unwrap();
    assert_eq!(cpu(&plain).engine(), "cpu executor");
    let cpu = cpu(&grouped);
    assert_eq!(cpu.engine(), "burn-flex");
    let flex = YoloModel::with_comparison_backend(ck(&grouped), ComparisonBackend::Flex).unwrap();
    let input: Vec<f32> = (0..3 * 64 * 64).map(|i| (i % 251) as f32 / 251.0).collect();
    let (a, dims) = cpu.forward(input.clone(), [1, 3, 64, 64]).unwrap();
    let (b, _) = flex.forward(input, [1, 3, 64, 64]).unwrap();
    assert_eq!(dims, [1, 4 + 4, 84]);
    assert_eq!(a, b);
}

/// C3k2's arguments in ultralytics 8.3's layout (`c2, c3k, e, g, shortcut`, no `attn`) are
/// read as the plan reads them: the synthetic checkpoint of such an architecture builds (it
/// took the group count for `attn` and refused "C3k2 with attention"), and its bottlenecks
/// have no residual where `shortcut` is false.
#[test]
fn c3k2_arguments_of_both_layouts_are_read_alike() {
    use pitchside_models::Plan;
    use pitchside_models::plan::{Inner, Op};
    for (args, residual) in [
        // 8.3: c2, c3k, e, g, shortcut.
        (json!([256, false, 0.25, 1, false]), false),
        (json!([256, false, 0.25, 1, true]), true),
        // 8.4: c2, c3k, e, attn, g, shortcut.
        (json!([256, false, 0.25, false, 1, false]), false),
        (json!([256, false, 0.25]), true),
    ] {
        let mut a = arch("yolo11n.yaml", 80, None);
        a["backbone"][2][3] = args.clone();
        assert_eq!(a["backbone"][2][2], "C3k2");
        let ck = synthetic_checkpoint(a, None, 3).unwrap_or_else(|e| panic!("{args}: {e}"));
        let plan = Plan::from_checkpoint(ck).unwrap();
        let Op::C2f(c2f) = &plan.graph.nodes[2].op else {
            panic!("layer 2 is {}", plan.graph.nodes[2].op.name());
        };
        for inner in &c2f.m {
            let Inner::Bottleneck(b) = inner else {
                panic!("{args}: C3k blocks at scale n")
            };
            assert_eq!(b.add, residual, "{args}");
        }
    }
}
