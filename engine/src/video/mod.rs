//! Video decoding on FFmpeg (libavformat, libavcodec, libswscale), on threads of its own,
//! feeding a bounded queue.
//!
//! - One decoder with frame threads (`threads`, 0 = all cores), or, for long inputs whose
//!   demuxer index has enough keyframes, **segment-parallel** decoding: the demuxer cuts the
//!   packets at keyframes into segments, one single-threaded decoder per worker thread
//!   decodes a segment at a time, and the segments' frames are handed on strictly in source
//!   order ([`parallel`]). A segment that decodes to fewer frames than it has packets (a
//!   corrupt one) ends the result at its last good frame: never a gap, never a reordering.
//! - Frame stride keeps source frame numbers: stride 2 yields frames 0, 2, 4, …; skipped
//!   frames are decoded (later frames need them) but never converted or copied.
//! - Each yielded frame is converted once per requested [`Output`]: full-size BGR exactly as
//!   OpenCV's FFmpeg backend converts it, or scaled straight from the decoder's YUV to a
//!   smaller BGR size in one swscale pass (what a detector's letterbox would resize to).
//! - With `hardware`, NVDEC (FFmpeg's CUDA hardware device) when FFmpeg and the driver offer
//!   it; software decoding otherwise, the choice logged once.

mod av;
mod parallel;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvError, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use av::Acceleration;

use crate::media::Image;

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum VideoError {
    #[error("{path}: no such file")]
    NotFound { path: PathBuf },
    #[error("{path} is a directory, not a video file")]
    IsDirectory { path: PathBuf },
    #[error("{path} is {kind}, not a regular file: give a video file")]
    NotAFile { path: PathBuf, kind: &'static str },
    #[error("{path}: not a video FFmpeg can open ({detail})")]
    NotAVideo { path: PathBuf, detail: String },
    #[error("{path}: the video has no decodable frame")]
    NoFrames { path: PathBuf },
}

/// What the container says about a video before decoding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VideoInfo {
    pub width: u32,
    pub height: u32,
    pub fps: f64,
    /// The container's frame count (may be wrong or 0 for some formats).
    pub frame_count: u64,
}

/// A size and form a yielded frame is converted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Output {
    /// Packed BGR at the video's size, the pixels OpenCV's `VideoCapture` gives.
    Full,
    /// Packed BGR at `width`×`height`, scaled (area-averaged) from the decoder's YUV in the
    /// same pass as the colour conversion.
    Scaled { width: u32, height: u32 },
}

/// A decoded frame that the pipeline will process.
#[derive(Debug)]
pub struct DecodedFrame {
    pub frame_number: u64,
    /// One image per requested [`Output`], in the order asked for.
    pub images: Vec<Image>,
}

/// Messages from the decoder thread.
#[derive(Debug)]
pub enum DecoderEvent {
    Frame(DecodedFrame),
    /// Decoding finished: how many source frames were read (decoded, converted or not), and
    /// the problem that stopped it early, if any. `decode_time` is the decoding threads'
    /// busy time, summed over threads.
    End {
        frames_read: u64,
        error: Option<String>,
        decode_time: Duration,
    },
}

/// Whether long inputs are cut into segments decoded in parallel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Segmenting {
    /// When decoding in software with 2 or more threads, the codec's keyframes are closed
    /// (H.264, MPEG-4 Part 2, MJPEG, VP8, VP9) and the demuxer's index has at least two
    /// keyframes per thread.
    #[default]
    Auto,
    /// One decoder with frame threads.
    Never,
}

/// How to decode.
#[derive(Debug, Clone)]
pub struct DecodeOptions {
    /// Yield every `stride`-th source frame (1 = all).
    pub stride: u32,
    /// Frames queued ahead of the consumer.
    pub prefetch: usize,
    /// Read at most this many source frames (benchmarks on a prefix).
    pub max_frames: Option<u64>,
    /// Decoding threads; 0 = all cores.
    pub threads: u32,
    /// Try NVDEC first.
    pub hardware: bool,
    pub segmenting: Segmenting,
    /// Stop (with the reason) at the first decoded frame with more pixels than this.
    pub max_frame_pixels: u64,
}

impl DecodeOptions {
    pub fn new(stride: u32, prefetch: usize) -> DecodeOptions {
        DecodeOptions {
            stride,
            prefetch,
            max_frames: None,
            threads: 0,
            hardware: false,
            segmenting: Segmenting::Auto,
            max_frame_pixels: u64::MAX,
        }
    }

    fn thread_count(&self) -> usize {
        match self.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n as usize,
        }
    }
}

fn check_path(path: &Path) -> Result<(), VideoError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(_) => {
            return Err(VideoError::NotFound {
                path: path.to_path_buf(),
            });
        }
    };
    if meta.is_dir() {
        return Err(VideoError::IsDirectory {
            path: path.to_path_buf(),
        });
    }
    if !meta.is_file() {
        // A FIFO would block the probe until a writer comes; a device may never end.
        return Err(VideoError::NotAFile {
            path: path.to_path_buf(),
            kind: crate::files::kind_of(&meta),
        });
    }
    Ok(())
}

/// Opens a video as the decoder will (same demuxer, same decoder) and decodes its first
/// frame: what the miner service checks a download with before it queues the analysis.
pub fn probe(path: &Path) -> Result<VideoInfo, VideoError> {
    open_at_first_frame(path, false).map(|(info, _)| info)
}

/// Opens `path`, reads the container's geometry and decodes frame 0, so that "no decodable
/// frame" is an error, not an empty result. Also says how the decoder would decode (NVDEC
/// when `hardware` is asked for and present).
pub fn open_at_first_frame(
    path: &Path,
    hardware: bool,
) -> Result<(VideoInfo, Acceleration), VideoError> {
    check_path(path)?;
    let mut input = av::open_input(path)?;
    let no_frames = || VideoError::NoFrames {
        path: path.to_path_buf(),
    };
    if input.info.width == 0 || input.info.height == 0 {
        return Err(no_frames());
    }
    let mut dec = av::FrameDecoder::new(&input.params, 1, hardware).map_err(|detail| {
        VideoError::NotAVideo {
            path: path.to_path_buf(),
            detail,
        }
    })?;
    let acceleration = dec.acceleration.clone();
    let mut packet = ffmpeg_next::Packet::empty();
    let mut reads = ReadErrors::default();
    loop {
        match packet.read(&mut input.input) {
            Ok(()) => {
                reads.ok();
                if packet.stream() != input.stream || packet.size() == 0 {
                    continue;
                }
                // A damaged packet: the decoder skips it, as it would in the run.
                let _ = dec.send(Some(&packet));
            }
            Err(e) if reads.retry(&e) => continue,
            Err(_) => {
                let _ = dec.send(None);
                return match dec.receive() {
                    Ok(Some(_)) => Ok((input.info, acceleration)),
                    _ => Err(no_frames()),
                };
            }
        }
        match dec.receive() {
            Ok(Some(f)) if f.width() > 0 && f.height() > 0 => {
                return Ok((input.info, acceleration));
            }
            Ok(_) => {}
            Err(_) => {}
        }
    }
}

/// Read errors other than the end: a few transient ones (EAGAIN) are retried; a run of
/// them ends the input as the end of file does.
#[derive(Default)]
struct ReadErrors {
    run: u32,
}

impl ReadErrors {
    fn ok(&mut self) {
        self.run = 0;
    }

    fn retry(&mut self, e: &ffmpeg_next::Error) -> bool {
        if matches!(e, ffmpeg_next::Error::Eof) {
            return false;
        }
        self.run += 1;
        matches!(e, ffmpeg_next::Error::Other { errno } if *errno == ffmpeg_next::util::error::EAGAIN)
            && self.run < 1000
    }
}

/// A running decoder.
pub struct Decoder {
    pub info: VideoInfo,
    // Private so that `Drop` can disconnect it before joining the threads.
    events: Receiver<DecoderEvent>,
    stop: Arc<AtomicBool>,
    handles: Vec<JoinHandle<()>>,
    pool: av::Pool,
    acceleration: Acceleration,
    segment_decoders: usize,
    outputs: Vec<Output>,
}

impl Decoder {
    /// Starts decoding `path`, yielding every `stride`-th frame into a queue of `prefetch`.
    /// Fails early (before the thread starts) on a missing file, a non-video, or a video
    /// whose first frame cannot be decoded.
    pub fn start(path: &Path, stride: u32, prefetch: usize) -> Result<Decoder, VideoError> {
        Self::start_limited(path, stride, prefetch, None)
    }

    /// As `start`, reading at most `max_frames` source frames (benchmarks on a prefix).
    pub fn start_limited(
        path: &Path,
        stride: u32,
        prefetch: usize,
        max_frames: Option<u64>,
    ) -> Result<Decoder, VideoError> {
        let opts = DecodeOptions {
            max_frames,
            ..DecodeOptions::new(stride, prefetch)
        };
        Self::start_with(path, &opts, |_| vec![Output::Full])
    }

    /// Starts decoding with `opts`; `outputs` says, from the video's geometry, what each
    /// yielded frame is converted to (none: full-size BGR). Probes `path` first (tests and
    /// benchmarks of the decoder alone; the pipeline runs `AdmittedVideo::decode`).
    pub fn start_with(
        path: &Path,
        opts: &DecodeOptions,
        outputs: impl FnOnce(&VideoInfo) -> Vec<Output>,
    ) -> Result<Decoder, VideoError> {
        let t0 = Instant::now();
        let info = probe(path)?;
        Self::start_probed(path, info, t0.elapsed(), opts, outputs)
    }

    /// Starts decoding a video already probed (`info`): see `AdmittedVideo::decode`,
    /// which is how the pipeline starts its decoder.
    pub(crate) fn start_probed(
        path: &Path,
        info: VideoInfo,
        check_time: Duration,
        opts: &DecodeOptions,
        outputs: impl FnOnce(&VideoInfo) -> Vec<Output>,
    ) -> Result<Decoder, VideoError> {
        let mut outputs = outputs(&info);
        if outputs.is_empty() {
            outputs.push(Output::Full);
        }
        let input = av::open_input(path)?;
        let threads = opts.thread_count();
        let stride = opts.stride.max(1) as u64;
        let limit = opts.max_frames.unwrap_or(u64::MAX).max(1);
        let kept_outputs = outputs.clone();
        let plan = Plan {
            stride,
            limit,
            expected: info.frame_count.min(limit),
            prefetch: opts.prefetch.max(1),
            outputs,
            check_time,
            max_frame_pixels: opts.max_frame_pixels,
        };
        let not_video = |detail: String| VideoError::NotAVideo {
            path: path.to_path_buf(),
            detail,
        };
        // The one-decoder path's decoder, made first when NVDEC is asked for: whether it
        // got NVDEC decides between it and segments (software only).
        let mut dec = if opts.hardware {
            Some(av::FrameDecoder::new(&input.params, threads, true).map_err(not_video)?)
        } else {
            None
        };
        let acceleration = dec
            .as_ref()
            .map_or(Acceleration::Software, |d| d.acceleration.clone());
        let segmented = opts.segmenting == Segmenting::Auto
            && acceleration == Acceleration::Software
            && threads >= 2
            && input.closed_keyframes
            && input.keyframes.len() >= 2 * threads;
        let (tx, rx) = sync_channel(plan.prefetch);
        let stop = Arc::new(AtomicBool::new(false));
        let pool = av::Pool::default();
        let (handles, segment_decoders) = if segmented {
            drop(dec.take());
            let handles = parallel::spawn(input, plan, threads, tx, stop.clone(), pool.clone())
                .map_err(not_video)?;
            (handles, threads)
        } else {
            let dec = match dec {
                Some(d) => d,
                None => av::FrameDecoder::new(&input.params, threads, false).map_err(not_video)?,
            };
            let conv = av::Converter::new(plan.outputs.clone(), pool.clone());
            let stop2 = stop.clone();
            let h = std::thread::Builder::new()
                .name("pitchside-decode".into())
                .spawn(move || sequential(input, dec, conv, plan, tx, stop2))
                .map_err(|e| not_video(format!("cannot start the decoder thread: {e}")))?;
            (vec![h], 1)
        };
        Ok(Decoder {
            info,
            events: rx,
            stop,
            handles,
            pool,
            acceleration,
            segment_decoders,
            outputs: kept_outputs,
        })
    }

    /// The next frame, or the end of decoding; blocks until the thread sends one. An error
    /// means the thread is gone without sending `End` (it panicked).
    pub fn recv(&self) -> Result<DecoderEvent, RecvError> {
        self.events.recv()
    }

    /// Hands a processed frame's buffers back for the next frames to be decoded into.
    pub fn recycle(&self, frame: DecodedFrame) {
        for image in frame.images {
            self.pool.give(image.data);
        }
    }

    /// Asks the decoder to stop early (timeouts, cancellation).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Software or NVDEC.
    pub fn acceleration(&self) -> &Acceleration {
        &self.acceleration
    }

    /// What each yielded frame's images are, in order.
    pub fn outputs(&self) -> &[Output] {
        &self.outputs
    }

    /// Segments decoded at once: 1 for one (frame-threaded) decoder.
    pub fn segment_decoders(&self) -> usize {
        self.segment_decoders
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        self.stop();
        // Disconnect the queue before joining: every send a thread is blocked in, or makes
        // later (its next frame, the `End`), then fails at once and the thread returns.
        // Draining instead is not enough: with a queue of one, the frame the blocked send
        // delivers after the drain fills it again, and the `End` would block forever.
        let (_, disconnected) = sync_channel(0);
        drop(std::mem::replace(&mut self.events, disconnected));
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// What every decoding thread needs to know.
#[derive(Clone)]
struct Plan {
    stride: u64,
    /// Source frames to read at most.
    limit: u64,
    /// The container's frame count (within `limit`): fewer frames read is a truncation.
    expected: u64,
    prefetch: usize,
    outputs: Vec<Output>,
    /// Time spent opening and checking the first frame (counted as decoding).
    check_time: Duration,
    /// The largest decoded frame (pixels) a run goes on after.
    max_frame_pixels: u64,
}

impl Plan {
    /// Why decoded frame `n` ends the run when it is larger than `max_frame_pixels` (a
    /// stream that changes size mid-way): checked on every decoded frame, converted or not.
    fn oversized(&self, frame: &ffmpeg_next::frame::Video, n: u64) -> Option<String> {
        let pixels = frame.width() as u64 * frame.height() as u64;
        (pixels > self.max_frame_pixels).then(|| {
            format!(
                "frame {n} is {}x{} ({pixels} pixels), above the profile's max_frame_pixels, \
                 {}; stopped there",
                frame.width(),
                frame.height(),
                self.max_frame_pixels
            )
        })
    }

    /// The `End` of a run that read `n` frames.
    fn end(
        &self,
        n: u64,
        error: Option<String>,
        stopped: bool,
        decode_time: Duration,
    ) -> DecoderEvent {
        let error = if stopped {
            Some(format!("stopped early after {n} frames"))
        } else {
            error.or_else(|| {
                (self.expected > n).then(|| {
                    format!(
                        "decoding stopped at frame {n} of {} (truncated or corrupt file)",
                        self.expected
                    )
                })
            })
        };
        DecoderEvent::End {
            frames_read: n,
            error,
            decode_time: decode_time + self.check_time,
        }
    }
}

/// Decoder-internal failures that end a run.
enum Flow {
    /// The consumer is gone: return without an `End`.
    Disconnected,
    /// Stop with this error.
    Failed(String),
}

/// Converts frame `n` if the stride wants it and sends it; `Ok(false)` for skipped frames.
fn emit(
    plan: &Plan,
    conv: &mut av::Converter,
    frame: &ffmpeg_next::frame::Video,
    n: u64,
    tx: &SyncSender<DecoderEvent>,
    busy: &mut Duration,
    since: &mut Instant,
) -> Result<(), Flow> {
    if let Some(why) = plan.oversized(frame, n) {
        return Err(Flow::Failed(why));
    }
    if !n.is_multiple_of(plan.stride) {
        return Ok(());
    }
    let images = conv
        .convert(frame)
        .map_err(|e| Flow::Failed(format!("frame {n}: {e}")))?;
    *busy += since.elapsed();
    let sent = tx.send(DecoderEvent::Frame(DecodedFrame {
        frame_number: n,
        images,
    }));
    *since = Instant::now();
    sent.map_err(|_| Flow::Disconnected)
}

/// One decoder over the whole input, frame-threaded.
fn sequential(
    mut input: av::Input,
    mut dec: av::FrameDecoder,
    mut conv: av::Converter,
    plan: Plan,
    tx: SyncSender<DecoderEvent>,
    stop: Arc<AtomicBool>,
) {
    let mut n: u64 = 0;
    let mut busy = Duration::ZERO;
    let mut since = Instant::now();
    let mut packet = ffmpeg_next::Packet::empty();
    let mut reads = ReadErrors::default();
    let mut eof = false;
    let outcome: Result<(), Flow> = 'run: loop {
        if stop.load(Ordering::Relaxed) {
            break Ok(());
        }
        if !eof {
            match packet.read(&mut input.input) {
                Ok(()) => {
                    reads.ok();
                    if packet.stream() != input.stream || packet.size() == 0 {
                        continue;
                    }
                    // A damaged packet is skipped, as OpenCV and the ffmpeg CLI do; the
                    // decoder conceals what it can in the frames after it.
                    let _ = dec.send(Some(&packet));
                }
                Err(e) if reads.retry(&e) => continue,
                Err(_) => {
                    eof = true;
                    let _ = dec.send(None);
                }
            }
        }
        loop {
            match dec.receive() {
                Ok(Some(frame)) => {
                    if let Err(f) = emit(&plan, &mut conv, frame, n, &tx, &mut busy, &mut since) {
                        break 'run Err(f);
                    }
                    n += 1;
                    if n >= plan.limit {
                        break 'run Ok(());
                    }
                }
                Ok(None) if eof => break 'run Ok(()),
                Ok(None) => break,
                // Errors of one frame: skip it, as above.
                Err(_) if !eof => break,
                Err(e) => break 'run Err(Flow::Failed(format!("frame {n}: {e}"))),
            }
        }
    };
    busy += since.elapsed();
    let error = match outcome {
        Err(Flow::Disconnected) => return,
        Err(Flow::Failed(e)) => Some(e),
        Ok(()) => None,
    };
    let stopped = stop.load(Ordering::Relaxed) && n < plan.limit && error.is_none();
    let _ = tx.send(plan.end(n, error, stopped, busy));
}

#[cfg(test)]
mod tests;
