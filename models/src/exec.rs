//! The structure of every block and the graph walk, written once, over the operations an
//! executor provides ([`Kernels`]). An executor compiles a [`crate::plan::Plan`]'s conv
//! table into its own form, implements these operations on its own activation type, and
//! calls [`forward`]; what the blocks compute (and in what order) is decided here only.

use crate::plan::{
    Attention, Bottleneck, C2f, C2psa, C3k, ConvId, Graph, Head, Inner, Input, Op, PsaBlock, Sppf,
};

/// What an executor provides. Activations are `[batch, channels, h, w]` in whatever layout
/// the executor likes; `Act` clones are expected to be cheap (shared buffers).
pub trait Kernels {
    type Act: Clone;
    /// The head's output.
    type Output;

    /// Convolution `id` of the plan's conv table (bias and activation included).
    fn conv(&self, id: ConvId, x: &Self::Act) -> Self::Act;

    /// Convolution `id` of the channel concatenation of `parts`.
    fn conv_of_concat(&self, id: ConvId, parts: &[Self::Act]) -> Self::Act {
        self.conv(id, &self.concat(parts))
    }

    /// Channels `offset..offset + channels` of `x`.
    fn slice(&self, x: &Self::Act, offset: usize, channels: usize) -> Self::Act;

    /// Channel concatenation.
    fn concat(&self, parts: &[Self::Act]) -> Self::Act;

    /// `a + b`, same shape.
    fn add(&self, a: Self::Act, b: &Self::Act) -> Self::Act;

    /// `k`×`k` max pooling, stride 1, padded with -inf to keep the size (PyTorch's
    /// MaxPool2d with padding `k / 2`).
    fn max_pool(&self, x: &Self::Act, k: usize) -> Self::Act;

    /// Nearest-neighbour upsampling by an integer factor.
    fn upsample(&self, x: &Self::Act, factor: usize) -> Self::Act;

    /// The core of [`Attention`] on the qkv convolution's output (per head `key_dim`
    /// queries, `key_dim` keys, `head_dim` values): returns the attended values and `v`,
    /// both with the heads' channels side by side (channel `head * head_dim + d`).
    fn attention_core(&self, qkv: &Self::Act, attn: &Attention) -> (Self::Act, Self::Act);

    /// The head on its input levels; `input_hw` is the network input's size.
    fn head(&self, head: &Head, levels: &[Self::Act], input_hw: [usize; 2]) -> Self::Output;
}

/// Runs `graph` on `image`; `profile` logs each node's time at the end.
pub fn forward<K: Kernels>(
    k: &K,
    graph: &Graph,
    image: K::Act,
    input_hw: [usize; 2],
    profile: bool,
) -> K::Output {
    let kept_image = graph.keep_image.then(|| image.clone());
    let mut outputs: Vec<Option<K::Act>> = Vec::with_capacity(graph.nodes.len());
    let mut last = image;
    // A Concat read only by the next node, a C2f, is handed over as its parts: C2f's first
    // conv then reads them without the concatenation being built (where the executor can).
    let mut pending: Option<Vec<K::Act>> = None;
    let mut times: Vec<(usize, &'static str, f64)> = Vec::new();
    for (i, node) in graph.nodes.iter().enumerate() {
        let t0 = std::time::Instant::now();
        let get = |j: Input| -> K::Act {
            match j {
                Input::Image if i == 0 => last.clone(),
                Input::Image => kept_image.clone().expect("kept when read later"),
                Input::Layer(j) if j + 1 == i => last.clone(),
                Input::Layer(j) => outputs[j].clone().expect("outputs read later are kept"),
            }
        };
        let y = match &node.op {
            Op::Conv(c) => k.conv(*c, &get(node.inputs[0])),
            Op::C2f(c) => match pending.take() {
                Some(parts) => c2f_blocks(k, c, k.conv_of_concat(c.cv1, &parts)),
                None => c2f_blocks(k, c, k.conv(c.cv1, &get(node.inputs[0]))),
            },
            Op::Sppf(s) => sppf(k, s, &get(node.inputs[0])),
            Op::C2psa(c) => c2psa(k, c, &get(node.inputs[0])),
            Op::Upsample(f) => k.upsample(&get(node.inputs[0]), *f),
            Op::Concat
                if !node.keep
                    && matches!(graph.nodes.get(i + 1),
                        Some(next) if matches!(next.op, Op::C2f(_))
                            && next.inputs[..] == [Input::Layer(i)]) =>
            {
                pending = Some(node.inputs.iter().map(|&j| get(j)).collect());
                outputs.push(None);
                continue;
            }
            Op::Concat => {
                let parts: Vec<K::Act> = node.inputs.iter().map(|&j| get(j)).collect();
                k.concat(&parts)
            }
            Op::Head(head) => {
                let levels: Vec<K::Act> = node.inputs.iter().map(|&j| get(j)).collect();
                let out = k.head(head, &levels, input_hw);
                if profile {
                    times.push((i, "Head", t0.elapsed().as_secs_f64() * 1e3));
                    tracing::info!(layers = ?times, "ms per layer");
                }
                return out;
            }
        };
        if profile {
            times.push((i, node.op.name(), t0.elapsed().as_secs_f64() * 1e3));
        }
        outputs.push(node.keep.then(|| y.clone()));
        last = y;
    }
    unreachable!("a plan ends with a head (checked when it is built)")
}

fn bottleneck<K: Kernels>(k: &K, b: &Bottleneck, x: &K::Act) -> K::Act {
    let y = k.conv(b.cv2, &k.conv(b.cv1, x));
    if b.add { k.add(y, x) } else { y }
}

fn c3k<K: Kernels>(k: &K, c: &C3k, x: &K::Act) -> K::Act {
    let mut a = k.conv(c.cv1, x);
    for b in &c.m {
        a = bottleneck(k, b, &a);
    }
    let b = k.conv(c.cv2, x);
    k.conv_of_concat(c.cv3, &[a, b])
}

/// C2f after cv1 (`y`): the inner blocks chained on y's second half, then cv2 over y and
/// every block's output.
fn c2f_blocks<K: Kernels>(k: &K, c: &C2f, y: K::Act) -> K::Act {
    let mut last = k.slice(&y, c.c, c.c);
    let mut parts = Vec::with_capacity(1 + c.m.len());
    parts.push(y);
    for block in &c.m {
        last = match block {
            Inner::Bottleneck(b) => bottleneck(k, b, &last),
            Inner::C3k(b) => c3k(k, b, &last),
        };
        parts.push(last.clone());
    }
    drop(last);
    k.conv_of_concat(c.cv2, &parts)
}

fn sppf<K: Kernels>(k: &K, s: &Sppf, x: &K::Act) -> K::Act {
    let mut ys = vec![k.conv(s.cv1, x)];
    for _ in 0..s.n {
        let next = k.max_pool(ys.last().expect("nonempty"), s.k);
        ys.push(next);
    }
    let y = k.conv_of_concat(s.cv2, &ys);
    if s.add { k.add(y, x) } else { y }
}

fn attention<K: Kernels>(k: &K, a: &Attention, x: &K::Act) -> K::Act {
    let qkv = k.conv(a.qkv, x);
    let (attended, v) = k.attention_core(&qkv, a);
    drop(qkv);
    let pe = k.conv(a.pe, &v);
    k.conv(a.proj, &k.add(attended, &pe))
}

fn psa_block<K: Kernels>(k: &K, p: &PsaBlock, x: &K::Act) -> K::Act {
    let a = attention(k, &p.attn, x);
    let x = if p.add { k.add(a, x) } else { a };
    let f = k.conv(p.ffn2, &k.conv(p.ffn1, &x));
    if p.add { k.add(f, &x) } else { f }
}

fn c2psa<K: Kernels>(k: &K, c: &C2psa, x: &K::Act) -> K::Act {
    let y = k.conv(c.cv1, x);
    let a = k.slice(&y, 0, c.c);
    let mut b = k.slice(&y, c.c, c.c);
    drop(y);
    for blk in &c.m {
        b = psa_block(k, blk, &b);
    }
    k.conv_of_concat(c.cv2, &[a, b])
}
