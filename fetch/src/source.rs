//! File or URL: the one place an input string is classified.

use std::path::PathBuf;

/// Where a video is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    /// An http or https URL, as given.
    Url(String),
}

/// An input that names a URL scheme Pitchside does not fetch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input} is a URL: only http and https URLs are fetched; download it first")]
pub struct SourceError {
    pub input: String,
}

impl Source {
    /// `scheme://…` with an http(s) scheme (any case) is a URL; another scheme is refused,
    /// saying it is a URL (rather than reported later as a missing file); anything else is
    /// a path. A path is not checked here: admission opens and probes it.
    pub fn parse(input: &str) -> Result<Source, SourceError> {
        if let Some((scheme, _)) = input.split_once("://")
            && !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        {
            if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") {
                return Ok(Source::Url(input.to_owned()));
            }
            return Err(SourceError {
                input: input.to_owned(),
            });
        }
        Ok(Source::File(PathBuf::from(input)))
    }

    pub fn is_url(&self) -> bool {
        matches!(self, Source::Url(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_files_and_other_schemes() {
        let url = |s: &str| Source::Url(s.to_owned());
        let file = |s: &str| Source::File(PathBuf::from(s));
        assert_eq!(
            Source::parse("http://x.org/a.mp4"),
            Ok(url("http://x.org/a.mp4"))
        );
        assert_eq!(Source::parse("HTTPS://x.org/a"), Ok(url("HTTPS://x.org/a")));
        assert_eq!(Source::parse("clip.mp4"), Ok(file("clip.mp4")));
        assert_eq!(
            Source::parse("/data/a://b.mp4"),
            Ok(file("/data/a://b.mp4"))
        );
        assert_eq!(Source::parse("./http://x"), Ok(file("./http://x")));
        assert_eq!(Source::parse("://x"), Ok(file("://x")));
        let err = Source::parse("ftp://x.org/a.mp4").unwrap_err();
        assert_eq!(
            err.to_string(),
            "ftp://x.org/a.mp4 is a URL: only http and https URLs are fetched; download it first"
        );
        assert!(Source::parse("s3://bucket/key").is_err());
        assert!(Source::parse("http://x").unwrap().is_url());
    }
}
