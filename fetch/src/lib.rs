//! Where a video comes from, and how it gets here.
//!
//! [`Source::parse`] says whether an input is a local file or an http(s) URL (the one parser
//! `pitchside run`, the NATS worker and the Python package use). A URL is fetched by a
//! [`Downloader`]: streamed to a temporary file (never held in memory), retried with back-off,
//! size-capped, refused for internal addresses ([`netguard`], the SSRF guard), with Google
//! Drive share links followed ([`gdrive`]). The HTTP service downloads challenges with the
//! same [`Downloader`]; its settings are the deployment's `service.download` section, checked
//! when the deployment is parsed.
//!
//! The async front ends (service, worker) share [`shutdown_signal`]; the blocking ones
//! (`run`, Python) call [`Downloader::fetch_blocking`], which a flag interrupts.

pub mod download;
pub mod gdrive;
pub mod netguard;
mod signal;
mod source;

pub use download::{DownloadError, Downloaded, Downloader};
pub use pitchside_engine::config::service::DownloadConfig;
pub use signal::shutdown_signal;
pub use source::{Source, SourceError};
