//! Reading files a user names (a deployment YAML, answers to score, a job manifest): a
//! regular file only, and at most a bounded size, so that `--config /dev/zero` or a FIFO is
//! a clear error at once instead of a process that grows or blocks forever.

use std::io::Read;
use std::path::{Path, PathBuf};

/// Why a user's file was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{what} {path} is {kind}, not a regular file")]
    NotAFile {
        what: &'static str,
        path: PathBuf,
        kind: &'static str,
    },
    #[error("{what} {path} is larger than {max} bytes, more than a {what} can be")]
    TooLarge {
        what: &'static str,
        path: PathBuf,
        max: u64,
    },
    /// The OS error is in the message, not the error's source: printed once.
    #[error("{what} {path}: {error}")]
    Io {
        what: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{what} {path} is not UTF-8 text")]
    NotText { what: &'static str, path: PathBuf },
}

/// What kind of file `meta` describes, for messages ("a FIFO", "a character device").
pub fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_file() {
        "a regular file"
    } else {
        "not a regular file"
    }
}

/// Reads `path` whole when it is a regular file of at most `max` bytes; `what` names it in
/// errors ("deployment", "answers file"). The size is checked on the open file and the read
/// is bounded too, so a file that grows meanwhile cannot get past `max`.
pub fn read_bounded(path: &Path, max: u64, what: &'static str) -> Result<Vec<u8>, ReadError> {
    let io = |error: std::io::Error| ReadError::Io {
        what,
        path: path.to_path_buf(),
        error,
    };
    // The type first, from the path: opening a FIFO for reading blocks until a writer comes.
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(ReadError::NotAFile {
            what,
            path: path.to_path_buf(),
            kind: kind_of(&meta),
        });
    }
    let too_large = || ReadError::TooLarge {
        what,
        path: path.to_path_buf(),
        max,
    };
    if meta.len() > max {
        return Err(too_large());
    }
    let file = std::fs::File::open(path).map_err(io)?;
    let mut out = Vec::with_capacity(meta.len() as usize);
    file.take(max + 1).read_to_end(&mut out).map_err(io)?;
    if out.len() as u64 > max {
        return Err(too_large());
    }
    Ok(out)
}

/// [`read_bounded`], as UTF-8 text.
pub fn read_text_bounded(path: &Path, max: u64, what: &'static str) -> Result<String, ReadError> {
    String::from_utf8(read_bounded(path, max, what)?).map_err(|_| ReadError::NotText {
        what,
        path: path.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_within_the_bound_are_read_and_others_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.yaml");
        std::fs::write(&f, "abc").unwrap();
        assert_eq!(read_text_bounded(&f, 3, "deployment").unwrap(), "abc");
        let e = read_bounded(&f, 2, "deployment").unwrap_err().to_string();
        assert!(e.contains("larger than 2 bytes"), "{e}");
        // A device that never ends: refused without reading a byte.
        let e = read_bounded(Path::new("/dev/zero"), 1 << 20, "deployment")
            .unwrap_err()
            .to_string();
        assert!(e.contains("character device"), "{e}");
        // A FIFO with no writer: refused, not waited on.
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc_mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read_bounded(&fifo, 1 << 20, "deployment")
            .unwrap_err()
            .to_string();
        assert!(e.contains("FIFO"), "{e}");
        let e = read_bounded(dir.path(), 1 << 20, "deployment")
            .unwrap_err()
            .to_string();
        assert!(e.contains("directory"), "{e}");
        let e = read_bounded(&dir.path().join("none"), 1, "deployment")
            .unwrap_err()
            .to_string();
        assert!(e.contains("(os error 2)"), "{e}");
    }

    unsafe extern "C" {
        #[link_name = "mkfifo"]
        fn libc_mkfifo(path: *const std::os::raw::c_char, mode: u32) -> i32;
    }
}
