//! The buffer pool that activations come from and go back to.

/// Freed activation buffers, reused by the next layer or forward pass: fresh multi-megabyte
/// allocations are fresh pages from the kernel, and their page faults and zeroing cost more
/// than a third of a YOLOv8n forward pass. Every kernel here writes all of its output, so a
/// reused buffer needs no clearing.
pub(super) static POOL: std::sync::Mutex<Vec<Vec<f32>>> = std::sync::Mutex::new(Vec::new());
/// What the pool may hold: the activations of a few large batches.
const POOL_MAX_FLOATS: usize = 64 << 20;

pub(super) fn recycle(v: Vec<f32>) {
    if v.capacity() == 0 {
        return;
    }
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    let held: usize = pool.iter().map(Vec::capacity).sum();
    if held + v.capacity() <= POOL_MAX_FLOATS {
        pool.push(v);
    }
}

/// A buffer of `len` floats with arbitrary (initialised) contents: the smallest pooled one
/// that holds it, else a new one (growing a pooled buffer would copy its stale contents).
pub(super) fn buffer(len: usize) -> Vec<f32> {
    let reused = {
        let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
        (0..pool.len())
            .filter(|&i| pool[i].capacity() >= len)
            .min_by_key(|&i| pool[i].capacity())
            .map(|i| pool.swap_remove(i))
    };
    match reused {
        Some(mut v) => {
            v.truncate(len);
            v.resize(len, 0.0);
            v
        }
        None => vec![0.0; len],
    }
}
