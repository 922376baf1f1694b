//! Pitchside's distributed work queue on NATS JetStream: `pitchside submit` enqueues videos
//! ([`queue::Queue::submit`]), `pitchside worker` runs them on a pool of pipelines
//! ([`worker::run`]) and stores each result, `pitchside status` reads the jobs' states
//! ([`queue::Queue::records`]). NATS is the distributed engine (delivery, redelivery,
//! deduplication, storage, clustering); this crate only says what goes where: the stream,
//! buckets and subjects are listed in [`queue`].

pub mod job;
pub mod queue;
pub mod worker;

pub use job::{Job, Record, State};
pub use queue::{Connection, DeadLetter, Queue, QueueSettings};
pub use worker::{Summary, WorkerOptions};

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// NATS could not be reached, or refused an operation.
    #[error("NATS: {0}")]
    Nats(String),
    /// A job, an id or a manifest is wrong.
    #[error("{0}")]
    Job(String),
    #[error("tokio runtime: {0}")]
    Runtime(std::io::Error),
}

/// Runs `f` on a small tokio runtime (the CLI's commands are blocking).
pub fn block_on<F: std::future::Future>(f: F) -> Result<F::Output, WorkerError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("pitchside-nats")
        .enable_all()
        .build()
        .map_err(WorkerError::Runtime)?;
    Ok(rt.block_on(f))
}

pub use pitchside_fetch::shutdown_signal;

/// Waits (for the CLI's polling, which has no tokio of its own).
pub async fn sleep(d: std::time::Duration) {
    tokio::time::sleep(d).await
}
