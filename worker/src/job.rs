//! Jobs: what is queued (an id and a video, a local path or a URL), their ids (a content
//! address unless given), manifests, and the states `pitchside status` shows.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use pitchside_fetch::Source;

use crate::WorkerError;

/// The longest job id: NATS keys and message ids stay short.
pub const MAX_ID_LEN: usize = 128;

/// A queued job: the message body on the jobs stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    /// A path (absolute, on storage every worker sees) or an http(s) URL.
    pub source: String,
}

/// Checks a given id: it becomes a KV key and an object name, so `[A-Za-z0-9_=.-]`, not
/// starting or ending with `.`, at most [`MAX_ID_LEN`] characters.
pub fn check_id(id: &str) -> Result<(), WorkerError> {
    let ok_chars = id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_=.".contains(c));
    if id.is_empty()
        || id.len() > MAX_ID_LEN
        || !ok_chars
        || id.starts_with('.')
        || id.ends_with('.')
    {
        return Err(WorkerError::Job(format!(
            "job id {id:?}: use 1 to {MAX_ID_LEN} of A-Z a-z 0-9 - _ = . (not starting or \
             ending with .)"
        )));
    }
    Ok(())
}

/// The job for `source` with the given id, or its content address: the SHA-256 of the file,
/// or of the URL string (the content behind a URL is not known before the download).
/// Paths become absolute: the workers read them, possibly from another directory.
pub fn job_for(source: &str, id: Option<&str>) -> Result<Job, WorkerError> {
    let parsed = Source::parse(source).map_err(|e| WorkerError::Job(e.to_string()))?;
    job_of(&parsed, id)
}

/// [`job_for`] of a source already parsed.
fn job_of(source: &Source, id: Option<&str>) -> Result<Job, WorkerError> {
    let (source, address) = match source {
        Source::Url(url) => (url.clone(), hex::encode(Sha256::digest(url))),
        Source::File(file) => {
            let named = file.display();
            let path = std::fs::canonicalize(file)
                .map_err(|e| WorkerError::Job(format!("{named}: {e}")))?;
            if !path.is_file() {
                return Err(WorkerError::Job(format!("{named}: not a file")));
            }
            let digest = sha256_file(&path)?;
            (path.to_string_lossy().into_owned(), digest)
        }
    };
    let id = match id {
        Some(id) => {
            check_id(id)?;
            id.to_string()
        }
        None => address,
    };
    Ok(Job { id, source })
}

fn sha256_file(path: &Path) -> Result<String, WorkerError> {
    let err = |e: std::io::Error| WorkerError::Job(format!("{}: {e}", path.display()));
    let mut f = std::fs::File::open(path).map_err(err)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(err)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// A manifest line: a bare source, or `{"source": ..., "id": ...}` (JSON, `id` optional).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestEntry {
    source: String,
    #[serde(default)]
    id: Option<String>,
}

/// The largest manifest read: a million jobs of ~60 bytes.
pub const MAX_MANIFEST_BYTES: u64 = 64 << 20;

/// Reads a manifest (a regular file of at most [`MAX_MANIFEST_BYTES`]): one job per line, a path or URL or a JSON object; blank lines and
/// lines starting with `#` are skipped. Relative paths are relative to the manifest.
pub fn read_manifest(path: &Path) -> Result<Vec<Job>, WorkerError> {
    let text = pitchside_engine::files::read_text_bounded(path, MAX_MANIFEST_BYTES, "manifest")
        .map_err(|e| WorkerError::Job(e.to_string()))?;
    let base = path.parent().map(PathBuf::from).unwrap_or_default();
    let mut jobs = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = |m: String| WorkerError::Job(format!("{}:{}: {m}", path.display(), n + 1));
        let entry = if line.starts_with('{') {
            serde_json::from_str::<ManifestEntry>(line).map_err(|e| at(e.to_string()))?
        } else {
            ManifestEntry {
                source: line.to_string(),
                id: None,
            }
        };
        let source = match Source::parse(&entry.source).map_err(|e| at(e.to_string()))? {
            Source::File(p) if p.is_relative() => Source::File(base.join(p)),
            absolute_or_url => absolute_or_url,
        };
        jobs.push(job_of(&source, entry.id.as_deref()).map_err(|e| at(e.to_string()))?);
    }
    Ok(jobs)
}

/// Where a job is, as stored in the jobs KV bucket (key: the job id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Queued,
    Running,
    Done,
    Failed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Running => "running",
            State::Done => "done",
            State::Failed => "failed",
        }
    }
}

/// A job's record in the jobs KV bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub state: State,
    pub source: String,
    /// The worker that last took it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// Deliveries so far (1 on the first attempt).
    #[serde(default)]
    pub attempt: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Whether the stored result is partial (the video ended in an error midway).
    #[serde(default)]
    pub partial: bool,
    /// Seconds the last run took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_content_addresses_unless_given() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.bin");
        std::fs::write(&a, b"abc").unwrap();
        let job = job_for(a.to_str().unwrap(), None).unwrap();
        // sha256("abc")
        assert_eq!(
            job.id,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(Path::new(&job.source).is_absolute());
        let url = job_for("https://example.org/v.mp4", None).unwrap();
        assert_eq!(
            url.id,
            hex::encode(Sha256::digest("https://example.org/v.mp4"))
        );
        assert_eq!(
            job_for("https://x/y", Some("match-1")).unwrap().id,
            "match-1"
        );
        for bad in ["", "a b", "a/b", ".x", "x.", "a*"] {
            assert!(job_for("https://x/y", Some(bad)).is_err(), "{bad:?}");
        }
        let e = job_for(dir.path().join("missing").to_str().unwrap(), None).unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
    }

    #[test]
    fn manifests_take_bare_sources_and_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.avi"), b"x").unwrap();
        let m = dir.path().join("jobs.txt");
        std::fs::write(
            &m,
            "# season 1\n\na.avi\n{\"source\": \"https://h/v.mp4\", \"id\": \"m2\"}\n",
        )
        .unwrap();
        let jobs = read_manifest(&m).unwrap();
        assert_eq!(jobs.len(), 2);
        assert!(jobs[0].source.ends_with("a.avi"));
        assert_eq!(jobs[1].id, "m2");
        std::fs::write(&m, "a.avi\n{\"src\": 1}\n").unwrap();
        let e = read_manifest(&m).unwrap_err().to_string();
        assert!(e.contains("jobs.txt:2"), "{e}");
        // A device is refused at once (it was read until memory ran out).
        let e = read_manifest(Path::new("/dev/zero"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("manifest /dev/zero is a character device"),
            "{e}"
        );
    }
}
