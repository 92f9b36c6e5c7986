//! The bookkeeping records every torch.package holds, and how they are read.
//!
//! | record | content (as PyTorch 2.13 writes it) |
//! |---|---|
//! | `.data/extern_modules` | module names, each followed by `\n`; a lone `\n` when there are none |
//! | `.data/python_version` | `platform.python_version()` of the writer, no newline |
//! | `.data/version` | the format version, `6\n` (older writers: root `version`) |
//! | `byteorder` | `little` (absent before PyTorch 2.1) |
//! | `.data/serialization_id` | 40 decimal digits (absent before PyTorch 2.1) |

use crate::error::{ArchiveError, Result};
use crate::reader::PackageReader;

/// Record holding the extern module list.
pub const EXTERN_MODULES: &str = ".data/extern_modules";
/// Record holding the writer's Python version.
pub const PYTHON_VERSION: &str = ".data/python_version";
/// Record holding the format version (PyTorch ≥ 1.x with version ≥ 6).
pub const VERSION: &str = ".data/version";
/// Where older writers put the format version.
pub const LEGACY_VERSION: &str = "version";
/// Record holding the byte order of storages.
pub const BYTEORDER: &str = "byteorder";
/// Record holding the archive's serialization id.
pub const SERIALIZATION_ID: &str = ".data/serialization_id";

/// The format version PyTorch's `PackageExporter` writes (`set_min_version(6)`).
pub const FORMAT_VERSION: u64 = 6;

/// What the bookkeeping records of a package say. Every field is `None` when
/// its record is absent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PackageMetadata {
    /// Modules a load imports from the host, exactly as PyTorch's importer
    /// reads them (`str.splitlines()`): a package without externs reads as
    /// `[""]`, a PyTorch quirk kept on purpose (`crates/archive/tests/writer.rs`).
    pub extern_modules: Option<Vec<String>>,
    /// The writer's Python version, e.g. `3.11.7`.
    pub python_version: Option<String>,
    /// The format version (6 for every torch.package).
    pub version: Option<u64>,
    /// `little` or `big`.
    pub byteorder: Option<String>,
    /// The archive's serialization id.
    pub serialization_id: Option<String>,
}

impl PackageMetadata {
    /// Reads the bookkeeping records of `reader`.
    pub fn read(reader: &PackageReader) -> Result<Self> {
        let text = |record: &str| -> Result<Option<String>> {
            if !reader.has_record(record) {
                return Ok(None);
            }
            let bytes = reader.read(record)?;
            String::from_utf8(bytes.into_owned())
                .map(Some)
                .map_err(|error| ArchiveError::BadMetadata {
                    archive: reader.label().to_owned(),
                    record: record.to_owned(),
                    reason: format!("not UTF-8 text ({error})"),
                })
        };
        let version_record = if reader.has_record(VERSION) {
            VERSION
        } else {
            LEGACY_VERSION
        };
        let version =
            match text(version_record)? {
                None => None,
                // Parsed as PyTorch's reader parses it (`std::stoull`:
                // whitespace, a sign, digits up to the first non-digit).
                Some(text) => Some(crate::listing::parse_stoull(text.as_bytes()).ok_or_else(
                    || ArchiveError::BadMetadata {
                        archive: reader.label().to_owned(),
                        record: version_record.to_owned(),
                        reason: format!("expected a version number, found {text:?}"),
                    },
                )?),
            };
        Ok(PackageMetadata {
            extern_modules: text(EXTERN_MODULES)?.map(|text| {
                python_splitlines(&text)
                    .into_iter()
                    .map(str::to_owned)
                    .collect()
            }),
            python_version: text(PYTHON_VERSION)?,
            version,
            byteorder: text(BYTEORDER)?,
            serialization_id: text(SERIALIZATION_ID)?,
        })
    }
}

/// The text of `.data/extern_modules` for `modules`, as PyTorch writes it:
/// every name followed by `\n`, and a lone `\n` for an empty list.
pub fn extern_modules_text<S: AsRef<str>>(modules: &[S]) -> String {
    if modules.is_empty() {
        return "\n".to_owned();
    }
    let mut text = String::new();
    for module in modules {
        text.push_str(module.as_ref());
        text.push('\n');
    }
    text
}

/// Python's `str.splitlines()` (without `keepends`): splits on every line
/// boundary Python knows, drops one trailing boundary.
fn python_splitlines(text: &str) -> Vec<&str> {
    let is_boundary = |c: char| {
        matches!(
            c,
            '\n' | '\r'
                | '\u{0b}'
                | '\u{0c}'
                | '\u{1c}'
                | '\u{1d}'
                | '\u{1e}'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        )
    };
    let mut lines = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((index, c)) = chars.next() {
        if is_boundary(c) {
            lines.push(&text[start..index]);
            let mut end = index + c.len_utf8();
            if c == '\r'
                && let Some(&(next_index, '\n')) = chars.peek()
            {
                chars.next();
                end = next_index + 1;
            }
            start = end;
        }
    }
    if start < text.len() {
        lines.push(&text[start..]);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitlines_matches_python() {
        // Expected values printed by CPython 3.11's str.splitlines().
        let cases: &[(&str, &[&str])] = &[
            ("", &[]),
            ("\n", &[""]),
            ("torch\n", &["torch"]),
            ("a\nb\n", &["a", "b"]),
            ("a\nb", &["a", "b"]),
            ("a\r\nb\rc\n\n", &["a", "b", "c", ""]),
            ("a\u{2028}b\u{85}c", &["a", "b", "c"]),
            ("\n\n", &["", ""]),
        ];
        for (text, expected) in cases {
            assert_eq!(python_splitlines(text), *expected, "text {text:?}");
        }
    }

    #[test]
    fn extern_modules_text_is_newline_terminated() {
        assert_eq!(extern_modules_text::<&str>(&[]), "\n");
        assert_eq!(extern_modules_text(&["math", "json"]), "math\njson\n");
        assert_eq!(
            python_splitlines(&extern_modules_text(&["a", "b"])),
            ["a", "b"]
        );
    }
}
