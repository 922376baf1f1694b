//! The service's JSON responses, and the one place the validator's challenge id is put back
//! into an answer exactly as it was sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub fn json_response(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// `body` (a JSON object without `challenge_id`, whose keys all sort after it) with
/// `"challenge_id"` first, its value `id` (JSON text) exactly as the validator sent it:
/// keys stay sorted, and the id keeps every digit.
pub fn with_challenge_id(id: &str, mut body: Value) -> Result<String, serde_json::Error> {
    if let Value::Object(m) = &mut body {
        m.remove("challenge_id");
    }
    let rest = serde_json::to_string(&body)?;
    Ok(match rest.strip_prefix('{') {
        Some("}") => format!("{{\"challenge_id\":{id}}}"),
        Some(fields) => format!("{{\"challenge_id\":{id},{fields}"),
        // Not an object: nothing to add the id to.
        None => rest,
    })
}

/// A JSON response whose body is [`with_challenge_id`].
pub fn json_response_with_id(status: StatusCode, id: &str, body: Value) -> Response {
    match with_challenge_id(id, body) {
        Ok(text) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            text,
        )
            .into_response(),
        Err(e) => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({ "error": format!("serialising the answer: {e}"), "kind": "analysis_serialize" }),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An id above 2^64 (or written `1e3`, `42.0`) comes back as the same JSON text, first
    /// of the sorted keys: it came back as a float.
    #[test]
    fn the_id_is_echoed_as_the_same_json_text() {
        for id in [
            "18446744073709551616123",
            "1e3",
            "42.0",
            "\"c-\\u00e9\"",
            "7",
        ] {
            let text =
                with_challenge_id(id, json!({ "frames": [], "challenge_id": 1, "error": "x" }))
                    .unwrap();
            assert_eq!(
                text,
                format!("{{\"challenge_id\":{id},\"error\":\"x\",\"frames\":[]}}")
            );
            let back: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(back["error"], "x");
        }
        assert_eq!(
            with_challenge_id("5", json!({})).unwrap(),
            "{\"challenge_id\":5}"
        );
    }
}
