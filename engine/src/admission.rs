//! The one way a video enters the engine: [`admit`] probes it once (a regular file, a
//! container of an allowed format, a decodable first frame) and checks every bound of the
//! profile on what the probe found. Only an [`AdmittedVideo`] can be run
//! ([`crate::pipeline::Pipeline::run`], [`crate::pool::Lease::run`]), so a front end
//! cannot forget a check; the decoder reuses the probe instead of probing again, and
//! holds every decoded frame to the same `max_frame_pixels` (a stream may change size).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{Profile, VideoTooLarge};
use crate::video::{self, DecodeOptions, Decoder, Output, VideoError, VideoInfo};

/// A video that passed [`admit`]: what its probe found, and the bounds it was held to.
/// Made by [`admit`] alone (private fields, no constructor elsewhere).
#[derive(Debug, Clone, PartialEq)]
pub struct AdmittedVideo {
    path: PathBuf,
    info: VideoInfo,
    max_frame_pixels: u64,
    max_video_frames: u64,
}

impl AdmittedVideo {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The container's geometry, rate and frame count, as probed.
    pub fn info(&self) -> &VideoInfo {
        &self.info
    }

    /// The largest frame (pixels) the decoder may yield: checked on every decoded frame.
    pub fn max_frame_pixels(&self) -> u64 {
        self.max_frame_pixels
    }

    /// The most source frames a run reads.
    pub fn max_video_frames(&self) -> u64 {
        self.max_video_frames
    }

    /// Starts decoding it: the probe is reused (the file is opened once more, to decode),
    /// and every decoded frame is held to its `max_frame_pixels` (and to
    /// `opts.max_frame_pixels`, when lower).
    pub fn decode(
        &self,
        opts: &DecodeOptions,
        outputs: impl FnOnce(&VideoInfo) -> Vec<Output>,
    ) -> Result<Decoder, VideoError> {
        let opts = DecodeOptions {
            max_frame_pixels: opts.max_frame_pixels.min(self.max_frame_pixels),
            ..opts.clone()
        };
        Decoder::start_probed(&self.path, self.info, Duration::ZERO, &opts, outputs)
    }
}

/// Why a video was not admitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AdmissionError {
    /// Missing, not a regular file, not a video of an allowed format, no decodable frame.
    #[error(transparent)]
    Video(#[from] VideoError),
    /// Over one of the profile's bounds (`reason` says which).
    #[error("{}: {reason}", path.display())]
    TooLarge {
        path: PathBuf,
        reason: VideoTooLarge,
    },
}

impl AdmissionError {
    /// The problem without the file's name (a download's temporary file means nothing to
    /// whoever sent the URL).
    pub fn without_path(&self) -> String {
        match self {
            AdmissionError::Video(VideoError::NotAVideo { detail, .. }) => detail.clone(),
            AdmissionError::Video(VideoError::NoFrames { .. }) => {
                "it has no decodable frame".into()
            }
            AdmissionError::Video(other) => other.to_string(),
            AdmissionError::TooLarge { reason, .. } => reason.to_string(),
        }
    }
}

/// Probes `path` once and checks it against every bound of `profile`: the engine's
/// admission (blocking: it opens the file and decodes frame 0).
pub fn admit(profile: &Profile, path: &Path) -> Result<AdmittedVideo, AdmissionError> {
    let info = video::probe(path)?;
    profile
        .check_video(&info)
        .map_err(|reason| AdmissionError::TooLarge {
            path: path.to_path_buf(),
            reason,
        })?;
    Ok(AdmittedVideo {
        path: path.to_path_buf(),
        info,
        max_frame_pixels: profile.max_frame_pixels,
        max_video_frames: profile.max_video_frames,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ProfileName;

    fn clip() -> PathBuf {
        crate::test_support::vtest()
    }

    #[test]
    fn a_non_video_is_refused_and_the_message_can_leave_out_the_file() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, &[b'x'; 10_000]).unwrap();
        let e = admit(&Profile::defaults(ProfileName::Cpu), f.path()).unwrap_err();
        let name = f.path().file_name().unwrap().to_string_lossy();
        assert!(!e.without_path().contains(&*name), "{e}");
        assert!(e.to_string().contains(&*name), "{e}");
    }

    #[test]
    fn every_bound_is_checked_on_the_one_probe() {
        let mut p = Profile::defaults(ProfileName::Cpu);
        let v = admit(&p, &clip()).expect("assets/vtest.avi (scripts/fetch-assets.sh)");
        assert_eq!((v.info().width, v.info().height), (768, 576));
        assert_eq!(v.max_frame_pixels(), p.max_frame_pixels);
        p.max_frame_pixels = 768 * 576 - 1;
        let e = admit(&p, &clip()).unwrap_err();
        assert!(
            matches!(
                e,
                AdmissionError::TooLarge {
                    reason: VideoTooLarge::Pixels { .. },
                    ..
                }
            ),
            "{e}"
        );
        assert!(
            e.to_string().contains("vtest.avi: the video is 768x576"),
            "{e}"
        );
        assert!(!e.without_path().contains("vtest.avi"), "{e}");
        p.max_frame_pixels = 768 * 576;
        p.max_video_frames = 10;
        let e = admit(&p, &clip()).unwrap_err();
        assert!(e.to_string().contains("max_video_frames, 10"), "{e}");
    }
}
