//! Every way `POST /soccer/challenge` ends without an analysis, as one type that is the
//! response (axum's error-handling example): its status, its JSON body
//! (`{"error": message, "kind": label}`, with the challenge id when it was read), its
//! `challenges_total{outcome}` and `errors_total{kind}` counts and its log line are decided
//! here, once, not by each branch of the handler.

use std::borrow::Cow;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::json;

use pitchside_fetch::DownloadError;

use crate::analyzer::AnalyzeError;
use crate::auth::AuthError;
use crate::metrics::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum ChallengeFailure {
    /// The body was too large, too slow or unreadable; the connection is closed after it.
    #[error("{message}")]
    RequestBody { status: StatusCode, message: String },
    #[error("{0}")]
    RequestJson(String),
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// Shutting down: try another miner, or this one after Retry-After.
    #[error("the miner is shutting down")]
    Draining,
    #[error("the miner is busy with another challenge")]
    Busy,
    #[error(transparent)]
    Download(DownloadError),
    /// Downloaded, and a video, but over the profile's bounds.
    #[error("{0}")]
    VideoTooLarge(String),
    /// Downloaded, but not a video (a [`DownloadError::NotVideo`]).
    #[error(transparent)]
    NotVideo(DownloadError),
    #[error("video check panicked: {0}")]
    CheckPanicked(String),
    #[error("analysis failed: {0}")]
    Analysis(AnalyzeError),
    #[error("analysis panicked: {0}")]
    AnalysisPanicked(String),
    #[error("analysis failed: {0}")]
    Serialize(serde_json::Error),
}

impl ChallengeFailure {
    pub fn status(&self) -> StatusCode {
        use ChallengeFailure::*;
        match self {
            RequestBody { status, .. } => *status,
            RequestJson(_) => StatusCode::BAD_REQUEST,
            Auth(e) if e.is_forbidden() => StatusCode::FORBIDDEN,
            Auth(AuthError::NonceStoreFull) => StatusCode::TOO_MANY_REQUESTS,
            Auth(_) => StatusCode::UNAUTHORIZED,
            Draining | Busy => StatusCode::SERVICE_UNAVAILABLE,
            Download(e) | NotVideo(e) => download_status(e),
            VideoTooLarge(_) => StatusCode::UNPROCESSABLE_ENTITY,
            CheckPanicked(_) | Analysis(_) | AnalysisPanicked(_) | Serialize(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// The `challenges_total{outcome}` label.
    pub fn outcome(&self) -> &'static str {
        use ChallengeFailure::*;
        match self {
            RequestBody { .. } | RequestJson(_) => "bad_request",
            Auth(e) if e.is_forbidden() => "forbidden",
            Auth(_) => "unauthorized",
            Draining => "draining",
            Busy => "busy",
            Download(_) => "download_failed",
            VideoTooLarge(_) | NotVideo(_) => "invalid_video",
            CheckPanicked(_) | Analysis(_) | AnalysisPanicked(_) | Serialize(_) => {
                "analysis_failed"
            }
        }
    }

    /// The answer's `kind` and the `errors_total{kind}` label; `None` for a refusal that is
    /// not an error (busy, draining).
    pub fn kind(&self) -> Option<Cow<'static, str>> {
        use ChallengeFailure::*;
        Some(match self {
            RequestBody { .. } => "request_body".into(),
            RequestJson(_) => "request_json".into(),
            Auth(e) => e.kind().into(),
            Draining | Busy => return None,
            Download(e) | NotVideo(e) => format!("download_{}", e.kind()).into(),
            VideoTooLarge(_) => "video_too_large".into(),
            CheckPanicked(_) => "check_panicked".into(),
            Analysis(e) => e.kind.label().into(),
            AnalysisPanicked(_) => "analysis_panicked".into(),
            Serialize(_) => "analysis_serialize".into(),
        })
    }

    /// Counts it, logs it and shapes the response; `challenge_id` is the id's JSON text as
    /// the validator sent it, once the request was read.
    pub fn respond(
        self,
        metrics: &Metrics,
        retry_after_s: u64,
        challenge_id: Option<&str>,
    ) -> Response {
        metrics.challenge(self.outcome());
        let status = self.status();
        let kind = self.kind();
        if let Some(k) = &kind {
            metrics.error(k);
        }
        if self.is_refusal() {
            tracing::info!("refused: {self}")
        } else {
            tracing::warn!("failed ({}): {self}", status.as_u16())
        }
        let body =
            json!({ "error": self.to_string(), "kind": kind.as_deref().unwrap_or("unavailable") });
        let mut response = match challenge_id {
            Some(id) => crate::json::json_response_with_id(status, id, body),
            None => crate::json::json_response(status, body),
        };
        let headers = response.headers_mut();
        if self.is_refusal() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
        } else if matches!(self, ChallengeFailure::RequestBody { .. }) {
            // The client may still be sending: closing is the only way to stop reading it.
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }

    /// Busy or draining: nothing failed, the service declined; the client may retry
    /// (`Retry-After`), and it is logged at info, not as a failure.
    fn is_refusal(&self) -> bool {
        matches!(self, ChallengeFailure::Busy | ChallengeFailure::Draining)
    }
}

/// The validator's URL was bad (400), the content was unusable (422), the origin failed (502)
/// or was too slow (504).
fn download_status(e: &DownloadError) -> StatusCode {
    use DownloadError::*;
    match e {
        InvalidUrl { .. } | Refused { .. } => StatusCode::BAD_REQUEST,
        TooLarge { .. } | NotVideo { .. } | GoogleDrive { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
        Status { .. } | Connect { .. } | Truncated { .. } | Redirect { .. } => {
            StatusCode::BAD_GATEWAY
        }
        TempFile { .. } | Runtime { .. } | Setup { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(r: Response) -> serde_json::Value {
        let bytes = futures_bytes(r);
        serde_json::from_slice(&bytes).unwrap()
    }

    fn futures_bytes(r: Response) -> Vec<u8> {
        use http_body_util::BodyExt;
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(r.into_body().collect())
            .unwrap()
            .to_bytes()
            .to_vec()
    }

    #[test]
    fn each_failure_is_counted_once_and_answered_with_its_kind() {
        let m = Metrics::default();
        let e = ChallengeFailure::Download(DownloadError::Timeout {
            url: "http://x/a.mp4".into(),
            what: "reading the body".into(),
            attempts: 2,
        });
        let r = e.respond(&m, 5, Some("\"c-1\""));
        assert_eq!(r.status(), StatusCode::GATEWAY_TIMEOUT);
        assert!(r.headers().get(header::RETRY_AFTER).is_none());
        let b = body(r);
        assert_eq!(b["challenge_id"], "c-1");
        assert_eq!(b["kind"], "download_timeout");
        assert_eq!(
            b["error"],
            "GET http://x/a.mp4: timed out reading the body (after 2 attempts)"
        );
        assert_eq!(m.challenges("download_failed"), 1);
        let text = m.render(Default::default());
        assert!(
            text.contains("pitchside_errors_total{kind=\"download_timeout\"} 1\n"),
            "{text}"
        );

        let r = ChallengeFailure::Busy.respond(&m, 7, None);
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[header::RETRY_AFTER], "7");
        assert_eq!(body(r)["kind"], "unavailable");
        assert_eq!(m.challenges("busy"), 1);

        let r = ChallengeFailure::RequestBody {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: "too big".into(),
        }
        .respond(&m, 5, None);
        assert_eq!(r.headers()[header::CONNECTION], "close");
        assert_eq!(m.challenges("bad_request"), 1);

        let e = ChallengeFailure::Analysis(AnalyzeError::new(
            crate::analyzer::AnalyzeErrorKind::Plugin,
            "the ball detector failed",
        ));
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(e.kind().as_deref(), Some("analysis_plugin"));
        assert_eq!(e.to_string(), "analysis failed: the ball detector failed");
    }
}
