//! Where a configuration came from, and what can be wrong with it.

use std::fmt;
use std::path::PathBuf;

/// Where a configuration came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    Embedded,
    File(PathBuf),
}

impl fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigSource::Embedded => f.write_str("<embedded configs/default.yaml>"),
            ConfigSource::File(p) => write!(f, "{}", p.display()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Missing, not a regular file, over [`super::MAX_DEPLOYMENT_BYTES`], unreadable.
    #[error(transparent)]
    Read(#[from] crate::files::ReadError),
    /// Syntax errors, unknown keys and wrong types, as the YAML parser reports them.
    #[error("{source_name}:{line}:{column}: {message}")]
    Yaml {
        source_name: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// A value that parsed but makes no sense.
    #[error("{location}: {message}")]
    Invalid { location: String, message: String },
    /// A bad environment override.
    #[error("environment variable {var}={value:?}: {expected}")]
    Env {
        var: &'static str,
        value: String,
        expected: String,
    },
}
