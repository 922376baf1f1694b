//! The HTTP side: routes, challenge slots, the shutdown drain.
//!
//! A challenge is authenticated ([`crate::auth`]), downloaded (`pitchside_fetch`), checked to
//! be a video, and handed to an [`Analyzer`] on a blocking thread; every way it can fail is a
//! [`ChallengeFailure`], which is its response. At most
//! `max_concurrent_challenges` run at once; others get 503 with `Retry-After`. On shutdown the
//! running challenges finish, new ones get 503, then the server exits. Routes are declared in
//! [`Server::start`]; each is one handler function below.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::BodyExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::Instrument;

use pitchside_engine::admission::AdmissionError;
use pitchside_engine::response::{ChallengeId, Response as Answer};

use crate::analyzer::Analyzer;
use crate::auth::{self, Authenticator};
use crate::config::{self, AuthMode, ServiceConfig, ServiceConfigError};
use crate::connections::{Busy, Connections};
use crate::failure::ChallengeFailure;
use crate::json::{json_response, json_response_with_id};
use crate::metrics::{Gauges, Metrics};
use pitchside_fetch::{DownloadError, Downloader, shutdown_signal};

/// Why the service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Config(#[from] ServiceConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("temporary directory {path}: {source}")]
    TempDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("HTTP client: {0}")]
    Client(String),
    #[error("tokio runtime: {0}")]
    Runtime(std::io::Error),
    #[error("server task: {0}")]
    Task(String),
}

/// The body of `POST /soccer/challenge`.
#[derive(Debug, Deserialize)]
struct ChallengeRequest {
    /// Echoed as given, as the same JSON text (validators send a string or a number; a
    /// number above 2^64 would come back as a float through `Value`).
    challenge_id: Box<serde_json::value::RawValue>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    video_url: String,
    #[serde(default)]
    created_at: Option<Value>,
}

struct AppState {
    cfg: ServiceConfig,
    /// Why every challenge will be refused (no allow-list, no miner hotkey), if so: then
    /// the miner is never available, so validators stop sending to it.
    refusal: Option<String>,
    auth: Authenticator,
    downloader: Downloader,
    analyzer: Arc<dyn Analyzer>,
    slots: Arc<Semaphore>,
    draining: AtomicBool,
    metrics: Metrics,
    /// Cancel flags of running challenges, so a drain timeout can ask them to stop.
    running: Mutex<Vec<(u64, Arc<AtomicBool>)>>,
    next_id: AtomicU64,
}

impl AppState {
    fn capacity(&self) -> usize {
        self.cfg.max_concurrent_challenges
    }
    fn in_flight(&self) -> usize {
        self.capacity()
            .saturating_sub(self.slots.available_permits())
    }
    fn draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
    fn available(&self) -> bool {
        self.refusal.is_none()
            && !self.draining()
            && self.slots.available_permits() > 0
            && self.analyzer.free_pipelines().is_none_or(|n| n > 0)
    }
    fn gauges(&self) -> Gauges {
        Gauges {
            in_flight: self.in_flight(),
            capacity: self.capacity(),
            available: self.available(),
            draining: self.draining(),
            pipelines: self.analyzer.pipelines(),
        }
    }
    fn cancel_all(&self) {
        for (_, flag) in self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            flag.store(true, Ordering::SeqCst);
        }
    }
}

/// A challenge slot: holds the semaphore permit and the cancel flag's registration until the
/// analysis really ends (it moves into the blocking task), not merely until the HTTP request ends.
struct Slot {
    _permit: OwnedSemaphorePermit,
    id: u64,
    state: Arc<AppState>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.state
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(id, _)| *id != self.id);
    }
}

/// Notices the request future being dropped before it answered (the validator hung up): sets
/// the cancel flag so the analysis stops, and counts the challenge as abandoned.
struct HangUpGuard {
    cancel: Arc<AtomicBool>,
    state: Arc<AppState>,
    answered: bool,
}

impl Drop for HangUpGuard {
    fn drop(&mut self) {
        if !self.answered {
            self.cancel.store(true, Ordering::SeqCst);
            self.state.metrics.challenge("abandoned");
            tracing::warn!("the client went away before the answer; stopping the challenge");
        }
    }
}

/// Reads a request's body before any handler sees it: a body declared larger than
/// `max_request_bytes` is refused at once (413, not after reading it), and the whole body
/// must arrive within `request_body_timeout_s` (408). Both answers close the connection, so
/// a client cannot hold it with a body it never sends.
async fn bounded_body(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let max = state.cfg.max_request_bytes;
    let refuse = |status: StatusCode, message: String| {
        ChallengeFailure::RequestBody { status, message }.respond(
            &state.metrics,
            state.cfg.retry_after_s,
            None,
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(n) = declared.filter(|&n| n > max as u64) {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the request declares {n} bytes; the limit is {max} (service.max_request_bytes)"
            ),
        );
    }
    let (parts, body) = req.into_parts();
    let limit = Duration::from_secs_f64(state.cfg.request_body_timeout_s);
    let read = http_body_util::Limited::new(body, max).collect();
    match tokio::time::timeout(limit, read).await {
        Err(_) => refuse(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request body did not arrive within {:.1} s (service.request_body_timeout_s)",
                limit.as_secs_f64()
            ),
        ),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is over {max} bytes (service.max_request_bytes)"),
        ),
        Ok(Err(e)) => refuse(
            StatusCode::BAD_REQUEST,
            format!("cannot read the request body: {e}"),
        ),
        Ok(Ok(collected)) => {
            next.run(Request::from_parts(parts, Body::from(collected.to_bytes())))
                .await
        }
    }
}

/// The challenge id as the validator sent it, if it is one (a non-empty string or a number).
fn challenge_id(id: &Value) -> Option<ChallengeId> {
    match id {
        Value::String(s) if !s.is_empty() => Some(ChallengeId::Text(s.clone())),
        Value::Number(n) => Some(ChallengeId::Number(n.clone())),
        _ => None,
    }
}

/// The answer's JSON. Through a `serde_json::Value`, whose objects keep their keys sorted:
/// the service has always answered with sorted keys (`pitchside run` writes them in field
/// order), so the bytes validators get stay what they were.
fn answer_json(answer: &Answer) -> Result<Value, serde_json::Error> {
    serde_json::to_value(answer)
}

async fn challenge(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    match admit_challenge(&state, &headers, body) {
        Ok((req, id, caller, permit)) => {
            let span = tracing::info_span!("challenge", id = %id);
            run_challenge(state.clone(), permit, req, id, caller, started)
                .instrument(span)
                .await
        }
        Err(failure) => failure.respond(&state.metrics, state.cfg.retry_after_s, None),
    }
}

/// The checks before a challenge takes a slot: a readable body, not draining, a valid
/// signature, a well-formed request, a free slot.
fn admit_challenge(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<
    (
        ChallengeRequest,
        ChallengeId,
        auth::Caller,
        OwnedSemaphorePermit,
    ),
    ChallengeFailure,
> {
    let body = body.map_err(|rejection| ChallengeFailure::RequestBody {
        status: rejection.status(),
        message: rejection.body_text(),
    })?;
    if state.draining() {
        return Err(ChallengeFailure::Draining);
    }
    let caller = state.auth.check(headers, &body)?;
    let req: ChallengeRequest = serde_json::from_slice(&body)
        .map_err(|e| ChallengeFailure::RequestJson(format!("invalid challenge: {e}")))?;
    let id_value: Value = serde_json::from_str(req.challenge_id.get()).unwrap_or(Value::Null);
    let id = challenge_id(&id_value).ok_or_else(|| {
        ChallengeFailure::RequestJson("challenge_id must be a non-empty string or a number".into())
    })?;
    let Ok(permit) = state.slots.clone().try_acquire_owned() else {
        tracing::info!(challenge_id = %id, "refused: {} challenge(s) already running", state.in_flight());
        return Err(ChallengeFailure::Busy);
    };
    // Checked again with the slot held: the drain marks itself draining before it counts the
    // slots in use, so either it waits for this challenge or this challenge sees the drain.
    if state.draining() {
        return Err(ChallengeFailure::Draining);
    }
    Ok((req, id, caller, permit))
}

async fn run_challenge(
    state: Arc<AppState>,
    permit: OwnedSemaphorePermit,
    req: ChallengeRequest,
    id: ChallengeId,
    caller: auth::Caller,
    started: Instant,
) -> Response {
    let cancel = Arc::new(AtomicBool::new(false));
    let slot_id = state.next_id.fetch_add(1, Ordering::Relaxed);
    state
        .running
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((slot_id, cancel.clone()));
    let slot = Slot {
        _permit: permit,
        id: slot_id,
        state: state.clone(),
    };
    let mut hangup = HangUpGuard {
        cancel: cancel.clone(),
        state: state.clone(),
        answered: false,
    };
    tracing::info!(
        "accepted from {caller}: type {:?}, created_at {}, video {}",
        req.kind.as_deref().unwrap_or("-"),
        req.created_at
            .as_ref()
            .map_or_else(|| "-".to_string(), |v| v.to_string()),
        req.video_url
    );
    let response = challenge_stages(&state, slot, cancel, req, id, started).await;
    hangup.answered = true;
    response
}

/// Download, content check, analysis; every outcome is counted and logged.
async fn challenge_stages(
    state: &AppState,
    slot: Slot,
    cancel: Arc<AtomicBool>,
    req: ChallengeRequest,
    id: ChallengeId,
    started: Instant,
) -> Response {
    let m = &state.metrics;
    match analyse_challenge(state, slot, cancel, &req, id, started).await {
        Ok(response) => response,
        Err(failure) => {
            m.stage("total", started.elapsed());
            failure.respond(m, state.cfg.retry_after_s, Some(req.challenge_id.get()))
        }
    }
}

async fn analyse_challenge(
    state: &AppState,
    slot: Slot,
    cancel: Arc<AtomicBool>,
    req: &ChallengeRequest,
    id: ChallengeId,
    started: Instant,
) -> Result<Response, ChallengeFailure> {
    let m = &state.metrics;

    // Download.
    let downloaded = state.downloader.fetch(&req.video_url).await;
    let downloaded = downloaded.map_err(|e| {
        m.stage("download", started.elapsed());
        ChallengeFailure::Download(e)
    })?;
    m.stage("download", downloaded.elapsed);
    m.download(downloaded.bytes, downloaded.elapsed);
    let secs = downloaded.elapsed.as_secs_f64();
    tracing::info!(
        "downloaded {} bytes in {secs:.2} s ({:.1} MB/s, {} attempt(s))",
        downloaded.bytes,
        downloaded.bytes as f64 / secs.max(1e-6) / 1e6,
        downloaded.attempts
    );

    // The engine's admission: the file must open as a video of an allowed format, yield a
    // frame and be within the profile's bounds (one probe, which the decoder reuses).
    let t = Instant::now();
    let bytes = downloaded.bytes;
    let file = downloaded.file;
    let analyzer = state.analyzer.clone();
    let checked = tokio::task::spawn_blocking(move || {
        let r = analyzer.admit(file.path());
        (file, r)
    })
    .await;
    m.stage("check", t.elapsed());
    let (file, video) = match checked {
        Ok((file, Ok(v))) => {
            let i = v.info();
            tracing::info!(
                "video {}x{}, {:.2} fps, {} frames (container)",
                i.width,
                i.height,
                i.fps,
                i.frame_count
            );
            (file, v)
        }
        Ok((_file, Err(e @ AdmissionError::TooLarge { .. }))) => {
            return Err(ChallengeFailure::VideoTooLarge(format!(
                "{}: {}",
                req.video_url,
                e.without_path()
            )));
        }
        Ok((_file, Err(e))) => {
            return Err(ChallengeFailure::NotVideo(DownloadError::NotVideo {
                url: req.video_url.clone(),
                bytes,
                message: e.without_path(),
            }));
        }
        Err(join) => return Err(ChallengeFailure::CheckPanicked(join.to_string())),
    };

    // Analysis, on a blocking thread that owns the slot and the file: if the validator hangs up,
    // the work stops (cancel flag) and only then are the slot and the file released.
    let t = Instant::now();
    let analyzer = state.analyzer.clone();
    let flag = cancel.clone();
    let aid = id.to_string();
    let analysed = tokio::task::spawn_blocking(move || {
        let r = analyzer.analyze(&video, &aid, &flag);
        drop(file);
        drop(slot);
        r
    })
    .await;
    let analyse_time = t.elapsed();
    m.stage("analyze", analyse_time);
    let mut answer = analysed
        .map_err(|join| ChallengeFailure::AnalysisPanicked(join.to_string()))?
        .map_err(ChallengeFailure::Analysis)?;
    // The validator matches answers by id: always echo the one it sent, as it sent it.
    answer.challenge_id = id;
    let frames = answer.frames.len();
    let body = answer_json(&answer).map_err(ChallengeFailure::Serialize)?;
    let total = started.elapsed();
    m.stage("total", total);
    m.challenge("ok");
    tracing::info!(
        "answered: {frames} frames; download {secs:.2} s, analysis {:.2} s, total {:.2} s",
        analyse_time.as_secs_f64(),
        total.as_secs_f64()
    );
    Ok(json_response_with_id(
        StatusCode::OK,
        req.challenge_id.get(),
        body,
    ))
}

async fn availability(State(state): State<Arc<AppState>>) -> Response {
    json_response(StatusCode::OK, json!({ "available": state.available() }))
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    let draining = state.draining();
    let status = if draining {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    json_response(
        status,
        json!({
            "status": if draining { "draining" } else { "ok" },
            "in_flight": state.in_flight(),
            "capacity": state.capacity(),
            "auth": state.cfg.auth,
            // Not while draining: a challenge sent now would get 503.
            "accepting_challenges": state.refusal.is_none() && !draining,
            "version": env!("CARGO_PKG_VERSION"),
        }),
    )
}

async fn metrics_text(State(state): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        state.metrics.render(state.gauges()),
    )
        .into_response()
}

/// A running service: its bound address, and a handle to wait for it to stop.
pub struct Server {
    addr: SocketAddr,
    state: Arc<AppState>,
    task: tokio::task::JoinHandle<Result<(), ServiceError>>,
}

/// After the drain, how long open connections (e.g. a client mid-request) may delay the exit.
const CONNECTION_GRACE: Duration = Duration::from_secs(10);

impl Server {
    /// Validates the config, binds `listen` (port 0 picks a free one, see [`Server::local_addr`])
    /// and serves in a background task until `shutdown` completes. Then it refuses new
    /// challenges (503), waits for the running ones (at most `drain_timeout_s`, after which it
    /// asks them to stop), and exits. Must be called inside a tokio runtime.
    pub async fn start(
        cfg: ServiceConfig,
        listen: SocketAddr,
        analyzer: Arc<dyn Analyzer>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<Server, ServiceError> {
        config::validate(&cfg)?;
        let temp_dir = cfg.temp_dir.clone().unwrap_or_else(std::env::temp_dir);
        std::fs::create_dir_all(&temp_dir).map_err(|source| ServiceError::TempDir {
            path: temp_dir.clone(),
            source,
        })?;
        let downloader = Downloader::new(&cfg.download, temp_dir.clone())
            .map_err(|e| ServiceError::Client(e.to_string()))?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|source| ServiceError::Bind {
                addr: listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| ServiceError::Bind {
            addr: listen,
            source,
        })?;
        log_startup(&cfg, addr, &temp_dir);

        let state = Arc::new(AppState {
            refusal: config::refusal_reason(&cfg),
            auth: Authenticator::new(&cfg),
            downloader,
            analyzer,
            slots: Arc::new(Semaphore::new(cfg.max_concurrent_challenges)),
            draining: AtomicBool::new(false),
            metrics: Metrics::default(),
            running: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
            cfg,
        });
        let app = Router::new()
            .route("/soccer/challenge", post(challenge))
            .route("/availability", get(availability))
            .route("/health", get(health))
            .route("/metrics", get(metrics_text))
            .layer(DefaultBodyLimit::max(state.cfg.max_request_bytes))
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                bounded_body,
            ))
            .with_state(state.clone());

        let drained = Arc::new(tokio::sync::Notify::new());
        let drain_state = state.clone();
        let drained_tx = drained.clone();
        let graceful = async move {
            shutdown.await;
            drain(&drain_state).await;
            drained_tx.notify_one();
        };
        let limits = ConnectionLimits::of(&state.cfg);
        let task = tokio::spawn(async move {
            let server = accept_loop(listener, app, limits, graceful);
            tokio::pin!(server);
            // The accept loop waits for every open connection to finish; a client that never
            // finishes its request must not keep the process alive forever.
            tokio::select! {
                () = &mut server => {}
                _ = async {
                    drained.notified().await;
                    tokio::time::sleep(CONNECTION_GRACE).await;
                } => tracing::warn!("closing connections still open {CONNECTION_GRACE:?} after the drain"),
            }
            tracing::info!("service stopped");
            Ok(())
        });
        Ok(Server { addr, state, task })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Metrics as served on `/metrics` (for tests and embedding).
    pub fn metrics_text(&self) -> String {
        self.state.metrics.render(self.state.gauges())
    }

    /// Waits until the service has shut down.
    pub async fn wait(self) -> Result<(), ServiceError> {
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(ServiceError::Task(e.to_string())),
        }
    }
}

/// What one connection may cost: the time its headers may take, and how many connections
/// may be open at once, in all and per peer.
#[derive(Clone, Copy)]
struct ConnectionLimits {
    header_read_timeout: Duration,
    max_connections: usize,
    max_connections_per_peer: usize,
}

impl ConnectionLimits {
    fn of(cfg: &ServiceConfig) -> Self {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs_f64(cfg.header_read_timeout_s),
            max_connections: cfg.max_connections,
            max_connections_per_peer: cfg.max_connections_per_peer,
        }
    }
}

/// Accepts connections until `shutdown` completes, then asks each open one to close after
/// its current request and returns once all have. Hyper's HTTP/1 server with a timer closes
/// a connection whose headers have not all arrived `header_read_timeout` after it opened (or
/// after the previous answer): a slow-loris client holds a connection for that long at most,
/// and never a challenge slot (the handler only runs once the headers are in). At
/// `max_connections`, or a peer's `max_connections_per_peer`, the oldest idle connection
/// is closed for the new one; a new one is refused only when all are working
/// ([`crate::connections`]).
async fn accept_loop(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    // Each connection task holds a receiver; `closed()` on the sender completes once all of
    // them are gone.
    let (close_tx, close_rx) = tokio::sync::watch::channel(());
    let open = Connections::new(limits.max_connections, limits.max_connections_per_peer);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!("accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Refusals are logged by `Connections`, a line per few seconds at most.
        let Ok(ticket) = open.admit(peer.ip()) else {
            drop(stream);
            continue;
        };
        let router = hyper_util::service::TowerToHyperService::new(app.clone());
        let busy = ticket.busy.clone();
        // A request in progress makes the connection busy: not closed for a newer one.
        let service = hyper::service::service_fn(move |req| {
            let working = Busy::enter(&busy);
            let answer = hyper::service::Service::call(&router, req);
            async move {
                let r = answer.await;
                drop(working);
                r
            }
        });
        let mut close = close_rx.clone();
        tokio::spawn(async move {
            let evicted = ticket.evicted.clone();
            let _ticket = ticket;
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let result = tokio::select! {
                r = conn.as_mut() => r,
                // Idle, and its place given to a newer connection: closed at once.
                () = evicted.notified() => Ok(()),
                _ = close.changed() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                // A header timeout, a reset, a malformed request: the client's problem.
                tracing::debug!("connection from {peer}: {e}");
            }
        });
    }
    drop(listener);
    drop(close_rx);
    let _ = close_tx.send(());
    close_tx.closed().await;
}

/// Stops taking challenges and waits for the running ones.
async fn drain(state: &AppState) {
    state.draining.store(true, Ordering::SeqCst);
    let n = state.in_flight();
    let limit = Duration::from_secs_f64(state.cfg.drain_timeout_s);
    tracing::info!(
        "shutting down: refusing new challenges; waiting for {n} running (at most {:.0} s)",
        limit.as_secs_f64()
    );
    let deadline = Instant::now() + limit;
    let mut asked_to_stop = false;
    // Polling is simpler than wiring a notification through every exit path of a challenge,
    // and 20 ms is nothing next to a challenge's duration.
    while state.in_flight() > 0 {
        if !asked_to_stop && Instant::now() >= deadline {
            tracing::warn!(
                "drain timeout: asking {} running challenge(s) to stop early",
                state.in_flight()
            );
            state.cancel_all();
            asked_to_stop = true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tracing::info!("no challenge running; stopping");
}

fn log_startup(cfg: &ServiceConfig, addr: SocketAddr, temp_dir: &Path) {
    tracing::info!(
        "pitchside service listening on http://{addr} (POST /soccer/challenge, GET /availability, /health, /metrics); \
         up to {} challenge(s) at once; downloads to {}",
        cfg.max_concurrent_challenges,
        temp_dir.display()
    );
    match cfg.auth {
        AuthMode::None => tracing::warn!(
            "AUTHENTICATION IS OFF (service.auth: none): anyone who can reach {addr} can make this \
             machine download and analyse any URL. Use this for local testing only."
        ),
        AuthMode::Signed => {
            tracing::info!(
                "signed requests only: miner hotkey {}, {} allowed validator(s), nonce window ±{} s",
                cfg.miner_hotkey.as_deref().unwrap_or("(not set)"),
                cfg.validators.len(),
                cfg.nonce_window_s
            );
            if let Some(why) = config::refusal_reason(cfg) {
                tracing::warn!("{why}; GET /availability answers false");
            }
        }
    }
    if cfg.download.allow_private_addresses {
        tracing::warn!(
            "service.download.allow_private_addresses is true: challenge URLs may point at this \
             machine or its network"
        );
    }
}

/// Runs the service on `listen` until `shutdown` completes, then drains and returns.
pub async fn serve(
    cfg: ServiceConfig,
    listen: SocketAddr,
    analyzer: Arc<dyn Analyzer>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServiceError> {
    Server::start(cfg, listen, analyzer, shutdown)
        .await?
        .wait()
        .await
}

/// Blocking entry point for `pitchside serve`: builds a tokio runtime, serves on
/// `listen_override` or `cfg.listen`, and returns after SIGTERM/ctrl-c once running challenges
/// have finished.
pub fn run(
    cfg: ServiceConfig,
    listen_override: Option<SocketAddr>,
    analyzer: Arc<dyn Analyzer>,
) -> Result<(), ServiceError> {
    // The runtime only moves bytes; the analysis runs on blocking threads.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("pitchside-service")
        .enable_all()
        .build()
        .map_err(ServiceError::Runtime)?;
    let listen = listen_override.unwrap_or(cfg.listen);
    let result = rt.block_on(async {
        // Listen for signals before binding, so that an early SIGTERM is not lost.
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            shutdown_signal().await;
            let _ = tx.send(());
        });
        tokio::task::yield_now().await;
        serve(cfg, listen, analyzer, async {
            let _ = rx.await;
        })
        .await
    });
    // An analyzer that ignores its cancel flag must not hold the process forever.
    rt.shutdown_timeout(Duration::from_secs(5));
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use pitchside_engine::response::{FrameResult, ObjectResult};

    #[test]
    fn challenge_ids_are_non_empty_strings_or_numbers_kept_as_sent() {
        assert_eq!(challenge_id(&json!("c-1")), Some(ChallengeId::from("c-1")));
        assert_eq!(
            challenge_id(&json!(42)),
            Some(ChallengeId::Number(42.into()))
        );
        for bad in [json!(""), json!(null), json!(true), json!(["x"])] {
            assert_eq!(challenge_id(&bad), None, "{bad}");
        }
    }

    /// The bytes on the wire: keys sorted at every level, the id as the validator sent it.
    #[test]
    fn the_answer_is_serialised_with_sorted_keys() {
        let answer = Answer {
            challenge_id: ChallengeId::Number(7.into()),
            frames: vec![FrameResult::new(
                0,
                &[[1.5, 2.25]],
                vec![ObjectResult::new(3, [1.0, 2.0, 30.5, 40.0], 2)],
            )],
            processing_time: 0.25,
            partial: true,
            error: Some("cancelled".into()),
        };
        assert_eq!(
            serde_json::to_string(&answer_json(&answer).unwrap()).unwrap(),
            r#"{"challenge_id":7,"error":"cancelled","frames":[{"frame_number":0,"keypoints":[[1.5,2.25]],"objects":[{"bbox":[1.0,2.0,30.5,40.0],"class_id":2,"id":3}]}],"partial":true,"processing_time":0.25}"#
        );
    }
}
