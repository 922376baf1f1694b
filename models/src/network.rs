//! The one interface every executor's compiled network offers the runtime ([`crate::runtime`]
//! holds one; the executors implement it), in a module of its own so that an executor module
//! and the runtime that picks it do not import each other.

use crate::ModelError;

/// A compiled network, whatever runs it.
pub trait Network: Send + Sync {
    /// Runs the network on a preprocessed NCHW batch; returns the raw head output
    /// `[batch, channels, anchors]`.
    fn forward(
        &self,
        input: Vec<f32>,
        shape: [usize; 4],
    ) -> Result<(Vec<f32>, [usize; 3]), ModelError>;

    /// What runs it: "cpu executor", "burn-flex", "burn-wgpu" ...
    fn engine(&self) -> &'static str;
}
