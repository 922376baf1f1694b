//! The FFmpeg side of decoding: opening an input, one decoder (frame threads, NVDEC where
//! asked for and present), and converting a decoded YUV frame to packed BGR at the sizes
//! the pipeline asked for, in one swscale pass each.

use std::path::Path;
use std::ptr;
use std::sync::{Arc, Mutex, Once};

use ff::ffi;
use ffmpeg_next as ff;

use super::{Output, VideoError, VideoInfo};
use crate::media::Image;

/// Initialises FFmpeg once and keeps its log off stderr: it logs every demuxer probe that
/// fails and every damaged packet, into the CLI's output and the service's log, where each
/// failure is reported as an error of ours instead. `PITCHSIDE_FFMPEG_LOG=1` keeps its
/// warnings (for debugging a file).
pub(super) fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = ff::init();
    });
    // Each time: OpenCV's videoio (still used to write annotated videos) sets FFmpeg's
    // process-wide level when it starts.
    let level = if std::env::var_os("PITCHSIDE_FFMPEG_LOG").is_some_and(|v| v != "0") {
        ffi::AV_LOG_WARNING
    } else {
        ffi::AV_LOG_QUIET
    };
    unsafe { ffi::av_log_set_level(level) };
}

/// An opened input: the demuxer, its best video stream and what it says about it.
pub(super) struct Input {
    pub input: ff::format::context::Input,
    pub stream: usize,
    pub params: ff::codec::Parameters,
    pub info: VideoInfo,
    /// Source frames whose packets the demuxer's index marks as keyframes (empty when the
    /// container has no index, e.g. a truncated AVI).
    pub keyframes: Vec<u64>,
    /// Whether decoding can start afresh at each of those keyframes: codecs whose keyframes
    /// are always closed (H.264 IDR as MP4 and AVI index them, MPEG-4 Part 2, MJPEG, VP8,
    /// VP9). Not HEVC or MPEG-2, whose indexed keyframes may open a GOP whose leading frames
    /// need the previous one: a segment starting there would decode fewer frames.
    pub closed_keyframes: bool,
}

/// The demuxers Pitchside opens (FFmpeg's names; a demuxer whose name lists several, as
/// `mov,mp4,m4a,3gp,3g2,mj2` does, is allowed when one of them is here): what cameras,
/// phones, editors and streaming tools write. Every other demuxer of the system FFmpeg stays
/// shut: game-music emulators that inflate gzip data without bound, playlists and
/// concatenation scripts that open other files and URLs, image sequences.
pub const ALLOWED_FORMATS: &str = "mov,mp4,matroska,webm,avi,mpegts,flv,h264,hevc";

/// For messages: the allow-list as people name the formats.
pub const ALLOWED_FORMATS_DESCRIBED: &str =
    "MP4/MOV, Matroska/WebM, AVI, MPEG-TS, FLV, raw H.264 or HEVC";

/// Bytes FFmpeg may read to recognise the format and find the video stream (its default);
/// set explicitly so that a build with another default cannot read more.
const PROBE_SIZE: &str = "5000000";
/// Microseconds of stream FFmpeg may analyse for the stream parameters (its default).
const ANALYZE_DURATION: &str = "5000000";

/// Opens `path` through FFmpeg's `file` protocol only (a name such as `concat:a|b` or
/// `http://x` is a file name here, never a protocol), with the demuxers of
/// [`ALLOWED_FORMATS`] only (nested opens inherit both lists), and bounded probing.
pub(super) fn open_input(path: &Path) -> Result<Input, VideoError> {
    init();
    let not_video = |detail: String| VideoError::NotAVideo {
        path: path.to_path_buf(),
        detail,
    };
    let Some(name) = path.to_str() else {
        return Err(not_video(
            "its name is not valid UTF-8, which FFmpeg cannot be given".into(),
        ));
    };
    let mut options = ff::Dictionary::new();
    options.set("format_whitelist", ALLOWED_FORMATS);
    options.set("protocol_whitelist", "file");
    options.set("probesize", PROBE_SIZE);
    options.set("analyzeduration", ANALYZE_DURATION);
    let url = format!("file:{name}");
    let input =
        ff::format::input_with_dictionary(&url, options).map_err(|e| {
            match detected_format(path) {
                Some((short, long)) if !format_allowed(&short) => not_video(format!(
                    "its format is {long} ({short}); Pitchside reads {ALLOWED_FORMATS_DESCRIBED}"
                )),
                _ => not_video(e.to_string()),
            }
        })?;
    let stream = input
        .streams()
        .best(ff::media::Type::Video)
        .ok_or_else(|| not_video("it has no video stream".into()))?;
    let index = stream.index();
    let params = stream.parameters();
    let (width, height) = unsafe {
        let p = params.as_ptr();
        ((*p).width.max(0) as u32, (*p).height.max(0) as u32)
    };
    // As OpenCV's FFmpeg backend reports them, so that probes and results keep their numbers.
    let rate = unsafe {
        ffi::av_guess_frame_rate(
            input.as_ptr() as *mut _,
            stream.as_ptr() as *mut _,
            ptr::null_mut(),
        )
    };
    let fps = if rate.den != 0 {
        rate.num as f64 / rate.den as f64
    } else {
        0.0
    };
    let frame_count = if stream.frames() > 0 {
        stream.frames() as u64
    } else {
        let tb = stream.time_base();
        let secs = if stream.duration() > 0 && tb.denominator() != 0 {
            stream.duration() as f64 * tb.numerator() as f64 / tb.denominator() as f64
        } else if input.duration() > 0 {
            input.duration() as f64 / ffi::AV_TIME_BASE as f64
        } else {
            0.0
        };
        (secs * fps + 0.5).floor().max(0.0) as u64
    };
    let keyframes = unsafe {
        let st = stream.as_ptr() as *mut ffi::AVStream;
        let n = ffi::avformat_index_get_entries_count(st).max(0);
        (0..n)
            .filter_map(|i| {
                let e = ffi::avformat_index_get_entry(st, i);
                (!e.is_null() && (*e).flags() & ffi::AVINDEX_KEYFRAME != 0).then_some(i as u64)
            })
            .collect()
    };
    use ff::codec::Id;
    let closed_keyframes = matches!(
        params.id(),
        Id::H264
            | Id::MPEG4
            | Id::MSMPEG4V1
            | Id::MSMPEG4V2
            | Id::MSMPEG4V3
            | Id::MJPEG
            | Id::VP8
            | Id::VP9
    );
    Ok(Input {
        closed_keyframes,
        info: VideoInfo {
            width,
            height,
            fps,
            frame_count,
        },
        input,
        stream: index,
        params,
        keyframes,
    })
}

/// Whether FFmpeg's demuxer name `name` (comma-separated aliases) is on the allow-list.
pub fn format_allowed(name: &str) -> bool {
    name.split(',')
        .any(|n| ALLOWED_FORMATS.split(',').any(|a| a == n))
}

/// The demuxer FFmpeg would pick for the first 64 KiB of `path` (short and long name), for
/// the message when the allow-list refused it. Reads the bytes itself (bounded, regular
/// files only): nothing of the file is interpreted by a demuxer.
fn detected_format(path: &Path) -> Option<(String, String)> {
    use std::io::Read;
    const PEEK: usize = 64 * 1024;
    let file = std::fs::File::open(path).ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut buf = Vec::with_capacity(PEEK + ffi::AVPROBE_PADDING_SIZE as usize);
    file.take(PEEK as u64).read_to_end(&mut buf).ok()?;
    let len = buf.len();
    // FFmpeg's probes may read this far past the data: zeros.
    buf.resize(len + ffi::AVPROBE_PADDING_SIZE as usize, 0);
    let filename = std::ffi::CString::new(path.to_str()?).ok()?;
    unsafe {
        let pd = ffi::AVProbeData {
            filename: filename.as_ptr(),
            buf: buf.as_mut_ptr(),
            buf_size: len as i32,
            mime_type: ptr::null(),
        };
        let fmt = ffi::av_probe_input_format(&pd, 1);
        if fmt.is_null() {
            return None;
        }
        let text = |p: *const std::os::raw::c_char| {
            (!p.is_null()).then(|| std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned())
        };
        let short = text((*fmt).name)?;
        let long = text((*fmt).long_name).unwrap_or_else(|| short.clone());
        Some((short, long))
    }
}

/// How frames get decoded, for the log and for `pitchside bench`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acceleration {
    Software,
    /// NVDEC through FFmpeg's CUDA hardware device.
    Nvdec,
}

/// One FFmpeg decoder and the frames it hands out.
pub(super) struct FrameDecoder {
    dec: ff::decoder::Video,
    frame: ff::frame::Video,
    /// Hardware frames are copied here (NV12) before conversion.
    sw: ff::frame::Video,
    pub acceleration: Acceleration,
}

/// Picks the CUDA surface format when the decoder offers it, else FFmpeg's default choice.
unsafe extern "C" fn prefer_cuda(
    ctx: *mut ffi::AVCodecContext,
    formats: *const ffi::AVPixelFormat,
) -> ffi::AVPixelFormat {
    unsafe {
        let mut p = formats;
        while *p != ffi::AVPixelFormat::AV_PIX_FMT_NONE {
            if *p == ffi::AVPixelFormat::AV_PIX_FMT_CUDA {
                return *p;
            }
            p = p.add(1);
        }
        ffi::avcodec_default_get_format(ctx, formats)
    }
}

/// Attaches a CUDA device to `ctx` when FFmpeg has NVDEC for this codec and a driver
/// answers; the reason otherwise.
fn attach_nvdec(ctx: &mut ff::codec::Context) -> Result<(), String> {
    unsafe {
        let raw = ctx.as_mut_ptr();
        let codec = ffi::avcodec_find_decoder((*raw).codec_id);
        if codec.is_null() {
            return Err("no decoder for this codec".into());
        }
        let mut offered = false;
        for i in 0.. {
            let cfg = ffi::avcodec_get_hw_config(codec, i);
            if cfg.is_null() {
                break;
            }
            if (*cfg).device_type == ffi::AVHWDeviceType::AV_HWDEVICE_TYPE_CUDA
                && (*cfg).methods & ffi::AV_CODEC_HW_CONFIG_METHOD_HW_DEVICE_CTX as i32 != 0
            {
                offered = true;
                break;
            }
        }
        if !offered {
            return Err("this FFmpeg has no NVDEC for the codec".into());
        }
        let mut device: *mut ffi::AVBufferRef = ptr::null_mut();
        let r = ffi::av_hwdevice_ctx_create(
            &mut device,
            ffi::AVHWDeviceType::AV_HWDEVICE_TYPE_CUDA,
            ptr::null(),
            ptr::null_mut(),
            0,
        );
        if r < 0 {
            return Err(format!(
                "no CUDA device for decoding ({})",
                ff::Error::from(r)
            ));
        }
        (*raw).hw_device_ctx = device;
        (*raw).get_format = Some(prefer_cuda);
        Ok(())
    }
}

/// Says once per process which decoding was chosen and, on a fallback, why.
fn log_choice(choice: &Acceleration, why_not: Option<&str>) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| match (choice, why_not) {
        (Acceleration::Nvdec, _) => tracing::info!("video decoding on NVDEC (CUDA)"),
        (_, Some(why)) => {
            tracing::info!("video decoding in software: NVDEC not used ({why})")
        }
        _ => {}
    });
}

impl FrameDecoder {
    /// A decoder for the stream's parameters: `threads` frame threads (0 = FFmpeg's choice:
    /// all cores) and, with `hardware`, NVDEC when present.
    pub fn new(
        params: &ff::codec::Parameters,
        threads: usize,
        hardware: bool,
    ) -> Result<FrameDecoder, String> {
        let make = |nvdec: bool| -> Result<(ff::decoder::Video, Option<String>), String> {
            let mut ctx = ff::codec::context::Context::from_parameters(params.clone())
                .map_err(|e| format!("the codec parameters: {e}"))?;
            let mut why_not = None;
            if nvdec {
                match attach_nvdec(&mut ctx) {
                    Ok(()) => {}
                    Err(e) => why_not = Some(e),
                }
            }
            let hw = nvdec && why_not.is_none();
            ctx.set_threading(ff::threading::Config {
                kind: ff::threading::Type::Frame,
                // NVDEC decodes on the GPU: one CPU thread feeds it.
                count: if hw { 1 } else { threads },
                ..Default::default()
            });
            let dec = ctx.decoder().video().map_err(|e| match e {
                ff::Error::DecoderNotFound => "FFmpeg has no decoder for its codec".to_string(),
                e => format!("opening its decoder: {e}"),
            })?;
            Ok((dec, why_not))
        };
        let (dec, acceleration, why_not) = if hardware {
            match make(true) {
                Ok((dec, None)) => (dec, Acceleration::Nvdec, None),
                Ok((_, Some(why))) => (make(false)?.0, Acceleration::Software, Some(why)),
                Err(e) => (make(false)?.0, Acceleration::Software, Some(e)),
            }
        } else {
            (make(false)?.0, Acceleration::Software, None)
        };
        log_choice(&acceleration, why_not.as_deref());
        Ok(FrameDecoder {
            dec,
            frame: ff::frame::Video::empty(),
            sw: ff::frame::Video::empty(),
            acceleration,
        })
    }

    /// Feeds one packet (`None`: the end of the stream, drain).
    pub fn send(&mut self, packet: Option<&ff::Packet>) -> Result<(), ff::Error> {
        match packet {
            Some(p) => self.dec.send_packet(p),
            None => self.dec.send_eof(),
        }
    }

    /// The next decoded frame in system memory, `Ok(None)` when the decoder wants more
    /// input (or is drained).
    pub fn receive(&mut self) -> Result<Option<&ff::frame::Video>, ff::Error> {
        match self.dec.receive_frame(&mut self.frame) {
            Ok(()) => {}
            Err(ff::Error::Eof) => return Ok(None),
            Err(ff::Error::Other { errno }) if errno == ff::util::error::EAGAIN => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        }
        if self.frame.format() == ff::format::Pixel::CUDA {
            unsafe {
                ffi::av_frame_unref(self.sw.as_mut_ptr());
                let r = ffi::av_hwframe_transfer_data(self.sw.as_mut_ptr(), self.frame.as_ptr(), 0);
                if r < 0 {
                    return Err(ff::Error::from(r));
                }
            }
            return Ok(Some(&self.sw));
        }
        Ok(Some(&self.frame))
    }

    /// Resets the decoder for a new run of packets starting at a keyframe (after draining).
    pub fn reset(&mut self) {
        self.dec.flush();
    }
}

/// Image buffers handed back by the pipeline ([`super::Decoder::recycle`]), so that the
/// decoder writes each frame into memory that is already mapped instead of faulting in
/// megabytes of fresh pages per frame.
#[derive(Clone, Default)]
pub(super) struct Pool(Arc<Mutex<Vec<Vec<u8>>>>);

/// Enough for every frame in flight in the queues; more is dropped.
const POOL_MAX: usize = 512;

impl Pool {
    /// A buffer of `len` bytes with room for `slack` more after them.
    fn take(&self, len: usize, slack: usize) -> Vec<u8> {
        let mut v = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match v
            .iter()
            .rposition(|b| b.len() == len && b.capacity() >= len + slack)
        {
            Some(i) => v.swap_remove(i),
            None => {
                let mut b = Vec::with_capacity(len + slack);
                b.resize(len, 0);
                b
            }
        }
    }

    pub fn give(&self, buf: Vec<u8>) {
        let mut v = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if v.len() < POOL_MAX {
            v.push(buf);
        }
    }
}

/// Converts decoded frames to packed BGR at each requested output size.
pub(super) struct Converter {
    outputs: Vec<Output>,
    contexts: Vec<*mut ffi::SwsContext>,
    pool: Pool,
}

// SAFETY: the swscale contexts are owned by this value alone and used by one thread at a
// time (the one that owns the converter); swscale keeps no thread-local state.
unsafe impl Send for Converter {}

impl Drop for Converter {
    fn drop(&mut self) {
        for c in &self.contexts {
            unsafe { ffi::sws_freeContext(*c) };
        }
    }
}

impl Converter {
    pub fn new(outputs: Vec<Output>, pool: Pool) -> Converter {
        let contexts = vec![ptr::null_mut(); outputs.len()];
        Converter {
            outputs,
            contexts,
            pool,
        }
    }

    /// One image per output, in the order asked for.
    pub fn convert(&mut self, frame: &ff::frame::Video) -> Result<Vec<Image>, String> {
        let (sw, sh) = (frame.width(), frame.height());
        if sw == 0 || sh == 0 {
            return Err("the decoder returned an empty frame".into());
        }
        let src_fmt: ffi::AVPixelFormat = frame.format().into();
        let mut out = Vec::with_capacity(self.outputs.len());
        for (o, ctx) in self.outputs.iter().zip(self.contexts.iter_mut()) {
            let (w, h, flags) = match *o {
                // OpenCV's FFmpeg backend converts with these flags: the same pixels.
                Output::Full => (sw, sh, ffi::SWS_BICUBIC),
                // Area averaging: of swscale's filters, the one whose detections come closest
                // to the exact path's (BENCHMARKS.md, "Frame conversion at model size").
                Output::Scaled { width, height } => (width, height, ffi::SWS_AREA),
            };
            let len = w as usize * h as usize * 3;
            // swscale's SIMD output writes whole blocks of pixels, past the end of a row whose
            // width is not a multiple of them: into the next row, which it writes afterwards,
            // and for the last row past the image. One spare row (allocated, never part of
            // the image) takes that.
            let slack = w as usize * 3 + 256;
            let mut data = self.pool.take(len, slack);
            debug_assert!(data.capacity() >= len + slack);
            unsafe {
                *ctx = ffi::sws_getCachedContext(
                    *ctx,
                    sw as i32,
                    sh as i32,
                    src_fmt,
                    w as i32,
                    h as i32,
                    ffi::AVPixelFormat::AV_PIX_FMT_BGR24,
                    flags,
                    ptr::null_mut(),
                    ptr::null_mut(),
                    ptr::null(),
                );
                if ctx.is_null() {
                    return Err(format!(
                        "swscale cannot convert {src_fmt:?} {sw}x{sh} to BGR {w}x{h}"
                    ));
                }
                let f = frame.as_ptr();
                let dst = [
                    data.as_mut_ptr(),
                    ptr::null_mut(),
                    ptr::null_mut(),
                    ptr::null_mut(),
                ];
                let dst_stride = [(w * 3) as i32, 0, 0, 0];
                let rows = ffi::sws_scale(
                    *ctx,
                    (*f).data.as_ptr() as *const *const u8,
                    (*f).linesize.as_ptr(),
                    0,
                    sh as i32,
                    dst.as_ptr(),
                    dst_stride.as_ptr(),
                );
                if rows != h as i32 {
                    return Err(format!("swscale wrote {rows} of {h} rows"));
                }
            }
            out.push(Image {
                data,
                width: w,
                height: h,
            });
        }
        Ok(out)
    }
}
