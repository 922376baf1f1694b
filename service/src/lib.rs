//! The Score Vision miner service (`pitchside serve`), on top of the engine.
//!
//! Endpoints: `POST /soccer/challenge` (validator-signed, see [`auth`]), `GET /availability`,
//! `GET /health`, `GET /metrics`. A challenge is downloaded (`pitchside-fetch`), checked to be a
//! video, and handed to an [`Analyzer`] on a blocking thread ([`PipelineAnalyzer`] runs the
//! engine's pipeline); its answer is the engine's typed `response::Response`, with the
//! validator's challenge id put back as it was sent.
//!
//! Modules: [`server`] (routes, slots, drain: a new endpoint is a handler there, routed in
//! [`Server::start`]), [`analyzer`], [`auth`] (fiber's sr25519 request signatures) over
//! [`ss58`] (the address codec), [`config`] (checks of the deployment's `service:` section,
//! whose types live in the engine's config), [`metrics`]. The engine never depends on this
//! crate.
//!
//! Entry points: [`run`] (blocking; handles SIGTERM and ctrl-c) for the CLI, [`Server::start`]
//! (binds, then runs in the background, e.g. on 127.0.0.1:0 in tests) and [`serve`].
//! `examples/load_test_server.rs` runs it with a stand-in analyzer for tools/load_test.

pub mod analyzer;
pub mod auth;
pub mod config;
pub mod connections;
pub mod failure;
pub mod json;
pub mod metrics;
pub mod server;
pub mod ss58;

pub use analyzer::{AnalyzeError, AnalyzeErrorKind, Analyzer, PipelineAnalyzer};
pub use config::{AuthMode, DownloadConfig, ServiceConfig, ServiceConfigError};
pub use metrics::{PipelineGauge, PipelineGauges};
pub use server::{Server, ServiceError, run, serve};
