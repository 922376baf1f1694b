//! The CPU executor: a [`Plan`] compiled for NHWC activations and Pitchside's own kernels,
//! because burn-flex's generic conv2d spends most of its time outside the matrix product
//! (per call: the weights re-packed, the input transposed NCHW→NHWC on one thread, the
//! result scattered back to NCHW, then bias and SiLU as separate passes that each allocate;
//! see BENCHMARKS.md). Here activations stay NHWC from the first layer to the head, a
//! convolution is one matrix product per tile of output pixels (1×1 convolutions read their
//! input in place, also a channel slice of it or the parts of a concatenation, so C2f's
//! split and the neck's Concat cost nothing), and bias + SiLU run on each tile while it is
//! still in cache; 3×3 stride-1 convolutions with enough channels use Winograd F(4×4, 3×3)
//! (4× fewer multiplies; F(2×2, 3×3), 2.25×, with bf16 operands). Weights are packed (and
//! Winograd-transformed) once, at load.
//! The blocks and the graph walk are [`crate::exec`]'s, shared with the Burn executor; the
//! golden tests check both against ultralytics.
//!
//! Where the CPU has AVX-512 the products run on Pitchside's own microkernels
//! ([`kernel`]: weights packed once into column panels, bias + SiLU on the accumulators in
//! registers), optionally with bf16 operands and f32 accumulation (AVX512_BF16); elsewhere
//! (AVX2, aarch64) on the `gemm` crate with row-major weights.
//!
//! By concern: [`pool`] (buffer reuse), [`act`] (activations, views, element-wise ops),
//! [`simd`] (instruction-set dispatch, e^x, SiLU), [`kernel`] (the packed microkernels),
//! [`conv`] (im2col / 1×1 / depthwise), [`winograd`], [`attention`], [`head`].

#[macro_use]
mod simd;
mod act;
mod attention;
mod conv;
mod head;
mod kernel;
mod pool;
mod winograd;

use rayon::prelude::*;

pub use act::Feature;
use act::{Act, View, concat, max_pool, upsample};
use conv::Conv;
use head::HeadX;
use kernel::Isa;

use crate::exec::{self, Kernels};
use crate::plan::{Attention, ConvId, Graph, Head, Plan, YoloTask};

/// A YOLO network compiled for the CPU executor.
#[derive(Debug, Clone)]
pub struct NhwcNet {
    graph: Graph,
    convs: Vec<Conv>,
    head: HeadX,
    /// PITCHSIDE_PROFILE_LAYERS set at load: log each layer's time per forward.
    profile_layers: bool,
}

impl NhwcNet {
    /// Packs the plan's weights for f32 products; an error names what this executor does
    /// not run (the caller then runs the plan on a Burn backend).
    pub fn new(plan: &Plan) -> Result<NhwcNet, String> {
        Self::with_precision(plan, false)
    }

    /// As [`NhwcNet::new`], with bf16 operands (f32 accumulation) for the convolutions'
    /// products if `bf16` and the CPU has AVX512_BF16; f32 otherwise, said once in the log.
    pub fn with_precision(plan: &Plan, bf16: bool) -> Result<NhwcNet, String> {
        let isa = Isa::detect();
        let bf16 = if bf16 && isa != Isa::Avx512Bf16 {
            tracing::warn!(
                "bf16 requested, but this CPU has no AVX512_BF16: the CPU executor runs in f32"
            );
            false
        } else {
            bf16
        };
        let convs = plan
            .convs
            .iter()
            .map(Conv::new)
            .collect::<Result<Vec<_>, _>>()?;
        // The head's prediction convs (each branch's last) stay f32: their outputs are
        // box offsets and keypoints scaled by the level's stride (up to 32 px per unit),
        // and they are small.
        let mut f32_only = vec![false; convs.len()];
        for level in &plan.graph.head().levels {
            let branches = [
                Some(&level.boxes),
                Some(&level.classes),
                level.keypoints.as_ref(),
            ];
            for &id in branches.into_iter().flatten().filter_map(|b| b.last()) {
                f32_only[id] = true;
            }
        }
        // The head merges row-major weights; then everything is packed once.
        let mut head = HeadX::new(&convs, plan.graph.head());
        let pack = |c: Conv, bf16: bool| {
            // Short products (the stem's 3 × 3 × 3 on the image) stay f32 too: bf16 would
            // round the pixels themselves, for no gain in speed.
            let bf16 = bf16 && c.k * c.k * c.cin >= 32;
            let mut c = c.packed(isa, bf16);
            c.compact();
            c
        };
        let convs = convs
            .into_iter()
            .zip(f32_only)
            .map(|(c, f32_only)| pack(c, bf16 && !f32_only))
            .collect();
        head.prepare(|c| pack(c, bf16));
        Ok(NhwcNet {
            graph: plan.graph.clone(),
            convs,
            head,
            profile_layers: std::env::var_os("PITCHSIDE_PROFILE_LAYERS").is_some(),
        })
    }

    pub fn task(&self) -> YoloTask {
        self.graph.task
    }

    pub fn num_classes(&self) -> usize {
        self.graph.num_classes
    }

    /// Runs the network on `[batch, 3, h, w]` RGB in [0, 1] (NCHW, as the letterbox
    /// writes it); returns the head output `[batch, channels, anchors]`.
    pub fn forward(&self, input: &[f32], shape: [usize; 4]) -> (Vec<f32>, [usize; 3]) {
        let [n, c, h, w] = shape;
        let mut x = Act::new(n, h, w, c);
        // NCHW → NHWC, one output row per job (both cores share it even for one image).
        x.data
            .par_chunks_mut(w * c)
            .enumerate()
            .for_each(|(row, dst)| {
                let (img, y) = (row / h, row % h);
                let src = &input[img * c * h * w + y * w..];
                for (xx, px) in dst.chunks_exact_mut(c).enumerate() {
                    for (ch, v) in px.iter_mut().enumerate() {
                        *v = src[ch * h * w + xx];
                    }
                }
            });
        exec::forward(
            self,
            &self.graph,
            Feature::whole(x),
            [h, w],
            self.profile_layers,
        )
    }
}

/// Whether this CPU runs the executor's bf16 products (AVX512_BF16).
pub fn bf16_supported() -> bool {
    Isa::detect() == Isa::Avx512Bf16
}

impl Kernels for NhwcNet {
    type Act = Feature;
    type Output = (Vec<f32>, [usize; 3]);

    fn conv(&self, id: ConvId, x: &Feature) -> Feature {
        Feature::whole(self.convs[id].forward(x.view()))
    }

    /// 1×1 convolutions read the parts in place (one accumulating product per part).
    fn conv_of_concat(&self, id: ConvId, parts: &[Feature]) -> Feature {
        let views: Vec<View<'_>> = parts.iter().map(Feature::view).collect();
        Feature::whole(self.convs[id].forward_concat(&views))
    }

    fn slice(&self, x: &Feature, offset: usize, channels: usize) -> Feature {
        x.slice(offset, channels)
    }

    fn concat(&self, parts: &[Feature]) -> Feature {
        let views: Vec<View<'_>> = parts.iter().map(Feature::view).collect();
        Feature::whole(concat(&views))
    }

    fn add(&self, a: Feature, b: &Feature) -> Feature {
        a.add(b)
    }

    fn max_pool(&self, x: &Feature, k: usize) -> Feature {
        Feature::whole(max_pool(&x.contiguous(), k))
    }

    fn upsample(&self, x: &Feature, factor: usize) -> Feature {
        Feature::whole(upsample(&x.contiguous(), factor))
    }

    fn attention_core(&self, qkv: &Feature, attn: &Attention) -> (Feature, Feature) {
        let (attended, v) = attention::attention_core(&qkv.contiguous(), attn);
        (Feature::whole(attended), Feature::whole(v))
    }

    fn head(&self, head: &Head, levels: &[Feature], input_hw: [usize; 2]) -> Self::Output {
        let views: Vec<View<'_>> = levels.iter().map(Feature::view).collect();
        self.head.forward(&self.convs, head, &views, input_hw[0])
    }
}

/// Deterministic values in [-0.5, 0.5) for the kernels' tests.
#[cfg(test)]
fn pseudo(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        })
        .collect()
}
