//! `pitchside worker`: pulls jobs one at a time per free pipeline, runs them, stores each
//! result, and only then acknowledges the job.
//!
//! At least once, one result per job: while a job runs its message gets an in-progress ack
//! every third of `ack_wait`, so a short `ack_wait` still covers a long video and a dead
//! worker's job is redelivered soon; a redelivered job whose result is already stored is
//! acknowledged without running again. A job that fails is negatively acknowledged (retried
//! with a growing delay) until its `max_deliver`-th attempt, whose error goes to the
//! dead-letter subject; a job whose last delivery died with its worker is dead-lettered
//! from the server's max-deliveries advisory. On shutdown (SIGTERM) the worker takes no
//! new job, lets the running ones finish for `drain_timeout`, then stops them and naks them.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, AckKind};
use futures_util::StreamExt;
use pitchside_engine::admission::AdmissionError;
use pitchside_engine::pipeline::RunOptions;
use pitchside_engine::pool::PipelinePool;
use pitchside_fetch::{DownloadConfig, Downloader, Source};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::WorkerError;
use crate::job::{Job, Record, State};
use crate::queue::{CONSUMER, DeadLetter, JOBS_STREAM, Queue};

/// How a worker behaves.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Shown in job records (`host-pid` by default).
    pub name: String,
    /// The consumer's ack wait (when this worker creates the consumer).
    pub ack_wait: Duration,
    /// Deliveries of a job before its error is dead-lettered.
    pub max_deliver: i64,
    /// After SIGTERM, how long running jobs may take before they are stopped and naked.
    pub drain_timeout: Duration,
    /// Downloads of URL jobs.
    pub download: DownloadConfig,
    pub temp_dir: PathBuf,
}

/// What a worker did before it stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub done: u64,
    pub failed: u64,
    pub retried: u64,
    /// Jobs handed back on shutdown.
    pub handed_back: u64,
}

#[derive(Default)]
struct Counters {
    done: AtomicU64,
    failed: AtomicU64,
    retried: AtomicU64,
    handed_back: AtomicU64,
}

struct Shared {
    queue: Queue,
    pool: Arc<PipelinePool>,
    opts: WorkerOptions,
    downloader: Downloader,
    /// Set when the drain timeout passes: running jobs stop.
    cancel: Arc<AtomicBool>,
    counters: Counters,
}

/// Why a job did not finish.
enum Failure {
    /// Stopped by the drain: hand it back.
    Stopped,
    /// An error: retry, or dead-letter on the last attempt.
    Error(String),
    /// The video is over the profile's bounds: no attempt can succeed, so it is
    /// dead-lettered at once.
    Refused(String),
}

/// Blocking entry point for `pitchside worker`: connects, runs jobs until SIGTERM or
/// ctrl-c, drains.
pub fn run_until_signal(
    connection: crate::Connection,
    settings: crate::QueueSettings,
    pool: Arc<PipelinePool>,
    opts: WorkerOptions,
) -> Result<Summary, WorkerError> {
    crate::block_on(async move {
        // Listening before connecting, so that an early SIGTERM is not lost.
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            crate::shutdown_signal().await;
            let _ = tx.send(());
        });
        tokio::task::yield_now().await;
        let queue = Queue::connect(&connection, settings).await?;
        run(queue, pool, opts, async {
            let _ = rx.await;
        })
        .await
    })?
}

/// Runs jobs until `shutdown` completes, then drains.
pub async fn run(
    queue: Queue,
    pool: Arc<PipelinePool>,
    opts: WorkerOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<Summary, WorkerError> {
    let consumer = queue.consumer(opts.ack_wait, opts.max_deliver).await?;
    let downloader = Downloader::new(&opts.download, opts.temp_dir.clone())
        .map_err(|e| WorkerError::Job(format!("the downloader: {e}")))?;
    let shared = Arc::new(Shared {
        queue,
        pool,
        opts,
        downloader,
        cancel: Arc::new(AtomicBool::new(false)),
        counters: Counters::default(),
    });
    let advisories = tokio::spawn(dead_letter_abandoned(shared.clone()));
    let permits = Arc::new(Semaphore::new(shared.pool.len()));
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    tracing::info!(
        worker = %shared.opts.name,
        pipelines = shared.pool.len(),
        "worker started; waiting for jobs"
    );
    loop {
        // Biased: once shutdown is asked for, no new job, even if a pipeline is free.
        let permit = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
        };
        while tasks.try_join_next().is_some() {}
        let next = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            // Bounded on this side too: a pull request lost in a server restart never ends.
            m = tokio::time::timeout(Duration::from_secs(5), next_message(&consumer)) => {
                m.unwrap_or_else(|_| Ok(None))
            }
        };
        match next {
            Ok(Some(msg)) => {
                let shared = shared.clone();
                tasks.spawn(async move {
                    handle(&shared, msg).await;
                    drop(permit);
                });
            }
            Ok(None) => {}
            Err(e) => {
                // The server restarting, a cluster electing a leader: wait, then go on.
                tracing::warn!("fetching a job: {e}; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
    tracing::info!(
        running = tasks.len(),
        "shutting down: taking no new job; waiting for the running ones"
    );
    let drain = shared.opts.drain_timeout;
    if tokio::time::timeout(drain, async { while tasks.join_next().await.is_some() {} })
        .await
        .is_err()
    {
        tracing::warn!(
            "drain timeout ({drain:?}): stopping the running jobs and handing them back"
        );
        shared.cancel.store(true, Ordering::SeqCst);
        while tasks.join_next().await.is_some() {}
    }
    advisories.abort();
    let c = &shared.counters;
    Ok(Summary {
        done: c.done.load(Ordering::SeqCst),
        failed: c.failed.load(Ordering::SeqCst),
        retried: c.retried.load(Ordering::SeqCst),
        handed_back: c.handed_back.load(Ordering::SeqCst),
    })
}

/// One message, waiting at most 2 s for it (so that shutdown is noticed).
async fn next_message(
    consumer: &jetstream::consumer::PullConsumer,
) -> Result<Option<jetstream::Message>, String> {
    let mut batch = consumer
        .batch()
        .max_messages(1)
        .expires(Duration::from_secs(2))
        .messages()
        .await
        .map_err(|e| e.to_string())?;
    match batch.next().await {
        None => Ok(None),
        Some(Ok(m)) => Ok(Some(m)),
        Some(Err(e)) => Err(e.to_string()),
    }
}

async fn handle(shared: &Shared, msg: jetstream::Message) {
    let q = &shared.queue;
    let (delivered, seq) = match msg.info() {
        Ok(i) => (i.delivered.max(1) as u64, i.stream_sequence),
        Err(e) => {
            tracing::warn!("a job message without delivery info ({e}); leaving it");
            return;
        }
    };
    let job: Job = match serde_json::from_slice(&msg.payload) {
        Ok(j) => j,
        Err(e) => {
            // Not a job at all: no retry can help.
            let dead = DeadLetter {
                id: format!("message-{seq}"),
                source: String::from_utf8_lossy(&msg.payload)
                    .chars()
                    .take(200)
                    .collect(),
                error: format!("not a job message: {e}"),
                attempts: delivered,
            };
            tracing::warn!("{}: {}", dead.id, dead.error);
            if q.dead_letter(&dead, seq).await.is_ok() {
                let _ = msg.double_ack().await;
            }
            return;
        }
    };
    let id = job.id.as_str();
    // A redelivery after the result was stored (the ack was lost): acknowledge only.
    match q.has_result(id).await {
        Ok(true) => {
            tracing::info!(job = id, "result already stored; acknowledging");
            if let Ok(Some(r)) = q.record(id).await
                && r.state != State::Done
            {
                let _ = q
                    .set_record(
                        id,
                        &Record {
                            state: State::Done,
                            ..r
                        },
                    )
                    .await;
            }
            let _ = msg.double_ack().await;
            return;
        }
        Ok(false) => {}
        Err(e) => {
            tracing::warn!(job = id, "{e}; handing the job back");
            let _ = msg
                .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                .await;
            return;
        }
    }
    let running = Record {
        state: State::Running,
        source: job.source.clone(),
        worker: Some(shared.opts.name.clone()),
        attempt: delivered,
        error: None,
        partial: false,
        seconds: None,
    };
    if let Err(e) = q.set_record(id, &running).await {
        tracing::warn!(job = id, "{e}");
    }
    tracing::info!(job = id, attempt = delivered, source = %job.source, "job started");
    // In-progress acks, straight to the message's reply subject, until the job ends.
    let progress = msg.reply.clone().map(|reply| {
        let client = q.client.clone();
        let every = (shared.opts.ack_wait / 3).max(Duration::from_millis(200));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = client.publish(reply.clone(), "+WPI".into()).await {
                    tracing::debug!("in-progress ack: {e}");
                }
            }
        })
    });
    let started = Instant::now();
    let outcome = run_job(shared, &job).await;
    let refused = matches!(outcome, Err(Failure::Refused(_)));
    if let Some(p) = progress {
        p.abort();
    }
    let seconds = started.elapsed().as_secs_f64();
    let c = &shared.counters;
    match outcome {
        Ok((json, partial)) => {
            // Stored first, then recorded, then acknowledged: a crash in between means a
            // redelivery that finds the result.
            if let Err(e) = retry(|| q.put_result(id, &json)).await {
                tracing::warn!(job = id, "{e}; handing the job back");
                let _ = msg
                    .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                    .await;
                c.retried.fetch_add(1, Ordering::SeqCst);
                return;
            }
            let done = Record {
                state: State::Done,
                partial,
                seconds: Some(seconds),
                ..running
            };
            let _ = retry(|| q.set_record(id, &done)).await;
            if let Err(e) =
                retry(|| async { msg.double_ack().await.map_err(|e| e.to_string()) }).await
            {
                tracing::warn!(
                    job = id,
                    "acknowledging: {e} (a redelivery will find the result)"
                );
            }
            c.done.fetch_add(1, Ordering::SeqCst);
            tracing::info!(job = id, seconds, partial, "job done");
        }
        Err(Failure::Stopped) => {
            let queued = Record {
                state: State::Queued,
                ..running
            };
            let _ = q.set_record(id, &queued).await;
            let _ = msg.ack_with(AckKind::Nak(None)).await;
            c.handed_back.fetch_add(1, Ordering::SeqCst);
            tracing::info!(job = id, "job stopped by the shutdown; handed back");
        }
        Err(Failure::Error(error) | Failure::Refused(error))
            if refused || delivered >= shared.opts.max_deliver.max(1) as u64 =>
        {
            tracing::warn!(
                job = id,
                attempt = delivered,
                "job failed for good: {error}"
            );
            let dead = DeadLetter {
                id: job.id.clone(),
                source: job.source.clone(),
                error: error.clone(),
                attempts: delivered,
            };
            if let Err(e) = retry(|| q.dead_letter(&dead, seq)).await {
                tracing::warn!(job = id, "{e}; handing the job back");
                let _ = msg
                    .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                    .await;
                return;
            }
            let failed = Record {
                state: State::Failed,
                error: Some(error),
                seconds: Some(seconds),
                ..running
            };
            let _ = retry(|| q.set_record(id, &failed)).await;
            let _ = msg.double_ack().await;
            c.failed.fetch_add(1, Ordering::SeqCst);
        }
        Err(Failure::Error(error) | Failure::Refused(error)) => {
            tracing::warn!(
                job = id,
                attempt = delivered,
                "job failed, will retry: {error}"
            );
            let queued = Record {
                state: State::Queued,
                error: Some(error),
                seconds: Some(seconds),
                ..running
            };
            let _ = q.set_record(id, &queued).await;
            let delay = Duration::from_secs(delivered.min(30));
            let _ = msg.ack_with(AckKind::Nak(Some(delay))).await;
            c.retried.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Runs a job's video on a free pipeline; its JSON and whether it is partial.
async fn run_job(shared: &Shared, job: &Job) -> Result<(Vec<u8>, bool), Failure> {
    // A URL is downloaded first (the service's downloader: limits, retries, SSRF guard);
    // the file lives until the run ends.
    let source = Source::parse(&job.source).map_err(|e| Failure::Refused(e.to_string()))?;
    let (path, downloaded) = match source {
        Source::Url(url) => {
            let d = shared
                .downloader
                .fetch(&url)
                .await
                .map_err(|e| Failure::Error(format!("downloading {url}: {e}")))?;
            (d.file.path().to_path_buf(), Some(d.file))
        }
        Source::File(path) => (path, None),
    };
    let pool = shared.pool.clone();
    let cancel = shared.cancel.clone();
    let id = job.id.clone();
    let run = tokio::task::spawn_blocking(move || {
        // The engine's admission, as `run` and `serve` have it: one probe, every bound of
        // the profile (a queued 8K video is refused here, not analysed). No retry helps.
        let video = pool.admit(&path).map_err(|e| match e {
            AdmissionError::TooLarge { .. } => Failure::Refused(e.to_string()),
            // A file not there yet (a shared folder), a download cut short: retried.
            AdmissionError::Video(_) => Failure::Error(e.to_string()),
        })?;
        let Some(mut lease) = pool.acquire(Some(&cancel)) else {
            return Err(Failure::Stopped);
        };
        let opts = RunOptions {
            challenge_id: id,
            cancel: Some(&cancel),
            progress: None,
            max_frames: None,
            ..Default::default()
        };
        let (response, _stats) = lease
            .run(&video, &opts)
            .map_err(|e| Failure::Error(e.to_string()))?;
        if cancel.load(Ordering::SeqCst) && response.partial {
            return Err(Failure::Stopped);
        }
        let json = serde_json::to_vec(&response)
            .map_err(|e| Failure::Error(format!("serialising the result: {e}")))?;
        Ok((json, response.partial))
    })
    .await;
    drop(downloaded);
    match run {
        Ok(r) => r,
        Err(e) => Err(Failure::Error(format!("the analysis panicked: {e}"))),
    }
}

/// Retries a NATS operation for up to ~30 s (a server restarting, a leader election).
async fn retry<T, E: std::fmt::Display, F: Future<Output = Result<T, E>>>(
    mut f: impl FnMut() -> F,
) -> Result<T, String> {
    let mut wait = Duration::from_millis(100);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() >= deadline => return Err(e.to_string()),
            Err(e) => {
                tracing::debug!("retrying: {e}");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// The server's advisory for a job delivered `max_deliver` times without an answer.
#[derive(serde::Deserialize)]
struct MaxDeliveries {
    stream_seq: u64,
    deliveries: u64,
}

/// Dead-letters the jobs whose last delivery died with its worker (no worker saw the
/// last attempt fail, so none published the dead letter): from the server's
/// max-deliveries advisory. Every worker listens; the dead letter is deduplicated.
async fn dead_letter_abandoned(shared: Arc<Shared>) {
    let q = &shared.queue;
    let subject = format!("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{JOBS_STREAM}.{CONSUMER}");
    let mut sub = match q.client.subscribe(subject).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("cannot watch for abandoned jobs: {e}");
            return;
        }
    };
    while let Some(m) = sub.next().await {
        let Ok(adv) = serde_json::from_slice::<MaxDeliveries>(&m.payload) else {
            continue;
        };
        let Ok(raw) = q.jobs.get_raw_message(adv.stream_seq).await else {
            continue; // already handled by another worker
        };
        let Ok(job) = serde_json::from_slice::<Job>(&raw.payload) else {
            continue;
        };
        if matches!(q.has_result(&job.id).await, Ok(true)) {
            let _ = q.jobs.delete_message(adv.stream_seq).await;
            continue;
        }
        let error = format!(
            "delivered {} times without finishing (the workers running it stopped or \
             exceeded the ack wait)",
            adv.deliveries
        );
        tracing::warn!(job = %job.id, "{error}");
        let dead = DeadLetter {
            id: job.id.clone(),
            source: job.source.clone(),
            error: error.clone(),
            attempts: adv.deliveries,
        };
        if q.dead_letter(&dead, adv.stream_seq).await.is_ok() {
            let record = Record {
                state: State::Failed,
                source: job.source.clone(),
                worker: None,
                attempt: adv.deliveries,
                error: Some(error),
                partial: false,
                seconds: None,
            };
            let _ = q.set_record(&job.id, &record).await;
            let _ = q.jobs.delete_message(adv.stream_seq).await;
        }
    }
}
