//! `pitchside._pitchside`: the engine as a Python extension module. The pure-Python package
//! around it (`python/pitchside`) gives the public API (`Pipeline`, `Frame`, `score`); this
//! module does the work with the GIL released, and turns every engine error into one of
//! the exceptions of `pitchside._errors` with the message the CLI prints.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use numpy::{
    PyArray1, PyArray3, PyArrayDescrMethods, PyArrayMethods, PyReadonlyArray3, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pitchside_engine::admission::{self, AdmissionError, AdmittedVideo};
use pitchside_engine::config::{Deployment, Profile};
use pitchside_engine::device::DeviceRequest;
use pitchside_engine::load::{self, LoadError, Slots};
use pitchside_engine::pipeline::{
    Pipeline as Engine, PipelineError, Processed, RunOptions, Tracking,
};
use pitchside_fetch::{DownloadError, Downloaded, Downloader, Source, SourceError};
use pitchside_plugin::{FrameRef, PixelFormat};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyTuple, PyType};

/// The exception class an error is raised as (the classes are `pitchside._errors`').
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Config,
    Device,
    Video,
    /// A video URL that could not be fetched (a `VideoError` too).
    Download,
    Model,
    Input,
    Score,
    Busy,
    /// A run that ended early (the base class `pitchside.Error`).
    Run,
}

impl Kind {
    fn class_name(self) -> &'static str {
        match self {
            Kind::Config => "ConfigError",
            Kind::Device => "DeviceError",
            Kind::Video => "VideoError",
            Kind::Download => "DownloadError",
            Kind::Model => "ModelError",
            Kind::Input => "InputError",
            Kind::Score => "ScoreError",
            Kind::Busy => "BusyError",
            Kind::Run => "Error",
        }
    }
}

/// An error to raise in Python: its class and message. Plain data (`Send`), so it can be
/// made where the GIL is released and raised after.
#[derive(Debug)]
struct Failure {
    kind: Kind,
    message: String,
}

impl Failure {
    fn new(kind: Kind, message: impl Into<String>) -> Failure {
        Failure {
            kind,
            message: message.into(),
        }
    }
}

impl From<Failure> for PyErr {
    fn from(f: Failure) -> PyErr {
        Python::attach(|py| {
            let class = py
                .import("pitchside._errors")
                .and_then(|m| m.getattr(f.kind.class_name()))
                .and_then(|c| Ok(c.cast_into::<PyType>()?));
            match class {
                Ok(class) => PyErr::from_type(class, f.message),
                // The native module imported without its package: still an exception.
                Err(_) => PyRuntimeError::new_err(f.message),
            }
        })
    }
}

/// An error and its causes, each said once, as the CLI prints them (`src/main.rs`).
fn report(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = String::new();
    let mut cause = Some(e);
    while let Some(c) = cause {
        let m = c.to_string();
        if !s.contains(&m) {
            if !s.is_empty() {
                s.push_str(": ");
            }
            s.push_str(&m);
        }
        cause = c.source();
    }
    s
}

fn pipeline_kind(e: &PipelineError) -> Kind {
    match e {
        PipelineError::Video(_) => Kind::Video,
        _ => Kind::Model,
    }
}

impl From<LoadError> for Failure {
    fn from(e: LoadError) -> Failure {
        let kind = match &e {
            LoadError::Config(_) | LoadError::WorkingDirectory(_) => Kind::Config,
            LoadError::Device(_) => Kind::Device,
            LoadError::Admission(_) => Kind::Video,
            LoadError::Run(p) => pipeline_kind(p),
            _ => Kind::Model,
        };
        Failure::new(kind, report(&e))
    }
}

impl From<PipelineError> for Failure {
    fn from(e: PipelineError) -> Failure {
        Failure::new(pipeline_kind(&e), report(&e))
    }
}

impl From<AdmissionError> for Failure {
    fn from(e: AdmissionError) -> Failure {
        Failure::new(Kind::Video, report(&e))
    }
}

impl From<DownloadError> for Failure {
    fn from(e: DownloadError) -> Failure {
        Failure::new(Kind::Download, report(&e))
    }
}

impl From<SourceError> for Failure {
    fn from(e: SourceError) -> Failure {
        Failure::new(Kind::Input, report(&e))
    }
}

/// What a pipeline object owns: the loaded engine, and the tracks `detect` continues.
struct State {
    engine: Engine,
    tracking: Option<Tracking>,
    /// The frame number `detect` gives its next tracked image.
    next_frame: u64,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panic inside the engine (turned into a Python exception) leaves the state usable:
    // the models are unchanged, and a run makes its tracks afresh.
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// A loaded deployment (`pitchside.Pipeline` wraps it).
#[pyclass(module = "pitchside._pitchside", name = "Pipeline", frozen)]
struct PyPipeline {
    state: Arc<Mutex<State>>,
    /// Set while a `frames()` stream holds the engine.
    streaming: Arc<AtomicBool>,
    profile: Profile,
    /// For `run` on a URL: the deployment's `service.download` settings and `temp_dir`.
    deployment: Deployment,
    #[pyo3(get)]
    device: String,
    #[pyo3(get)]
    profile_name: String,
    #[pyo3(get)]
    num_keypoints: usize,
}

impl PyPipeline {
    /// The state, unless a `frames()` stream holds it (waiting would never end on the
    /// thread that holds the stream).
    fn check_free(&self) -> Result<(), Failure> {
        if self.streaming.load(Ordering::SeqCst) {
            return Err(Failure::new(
                Kind::Busy,
                "this pipeline is streaming frames(): iterate the stream to its end or close() \
                 it first (or use a second Pipeline)",
            ));
        }
        Ok(())
    }

    /// The engine's admission, as the CLI's before a run: the video probed once (it opens
    /// and its first frame decodes) and held to every bound of the profile.
    fn admit(&self, video: &Path) -> Result<AdmittedVideo, Failure> {
        Ok(admission::admit(&self.profile, video)?)
    }

    /// Downloads `url` as `pitchside run URL` does (`Downloader::for_local_use`: the
    /// deployment's `service.download` settings and `service.temp_dir`, private addresses
    /// allowed), with the GIL released. Ctrl-C stops it (the unfinished file is removed)
    /// and raises `KeyboardInterrupt`.
    fn download(&self, py: Python<'_>, url: &str) -> PyResult<Downloaded> {
        let downloader =
            py.detach(|| Downloader::for_local_use(&self.deployment).map_err(Failure::from))?;
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            let fetch = std::thread::Builder::new()
                .name("pitchside-download".into())
                .spawn_scoped(s, || downloader.fetch_blocking(url, &stop))
                .map_err(|e| Failure::new(Kind::Run, format!("cannot start a thread: {e}")))?;
            // Python sees a signal only on this thread, between its own calls: looked at
            // every 50 ms while the download runs.
            let mut interrupted = None;
            while !fetch.is_finished() {
                py.detach(|| std::thread::sleep(Duration::from_millis(50)));
                if let Err(e) = py.check_signals() {
                    stop.store(true, Ordering::SeqCst);
                    interrupted = Some(e);
                    break;
                }
            }
            let result = py
                .detach(|| fetch.join())
                .map_err(|_| Failure::new(Kind::Run, format!("{url}: the download panicked")))?;
            match (result, interrupted) {
                // An unfinished download dropped here removes its file.
                (_, Some(e)) => Err(e),
                (Ok(Some(d)), None) => Ok(d),
                (Ok(None), None) => {
                    Err(Failure::new(Kind::Run, format!("{url}: the download was stopped")).into())
                }
                (Err(e), None) => Err(Failure::from(e).into()),
            }
        })
    }
}

#[pymethods]
impl PyPipeline {
    #[new]
    #[pyo3(signature = (config=None, device=None))]
    fn new(py: Python<'_>, config: Option<PathBuf>, device: Option<String>) -> PyResult<Self> {
        let device = device
            .map(|d| {
                d.parse::<DeviceRequest>()
                    .map_err(|m| Failure::new(Kind::Input, format!("device {m}")))
            })
            .transpose()?;
        let (engine, deployment) = py.detach(|| -> Result<(Engine, Deployment), Failure> {
            let resolved = load::resolve(config.as_deref(), device)?;
            let deployment = resolved.deployment.clone();
            let engine = resolved.load(Slots::One)?.into_pipeline().ok_or_else(|| {
                Failure::new(Kind::Model, "one slot loaded more than one pipeline")
            })?;
            Ok((engine, deployment))
        })?;
        let effective = engine.effective();
        Ok(PyPipeline {
            deployment,
            profile: effective.profile.clone(),
            device: engine.device().to_string(),
            profile_name: effective.profile_name.to_string(),
            num_keypoints: engine.num_keypoints(),
            state: Arc::new(Mutex::new(State {
                engine,
                tracking: None,
                next_frame: 0,
            })),
            streaming: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Frames per detector call.
    #[getter]
    fn batch_size(&self) -> u32 {
        self.profile.batch_size.max(1)
    }

    /// Source frames per processed frame.
    #[getter]
    fn frame_stride(&self) -> u32 {
        self.profile.frame_stride.max(1)
    }

    /// Runs a video file or http(s) URL; the response as `pitchside run` writes it (JSON
    /// text).
    /// `progress(done, total)` is called after each batch. Ctrl-C (SIGINT) stops the run at
    /// its next batch and raises `KeyboardInterrupt`.
    #[pyo3(signature = (video, progress=None, challenge_id="local".to_owned()))]
    fn run_json(
        &self,
        py: Python<'_>,
        video: String,
        progress: Option<Py<PyAny>>,
        challenge_id: String,
    ) -> PyResult<String> {
        self.check_free()?;
        // A file or an http(s) URL, as `pitchside run` tells them apart. A downloaded video
        // is kept until the end of the run: dropping it deletes the file.
        let (download, url) = match Source::parse(&video).map_err(Failure::from)? {
            Source::File(_) => (None, None),
            Source::Url(url) => (Some(self.download(py, &url)?), Some(url)),
        };
        let video = match &download {
            Some(d) => d.file.path().to_path_buf(),
            None => PathBuf::from(&video),
        };
        let cancel = AtomicBool::new(false);
        // The first Python exception raised in the callback (KeyboardInterrupt, or the
        // progress function's own): the run stops, and it is raised.
        let raised: Mutex<Option<PyErr>> = Mutex::new(None);
        let on_progress = |done: u64, total: u64| {
            Python::attach(|py| {
                let r = py.check_signals().and_then(|()| match &progress {
                    Some(p) => p.call1(py, (done, total)).map(drop),
                    None => Ok(()),
                });
                if let Err(e) = r {
                    cancel.store(true, Ordering::SeqCst);
                    raised
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get_or_insert(e);
                }
            })
        };
        let state = &self.state;
        let result = py.detach(|| -> Result<String, Failure> {
            let admitted = match &url {
                None => self.admit(&video)?,
                // As `run` and `serve` say it: the URL, not the temporary file's name.
                Some(url) => admission::admit(&self.profile, &video).map_err(|e| {
                    Failure::new(Kind::Video, format!("{url}: {}", e.without_path()))
                })?,
            };
            let opts = RunOptions {
                challenge_id,
                cancel: Some(&cancel),
                progress: Some(&on_progress),
                ..Default::default()
            };
            let (response, _) = lock(state).engine.run(&admitted, &opts)?;
            serde_json::to_string(&response)
                .map_err(|e| Failure::new(Kind::Run, format!("serialising the response: {e}")))
        });
        drop(download);
        if let Some(e) = raised.into_inner().unwrap_or_else(|p| p.into_inner()) {
            return Err(e);
        }
        Ok(result?)
    }

    /// Streams a video's processed frames as they are tracked (a bounded queue: the engine
    /// waits for a slow reader). Closing the stream (or dropping it) stops the run and
    /// joins its threads.
    fn frames(&self, py: Python<'_>, video: PathBuf) -> PyResult<FrameStream> {
        self.check_free()?;
        let admitted = py.detach(|| self.admit(&video))?;
        if self.streaming.swap(true, Ordering::SeqCst) {
            return Err(self.check_free().unwrap_err().into());
        }
        // Two batches in flight at most: the decoder's prefetch bounds the frames, this the
        // results.
        let (tx, rx) = sync_channel(2 * self.batch_size() as usize);
        let cancel = Arc::new(AtomicBool::new(false));
        let worker = {
            let (state, cancel) = (Arc::clone(&self.state), Arc::clone(&cancel));
            std::thread::Builder::new()
                .name("pitchside-frames".into())
                .spawn(move || stream(&state, &admitted, &tx, &cancel))
        };
        let worker = match worker {
            Ok(h) => h,
            Err(e) => {
                self.streaming.store(false, Ordering::SeqCst);
                return Err(Failure::new(Kind::Run, format!("cannot start a thread: {e}")).into());
            }
        };
        Ok(FrameStream {
            inner: Mutex::new(StreamInner {
                events: Some(rx),
                worker: Some(worker),
                cancel,
                streaming: Arc::clone(&self.streaming),
            }),
        })
    }

    /// Detects (and, with `track`, tracks, continuing the tracks of earlier calls) on
    /// BGR uint8 images of shape (height, width, 3); one result tuple per image.
    #[pyo3(signature = (images, track=true, fps=30.0))]
    fn detect<'py>(
        &self,
        py: Python<'py>,
        images: Bound<'py, PyAny>,
        track: bool,
        fps: f64,
    ) -> PyResult<Vec<Bound<'py, PyTuple>>> {
        self.check_free()?;
        if let Ok(one) = images.cast::<PyUntypedArray>()
            && one.ndim() == 3
        {
            return Err(Failure::new(
                Kind::Input,
                format!(
                    "images: expected a list of (height, width, 3) uint8 arrays, got one array \
                     of shape {:?}: pass [image]",
                    one.shape()
                ),
            )
            .into());
        }
        let items = images.try_iter().map_err(|_| {
            Failure::new(
                Kind::Input,
                format!(
                    "images: expected a list of (height, width, 3) uint8 arrays, got {}",
                    type_name(&images)
                ),
            )
        })?;
        let mut pixels = Vec::new();
        for (i, item) in items.enumerate() {
            pixels.push(Pixels::of(i, &item?)?);
        }
        let sizes: Vec<(u32, u32)> = pixels.iter().map(|p| (p.width, p.height)).collect();
        let data: Vec<&[u8]> = pixels.iter().map(Pixels::bytes).collect();
        if !(fps.is_finite() && fps > 0.0) {
            return Err(Failure::new(Kind::Input, format!("fps {fps}: must be above 0")).into());
        }
        let state = &self.state;
        let processed = py.detach(|| -> Result<Vec<Processed>, Failure> {
            let mut st = lock(state);
            let first = if track { st.next_frame } else { 0 };
            let frames: Vec<FrameRef<'_>> = data
                .iter()
                .zip(&sizes)
                .zip(first..)
                .map(|((data, &(width, height)), frame_number)| FrameRef {
                    data,
                    width,
                    height,
                    row_stride: width as usize * 3,
                    format: PixelFormat::Bgr8,
                    frame_number,
                })
                .collect();
            let st = &mut *st;
            if !track {
                return Ok(st.engine.detect_frames(&frames, None)?);
            }
            let tracking = match &mut st.tracking {
                Some(t) => t,
                None => st.tracking.insert(st.engine.tracking(fps)?),
            };
            let out = st.engine.detect_frames(&frames, Some(tracking))?;
            st.next_frame += frames.len() as u64;
            Ok(out)
        })?;
        processed.iter().map(|p| frame_tuple(py, p)).collect()
    }

    /// Forgets `detect`'s tracks: the next call starts new ones, ids from 1.
    fn reset_tracking(&self, py: Python<'_>) -> PyResult<()> {
        self.check_free()?;
        py.detach(|| {
            let mut st = lock(&self.state);
            st.tracking = None;
            st.next_frame = 0;
        });
        Ok(())
    }
}

fn type_name(o: &Bound<'_, PyAny>) -> String {
    o.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "an object".into())
}

/// One image's pixels: the array's own memory when it is C-contiguous, else a copy.
struct Pixels<'py> {
    width: u32,
    height: u32,
    data: PixelData<'py>,
}

enum PixelData<'py> {
    Borrowed(PyReadonlyArray3<'py, u8>),
    Owned(Vec<u8>),
}

impl<'py> Pixels<'py> {
    fn of(i: usize, item: &Bound<'py, PyAny>) -> Result<Pixels<'py>, Failure> {
        let bad = |m: String| Failure::new(Kind::Input, format!("image {i}: {m}"));
        let array = item.cast::<PyUntypedArray>().map_err(|_| {
            bad(format!(
                "expected a numpy array (height, width, 3) of uint8 BGR, got {}",
                type_name(item)
            ))
        })?;
        let dtype = array.dtype();
        if !dtype.is_equiv_to(&numpy::dtype::<u8>(item.py())) {
            return Err(bad(format!(
                "dtype {dtype}, expected uint8 (BGR, as OpenCV gives it)"
            )));
        }
        let shape = array.shape();
        if shape.len() != 3 || shape[2] != 3 || shape[0] == 0 || shape[1] == 0 {
            return Err(bad(format!(
                "shape {shape:?}, expected (height, width, 3) with height and width above 0"
            )));
        }
        let (height, width) = match (u32::try_from(shape[0]), u32::try_from(shape[1])) {
            (Ok(h), Ok(w)) => (h, w),
            _ => return Err(bad(format!("shape {shape:?} is too large"))),
        };
        let typed = array
            .cast::<PyArray3<u8>>()
            .map_err(|e| bad(e.to_string()))?;
        let ro = typed
            .try_readonly()
            .map_err(|e| bad(format!("cannot read the array: {e}")))?;
        let data = if ro.as_slice().is_ok() {
            PixelData::Borrowed(ro)
        } else {
            // A view (a crop, a channel flip): copied in row order.
            PixelData::Owned(ro.as_array().iter().copied().collect())
        };
        Ok(Pixels {
            width,
            height,
            data,
        })
    }

    fn bytes(&self) -> &[u8] {
        match &self.data {
            PixelData::Borrowed(a) => a.as_slice().unwrap_or(&[]),
            PixelData::Owned(v) => v,
        }
    }
}

/// A processed frame for Python: (frame_number, boxes N×4 float32, scores N float32,
/// class_ids N int64, track_ids N int64, keypoints K×2 float32), objects in the
/// response's order.
fn frame_tuple<'py>(py: Python<'py>, p: &Processed) -> PyResult<Bound<'py, PyTuple>> {
    let objects = p.ordered_objects();
    let n = objects.len();
    let boxes: Vec<f32> = objects.iter().flat_map(|o| o.bbox).collect();
    let boxes = PyArray1::from_vec(py, boxes).reshape([n, 4])?;
    let scores = PyArray1::from_vec(py, objects.iter().map(|o| o.score).collect());
    let class_ids = PyArray1::from_vec(py, objects.iter().map(|o| o.class_id as i64).collect());
    let track_ids = PyArray1::from_vec(py, objects.iter().map(|o| o.id as i64).collect());
    let keypoints: Vec<f32> = p.keypoints.iter().flatten().copied().collect();
    let keypoints = PyArray1::from_vec(py, keypoints).reshape([p.keypoints.len(), 2])?;
    (
        p.frame_number,
        boxes,
        scores,
        class_ids,
        track_ids,
        keypoints,
    )
        .into_pyobject(py)
}

/// What the streaming thread sends.
enum Event {
    Frame(Box<Processed>),
    /// The run ended; `Some` when it ended early (the response's `error`).
    End(Option<String>),
    /// The run could not start.
    Failed(Failure),
}

/// The streaming thread: runs the video, sending each processed frame as it is tracked.
fn stream(
    state: &Mutex<State>,
    video: &AdmittedVideo,
    events: &SyncSender<Event>,
    cancel: &AtomicBool,
) {
    let on_frame = |p: &Processed| {
        // The reader closed the stream: stop at the end of this batch.
        if events.send(Event::Frame(Box::new(p.clone()))).is_err() {
            cancel.store(true, Ordering::SeqCst);
        }
    };
    let opts = RunOptions {
        cancel: Some(cancel),
        on_frame: Some(&on_frame),
        ..Default::default()
    };
    let result = lock(state).engine.run(video, &opts);
    let end = match result {
        Ok((response, _)) if cancel.load(Ordering::SeqCst) => {
            drop(response);
            Event::End(None)
        }
        Ok((response, _)) => Event::End(response.error),
        Err(e) => Event::Failed(e.into()),
    };
    let _ = events.send(end);
}

/// A running `frames()` stream.
#[pyclass(module = "pitchside._pitchside", frozen)]
struct FrameStream {
    inner: Mutex<StreamInner>,
}

struct StreamInner {
    events: Option<Receiver<Event>>,
    worker: Option<JoinHandle<()>>,
    cancel: Arc<AtomicBool>,
    streaming: Arc<AtomicBool>,
}

impl StreamInner {
    /// Stops the run, disconnects the queue (a send the engine is blocked in fails at once),
    /// joins the thread (its decoder threads end with the run) and frees the pipeline.
    fn finish(&mut self) {
        self.cancel.store(true, Ordering::SeqCst);
        self.events = None;
        if let Some(h) = self.worker.take() {
            let _ = h.join();
            self.streaming.store(false, Ordering::SeqCst);
        }
    }
}

impl Drop for FrameStream {
    fn drop(&mut self) {
        let inner = self.inner.get_mut().unwrap_or_else(|p| p.into_inner());
        // Joined with the GIL released: the engine may be waiting for a run of another
        // thread whose progress callback needs it.
        Python::attach(|py| py.detach(|| inner.finish()));
    }
}

impl FrameStream {
    fn inner(&self) -> MutexGuard<'_, StreamInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[pymethods]
impl FrameStream {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyTuple>>> {
        loop {
            // Waiting with the GIL released, looking at Ctrl-C ten times a second.
            let event = py.detach(|| match &self.inner().events {
                Some(rx) => rx.recv_timeout(Duration::from_millis(100)),
                None => Err(RecvTimeoutError::Disconnected),
            });
            match event {
                Ok(Event::Frame(p)) => return Ok(Some(frame_tuple(py, &p)?)),
                Ok(Event::End(error)) => {
                    py.detach(|| self.inner().finish());
                    return match error {
                        Some(m) => Err(Failure::new(Kind::Run, m).into()),
                        None => Ok(None),
                    };
                }
                Ok(Event::Failed(f)) => {
                    py.detach(|| self.inner().finish());
                    return Err(f.into());
                }
                Err(RecvTimeoutError::Timeout) => py.check_signals()?,
                Err(RecvTimeoutError::Disconnected) => {
                    py.detach(|| self.inner().finish());
                    return Ok(None);
                }
            }
        }
    }

    /// Stops the run and frees its decoder and threads; the pipeline is free again.
    fn close(&self, py: Python<'_>) {
        py.detach(|| self.inner().finish());
    }
}

/// The keypoint score of an answer for a video, as `pitchside score --json` prints it
/// (JSON text); the answer is JSON text, or a file (read as the CLI reads it).
#[pyfunction]
#[pyo3(signature = (video, answer=None, answer_path=None))]
fn score_json(
    py: Python<'_>,
    video: PathBuf,
    answer: Option<Vec<u8>>,
    answer_path: Option<PathBuf>,
) -> PyResult<String> {
    let result = py.detach(|| -> Result<String, Failure> {
        let score = match (answer, answer_path) {
            (Some(json), None) => {
                let evidence = pitchside_score::VideoEvidence::from_video(&video)?;
                pitchside_score::score_answer_json(&evidence, &json, None)?
            }
            (None, Some(path)) => pitchside_score::score_answer(&video, &path)?,
            _ => {
                return Err(Failure::new(
                    Kind::Input,
                    "give the answer as JSON text or as a file, one of the two",
                ));
            }
        };
        serde_json::to_string_pretty(&score)
            .map_err(|e| Failure::new(Kind::Score, format!("serialising the score: {e}")))
    });
    Ok(result?)
}

impl From<pitchside_score::ScoreError> for Failure {
    fn from(e: pitchside_score::ScoreError) -> Failure {
        let kind = match e {
            pitchside_score::ScoreError::Video(_) => Kind::Video,
            _ => Kind::Score,
        };
        Failure::new(kind, report(&e))
    }
}

/// The pitch analytics: their JSON text (what `pitchside analyze` writes), the note said
/// when they are empty (no frame with a homography), and the two CSV tables (objects,
/// tracks) when asked for.
type Analysed = (String, Option<String>, Option<(String, String)>);

/// `pitchside analyze` (`commands::analyze::compute`): the video's size and rate from its
/// container, the answer analysed with the video's pixels (the teams).
fn analytics_of(video: &Path, answer: &[u8], csv: bool) -> Result<Analysed, Failure> {
    use pitchside_score::analytics::{Shirts, VideoInfo, analyze_answer};
    let info = VideoInfo::probe(video)?;
    let a = analyze_answer(answer, info, Shirts::Video(video))?;
    let json = serde_json::to_string(&a)
        .map_err(|e| Failure::new(Kind::Score, format!("serialising the analytics: {e}")))?;
    let tables = csv.then(|| (a.objects_csv(), a.tracks_csv()));
    Ok((json, a.note, tables))
}

/// The pitch analytics of an answer for a video, as `pitchside analyze` writes them; the
/// answer is JSON text, or a file (read first, as the CLI reads it).
#[pyfunction]
#[pyo3(signature = (video, answer=None, answer_path=None, csv=false))]
fn analyze_json(
    py: Python<'_>,
    video: PathBuf,
    answer: Option<Vec<u8>>,
    answer_path: Option<PathBuf>,
    csv: bool,
) -> PyResult<Analysed> {
    let result = py.detach(|| -> Result<Analysed, Failure> {
        let json = match (answer, answer_path) {
            (Some(json), None) => json,
            // The CLI's message (`reading PATH: why`).
            (None, Some(path)) => std::fs::read(&path).map_err(|e| {
                Failure::new(Kind::Score, format!("reading {}: {e}", path.display()))
            })?,
            _ => {
                return Err(Failure::new(
                    Kind::Input,
                    "give the answer as JSON text or as a file, one of the two",
                ));
            }
        };
        analytics_of(&video, &json, csv)
    });
    Ok(result?)
}

/// The score crate's synthetic test clip and its answers, written into `dir` as its
/// `render_synthetic` example writes them (`synthetic.mkv`, `<answer>.json`); the paths
/// written. For the package's tests (`python/tests`), which compare `analyze` with the CLI
/// on a clip with a pitch in view: the example itself would need a build of its own.
#[pyfunction]
fn _render_synthetic(py: Python<'_>, dir: PathBuf) -> PyResult<Vec<PathBuf>> {
    let result = py.detach(|| -> Result<Vec<PathBuf>, Failure> {
        let io = |p: &Path, e: std::io::Error| {
            Failure::new(Kind::Run, format!("writing {}: {e}", p.display()))
        };
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        let video = dir.join("synthetic.mkv");
        let truth = pitchside_score::synthetic::render(&video)?;
        let mut written = vec![video];
        for (name, answer) in pitchside_score::synthetic::answers(&truth) {
            let path = dir.join(format!("{name}.json"));
            std::fs::write(&path, answer.to_string()).map_err(|e| io(&path, e))?;
            written.push(path);
        }
        Ok(written)
    });
    Ok(result?)
}

#[pymodule]
fn _pitchside(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyPipeline>()?;
    m.add_class::<FrameStream>()?;
    m.add_function(wrap_pyfunction!(score_json, m)?)?;
    m.add_function(wrap_pyfunction!(analyze_json, m)?)?;
    m.add_function(wrap_pyfunction!(_render_synthetic, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
