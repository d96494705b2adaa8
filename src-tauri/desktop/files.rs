//! Files the UI picks with the dialog plugin: the console reads and writes them by path.

use super::error::{CommandError, ErrorCode};
use std::path::Path;

/// At most this much text per file (a plan file or an events file is far smaller).
const MAX_BYTES: u64 = 64 * 1024 * 1024;

/// The UTF-8 text of the file at `path`.
pub(crate) fn read_text(path: &str) -> Result<String, CommandError> {
    let unreadable =
        |why: String| CommandError::new(ErrorCode::FileUnreadable, format!("{path}: {why}"));
    let len = std::fs::metadata(path)
        .map_err(|e| unreadable(e.to_string()))?
        .len();
    if len > MAX_BYTES {
        return Err(unreadable(format!(
            "the file is larger than {} MiB",
            MAX_BYTES / 1024 / 1024
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| unreadable(e.to_string()))?;
    String::from_utf8(bytes).map_err(|_| unreadable("the file is not UTF-8 text".into()))
}

/// Writes `text` to `path` (replacing the file), returning how many bytes were written.
pub(crate) fn write_text(path: &str, text: &str) -> Result<i64, CommandError> {
    if path.trim().is_empty() || Path::new(path).is_dir() {
        return Err(CommandError::new(
            ErrorCode::FileUnwritable,
            format!("`{path}` is not a file name"),
        ));
    }
    std::fs::write(path, text)
        .map_err(|e| CommandError::new(ErrorCode::FileUnwritable, format!("{path}: {e}")))?;
    Ok(text.len() as i64)
}
