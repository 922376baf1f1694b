//! The JetStream side: connecting, the stream, buckets and subjects, submitting, and
//! reading back states, results and dead letters.
//!
//! - stream `PITCHSIDE_JOBS` (subject `pitchside.jobs`, work-queue retention, file storage):
//!   one message per job, deduplicated by its `Nats-Msg-Id` (the job id);
//! - durable pull consumer `pitchside-workers` on it, shared by every worker;
//! - KV bucket `pitchside_jobs`: each job's [`Record`] (queued, running, done, failed);
//! - object store `pitchside_results`: each finished job's Score Vision JSON, by job id;
//! - subject `pitchside.dead` (kept by stream `PITCHSIDE_DEAD`): jobs that failed
//!   `max_deliver` times, with the error.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, kv, object_store, stream};
use async_nats::{ConnectOptions, HeaderMap};
use futures_util::StreamExt;
use tokio::io::AsyncReadExt;

use crate::WorkerError;
use crate::job::{Job, Record, State};

pub const JOBS_STREAM: &str = "PITCHSIDE_JOBS";
pub const JOBS_SUBJECT: &str = "pitchside.jobs";
pub const CONSUMER: &str = "pitchside-workers";
pub const JOBS_BUCKET: &str = "pitchside_jobs";
pub const RESULTS_BUCKET: &str = "pitchside_results";
pub const DEAD_STREAM: &str = "PITCHSIDE_DEAD";
pub const DEAD_SUBJECT: &str = "pitchside.dead";
/// Header of a dead letter: the job's last error.
pub const ERROR_HEADER: &str = "Pitchside-Error";
/// Header of a dead letter: the job id.
pub const JOB_HEADER: &str = "Pitchside-Job-Id";

/// How to reach NATS: the URL(s), and credentials and TLS passed to the client as given.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    /// One URL or several, comma-separated (`nats://a:4222,nats://b:4222`).
    pub url: String,
    /// A `.creds` file (JWT and NKey seed), as `nats` and `nsc` write them.
    pub creds: Option<PathBuf>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    /// An NKey seed (`SU...`).
    pub nkey: Option<String>,
    /// CA certificate (PEM) to trust for the server's TLS.
    pub tls_ca: Option<PathBuf>,
    /// Client certificate and key (PEM), for servers that verify clients.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_required: bool,
    /// The client name the server shows (`nats server report connections`).
    pub name: Option<String>,
}

/// Settings of the stream and buckets when this client creates them.
#[derive(Debug, Clone, Copy)]
pub struct QueueSettings {
    /// Replicas of the stream and buckets (3 on a 3-node cluster).
    pub replicas: usize,
    /// How long a job id is remembered for `Nats-Msg-Id` deduplication.
    pub duplicate_window: Duration,
}

impl Default for QueueSettings {
    fn default() -> Self {
        QueueSettings {
            replicas: 1,
            duplicate_window: Duration::from_secs(24 * 3600),
        }
    }
}

/// A connection to the queue, with the stream and buckets in place.
#[derive(Clone)]
pub struct Queue {
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub jobs: stream::Stream,
    pub records: kv::Store,
    pub results: object_store::ObjectStore,
}

fn nats_err(what: &str) -> impl Fn(String) -> WorkerError + '_ {
    move |e| WorkerError::Nats(format!("{what}: {e}"))
}

impl Queue {
    /// Connects (retrying while the server is not up yet, reconnecting for ever after) and
    /// creates the stream and buckets that do not exist yet.
    pub async fn connect(c: &Connection, settings: QueueSettings) -> Result<Queue, WorkerError> {
        let mut opts = ConnectOptions::new()
            .max_reconnects(None)
            .connection_timeout(Duration::from_secs(5))
            .event_callback(|event| async move {
                tracing::info!("nats: {event}");
            });
        if let Some(path) = &c.creds {
            opts = opts.credentials_file(path).await.map_err(|e| {
                WorkerError::Nats(format!("credentials file {}: {e}", path.display()))
            })?;
        }
        if let (Some(u), Some(p)) = (&c.user, &c.password) {
            opts = opts.user_and_password(u.clone(), p.clone());
        } else if c.user.is_some() || c.password.is_some() {
            return Err(WorkerError::Nats(
                "--nats-user and --nats-password go together".into(),
            ));
        }
        if let Some(t) = &c.token {
            opts = opts.token(t.clone());
        }
        if let Some(seed) = &c.nkey {
            opts = opts.nkey(seed.clone());
        }
        if let Some(ca) = &c.tls_ca {
            opts = opts.add_root_certificates(ca.clone());
        }
        match (&c.tls_cert, &c.tls_key) {
            (Some(cert), Some(key)) => {
                opts = opts.add_client_certificate(cert.clone(), key.clone());
            }
            (None, None) => {}
            _ => {
                return Err(WorkerError::Nats(
                    "--tls-cert and --tls-key go together".into(),
                ));
            }
        }
        if c.tls_required {
            opts = opts.require_tls(true);
        }
        if let Some(name) = &c.name {
            opts = opts.name(name);
        }
        let urls: Vec<async_nats::ServerAddr> = c
            .url
            .split(',')
            .map(|u| {
                u.trim()
                    .parse()
                    .map_err(|e| WorkerError::Nats(format!("NATS URL {u:?}: {e}")))
            })
            .collect::<Result<_, _>>()?;
        let client = opts
            .retry_on_initial_connect()
            .connect(urls)
            .await
            .map_err(|e| WorkerError::Nats(format!("connecting to {}: {e}", c.url)))?;
        // A first connection that keeps failing would wait for ever: bound it.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while client.connection_state() != async_nats::connection::State::Connected {
            if tokio::time::Instant::now() > deadline {
                return Err(WorkerError::Nats(format!(
                    "no NATS server answered at {} within 30 s",
                    c.url
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let js = jetstream::new(client.clone());
        let jobs = js
            .get_or_create_stream(stream::Config {
                name: JOBS_STREAM.into(),
                subjects: vec![JOBS_SUBJECT.into()],
                retention: stream::RetentionPolicy::WorkQueue,
                storage: stream::StorageType::File,
                num_replicas: settings.replicas,
                duplicate_window: settings.duplicate_window,
                ..Default::default()
            })
            .await
            .map_err(|e| nats_err("the jobs stream")(e.to_string()))?;
        js.get_or_create_stream(stream::Config {
            name: DEAD_STREAM.into(),
            subjects: vec![DEAD_SUBJECT.into()],
            storage: stream::StorageType::File,
            num_replicas: settings.replicas,
            duplicate_window: settings.duplicate_window,
            ..Default::default()
        })
        .await
        .map_err(|e| nats_err("the dead-letter stream")(e.to_string()))?;
        // The bucket's stream as `create_key_value` makes it, made here: that call first
        // reads the account info, whose 2.9 form (Debian's server) the client cannot parse.
        js.get_or_create_stream(stream::Config {
            name: format!("KV_{JOBS_BUCKET}"),
            subjects: vec![format!("$KV.{JOBS_BUCKET}.>")],
            max_messages_per_subject: 1,
            storage: stream::StorageType::File,
            num_replicas: settings.replicas,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            discard: stream::DiscardPolicy::New,
            ..Default::default()
        })
        .await
        .map_err(|e| nats_err("the jobs bucket")(e.to_string()))?;
        let records = js
            .get_key_value(JOBS_BUCKET)
            .await
            .map_err(|e| nats_err("the jobs bucket")(e.to_string()))?;
        let results = match js.get_object_store(RESULTS_BUCKET).await {
            Ok(s) => s,
            Err(_) => js
                .create_object_store(object_store::Config {
                    bucket: RESULTS_BUCKET.into(),
                    storage: stream::StorageType::File,
                    num_replicas: settings.replicas,
                    ..Default::default()
                })
                .await
                .map_err(|e| nats_err("the results store")(e.to_string()))?,
        };
        Ok(Queue {
            client,
            js,
            jobs,
            records,
            results,
        })
    }

    /// The workers' shared consumer (created with these settings if new).
    pub async fn consumer(
        &self,
        ack_wait: Duration,
        max_deliver: i64,
    ) -> Result<consumer::PullConsumer, WorkerError> {
        self.jobs
            .get_or_create_consumer(
                CONSUMER,
                consumer::pull::Config {
                    durable_name: Some(CONSUMER.into()),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait,
                    max_deliver,
                    filter_subject: JOBS_SUBJECT.into(),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| WorkerError::Nats(format!("the workers' consumer: {e}")))
    }

    /// Records a job's state.
    pub async fn set_record(&self, id: &str, r: &Record) -> Result<(), WorkerError> {
        let body = serde_json::to_vec(r).map_err(|e| WorkerError::Job(e.to_string()))?;
        self.records
            .put(id, body.into())
            .await
            .map_err(|e| WorkerError::Nats(format!("recording job {id}: {e}")))?;
        Ok(())
    }

    /// A job's record, if it has one.
    pub async fn record(&self, id: &str) -> Result<Option<Record>, WorkerError> {
        let got = self
            .records
            .get(id)
            .await
            .map_err(|e| WorkerError::Nats(format!("reading job {id}: {e}")))?;
        Ok(got.and_then(|b| serde_json::from_slice(&b).ok()))
    }

    /// Every job's record, by id.
    pub async fn records(&self) -> Result<BTreeMap<String, Record>, WorkerError> {
        let mut keys = self
            .records
            .keys()
            .await
            .map_err(|e| WorkerError::Nats(format!("listing jobs: {e}")))?;
        let mut ids = Vec::new();
        while let Some(k) = keys.next().await {
            ids.push(k.map_err(|e| WorkerError::Nats(format!("listing jobs: {e}")))?);
        }
        let mut out = BTreeMap::new();
        for id in ids {
            if let Some(r) = self.record(&id).await? {
                out.insert(id, r);
            }
        }
        Ok(out)
    }

    /// Enqueues a job; `Ok(false)` when it was already queued, running or done (its record
    /// says so, or the job stream's `Nats-Msg-Id` deduplication dropped it). A failed job
    /// is queued again.
    pub async fn submit(&self, job: &Job) -> Result<bool, WorkerError> {
        let previous = self.record(&job.id).await?;
        if previous.as_ref().is_some_and(|r| r.state != State::Failed) {
            return Ok(false);
        }
        // A failed job submitted again is a new message: its first one's id is still in
        // the deduplication window.
        let msg_id = match previous {
            None => job.id.clone(),
            Some(_) => format!(
                "{}.{}",
                job.id,
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0)
            ),
        };
        self.set_record(
            &job.id,
            &Record {
                state: State::Queued,
                source: job.source.clone(),
                worker: None,
                attempt: 0,
                error: None,
                partial: false,
                seconds: None,
            },
        )
        .await?;
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", msg_id.as_str());
        let body = serde_json::to_vec(job).map_err(|e| WorkerError::Job(e.to_string()))?;
        let ack = self
            .js
            .publish_with_headers(JOBS_SUBJECT, headers, body.into())
            .await
            .map_err(|e| WorkerError::Nats(format!("submitting {}: {e}", job.id)))?
            .await
            .map_err(|e| WorkerError::Nats(format!("submitting {}: {e}", job.id)))?;
        Ok(!ack.duplicate)
    }

    /// Stores a job's result (replacing one stored before).
    pub async fn put_result(&self, id: &str, json: &[u8]) -> Result<(), WorkerError> {
        let mut data = json;
        self.results
            .put(id, &mut data)
            .await
            .map_err(|e| WorkerError::Nats(format!("storing the result of {id}: {e}")))?;
        Ok(())
    }

    /// Whether a result is stored for the job.
    pub async fn has_result(&self, id: &str) -> Result<bool, WorkerError> {
        match self.results.info(id).await {
            Ok(info) => Ok(!info.deleted),
            Err(e) if e.kind() == object_store::InfoErrorKind::NotFound => Ok(false),
            Err(e) => Err(WorkerError::Nats(format!(
                "looking up the result of {id}: {e}"
            ))),
        }
    }

    /// A job's stored result (Score Vision JSON), if any.
    pub async fn result(&self, id: &str) -> Result<Option<Vec<u8>>, WorkerError> {
        if !self.has_result(id).await? {
            return Ok(None);
        }
        let mut obj = self
            .results
            .get(id)
            .await
            .map_err(|e| WorkerError::Nats(format!("reading the result of {id}: {e}")))?;
        let mut out = Vec::new();
        obj.read_to_end(&mut out)
            .await
            .map_err(|e| WorkerError::Nats(format!("reading the result of {id}: {e}")))?;
        Ok(Some(out))
    }

    /// The names of every stored result, and how many revisions each has (1 each when no
    /// job was stored twice).
    pub async fn result_names(&self) -> Result<BTreeMap<String, usize>, WorkerError> {
        let mut list = self
            .results
            .list()
            .await
            .map_err(|e| WorkerError::Nats(format!("listing results: {e}")))?;
        let mut out = BTreeMap::new();
        while let Some(info) = list.next().await {
            let info = info.map_err(|e| WorkerError::Nats(format!("listing results: {e}")))?;
            if !info.deleted {
                *out.entry(info.name).or_default() += 1;
            }
        }
        Ok(out)
    }

    /// Publishes a dead letter for the job message `seq` of the jobs stream (deduplicated:
    /// one per message, whoever sends it).
    pub async fn dead_letter(&self, dead: &DeadLetter, seq: u64) -> Result<(), WorkerError> {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("dead-{JOBS_STREAM}-{seq}").as_str());
        headers.insert(JOB_HEADER, dead.id.as_str());
        // Header values are one line.
        headers.insert(ERROR_HEADER, dead.error.replace(['\r', '\n'], " ").as_str());
        let body = serde_json::to_vec(dead).map_err(|e| WorkerError::Job(e.to_string()))?;
        self.js
            .publish_with_headers(DEAD_SUBJECT, headers, body.into())
            .await
            .map_err(|e| WorkerError::Nats(format!("dead-lettering {}: {e}", dead.id)))?
            .await
            .map_err(|e| WorkerError::Nats(format!("dead-lettering {}: {e}", dead.id)))?;
        Ok(())
    }

    /// Every dead letter kept on the dead-letter stream, oldest first.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, WorkerError> {
        let mut s = self
            .js
            .get_stream(DEAD_STREAM)
            .await
            .map_err(|e| WorkerError::Nats(format!("the dead-letter stream: {e}")))?;
        let info = s
            .info()
            .await
            .map_err(|e| WorkerError::Nats(format!("the dead-letter stream: {e}")))?;
        let (first, last) = (info.state.first_sequence, info.state.last_sequence);
        let mut out = Vec::new();
        if info.state.messages == 0 {
            return Ok(out);
        }
        for seq in first..=last {
            match s.get_raw_message(seq).await {
                Ok(m) => {
                    if let Ok(d) = serde_json::from_slice::<DeadLetter>(&m.payload) {
                        out.push(d);
                    }
                }
                // Deleted (purged) messages leave gaps.
                Err(_) => continue,
            }
        }
        Ok(out)
    }

    /// Jobs waiting in the stream (not yet acknowledged).
    pub async fn pending(&self) -> Result<u64, WorkerError> {
        let mut s = self.jobs.clone();
        let info = s
            .info()
            .await
            .map_err(|e| WorkerError::Nats(format!("the jobs stream: {e}")))?;
        Ok(info.state.messages)
    }
}

/// A job that failed on every delivery, as published on [`DEAD_SUBJECT`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DeadLetter {
    pub id: String,
    pub source: String,
    pub error: String,
    pub attempts: u64,
}
