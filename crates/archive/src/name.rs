//! Record names and the package folder (prefix).
//!
//! PyTorch stores every record under one top-level folder, the *prefix*
//! (`resnet.pt` holds `resnet/.data/version`, `resnet/model/model.pkl`, ...).
//! Readers strip it; record names seen by users never contain it.
//!
//! A record name is a relative, `/`-separated path with only normal
//! components. This is stricter than zip allows, and it is what makes
//! [`extract`](crate::extract) safe: a name that passes [`validate_record_name`]
//! can be joined to any folder without leaving it.

use std::path::Path;

use crate::error::{ArchiveError, NameProblem, Result};

/// Longest record name accepted by default (bytes). Zip allows 65535; PyTorch
/// names are far shorter, and a bound keeps hostile inputs cheap.
pub const DEFAULT_MAX_NAME_LEN: usize = 4096;

/// Checks that `name` is a safe record name: non-empty, relative, `/`-separated,
/// with no empty, `.` or `..` components, no backslash, NUL or drive letter.
///
/// ```
/// use tpkg_archive::{validate_record_name, NameProblem};
/// assert!(validate_record_name("model/state_dict.pkl").is_ok());
/// assert_eq!(validate_record_name("../etc/passwd"), Err(NameProblem::ParentDirectory));
/// assert_eq!(validate_record_name("/abs"), Err(NameProblem::Absolute));
/// ```
pub fn validate_record_name(name: &str) -> Result<(), NameProblem> {
    validate_with_limit(name, DEFAULT_MAX_NAME_LEN)
}

pub(crate) fn validate_with_limit(name: &str, max_len: usize) -> Result<(), NameProblem> {
    if name.is_empty() {
        return Err(NameProblem::Empty);
    }
    if name.len() > max_len {
        return Err(NameProblem::TooLong);
    }
    if name.starts_with('/') {
        return Err(NameProblem::Absolute);
    }
    if name.contains('\\') {
        return Err(NameProblem::Backslash);
    }
    if name.contains('\0') {
        return Err(NameProblem::Nul);
    }
    let bytes = name.as_bytes();
    if bytes.len() >= 2 && bytes[1] == b':' && bytes[0].is_ascii_alphabetic() {
        return Err(NameProblem::DriveLetter);
    }
    for component in name.split('/') {
        match component {
            "" => return Err(NameProblem::EmptyComponent),
            "." => return Err(NameProblem::CurrentDirectory),
            ".." => return Err(NameProblem::ParentDirectory),
            _ => {}
        }
    }
    Ok(())
}

/// Checks a package folder name: one valid path component.
pub fn validate_prefix(prefix: &str) -> Result<()> {
    let reason = if prefix.is_empty() {
        Some("it is empty")
    } else if prefix.contains('/') {
        Some("it contains '/'")
    } else {
        validate_record_name(prefix)
            .err()
            .map(|_| "it is not a plain folder name")
    };
    match reason {
        Some(reason) => Err(ArchiveError::BadPrefix {
            prefix: prefix.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// The package folder PyTorch uses for an archive written to `path`: the file
/// name without its last extension (`my.model.pt` → `my.model`).
///
/// ```
/// use std::path::Path;
/// assert_eq!(tpkg_archive::prefix_for_path(Path::new("out/my.model.pt")).unwrap(), "my.model");
/// ```
pub fn prefix_for_path(path: &Path) -> Result<String> {
    let stem = path.file_stem().ok_or_else(|| ArchiveError::BadPrefix {
        prefix: path.display().to_string(),
        reason: "the path has no file name",
    })?;
    let stem = stem.to_str().ok_or_else(|| ArchiveError::BadPrefix {
        prefix: stem.to_string_lossy().into_owned(),
        reason: "the file name is not valid UTF-8",
    })?;
    validate_prefix(stem)?;
    Ok(stem.to_owned())
}

/// The folder PyTorch uses for packages written to an in-memory buffer.
pub const IN_MEMORY_PREFIX: &str = "archive";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_names_table() {
        let cases: &[(&str, Result<(), NameProblem>)] = &[
            ("a", Ok(())),
            (".data/0.storage", Ok(())),
            ("pkg/sub/mod.py", Ok(())),
            ("weird name with spaces.txt", Ok(())),
            ("ünïcödé/名前.txt", Ok(())),
            ("..data", Ok(())),
            ("", Err(NameProblem::Empty)),
            ("/etc/passwd", Err(NameProblem::Absolute)),
            ("../x", Err(NameProblem::ParentDirectory)),
            ("a/../../x", Err(NameProblem::ParentDirectory)),
            ("a/..", Err(NameProblem::ParentDirectory)),
            ("./a", Err(NameProblem::CurrentDirectory)),
            ("a//b", Err(NameProblem::EmptyComponent)),
            ("a/", Err(NameProblem::EmptyComponent)),
            ("a\\b", Err(NameProblem::Backslash)),
            ("..\\x", Err(NameProblem::Backslash)),
            ("C:/x", Err(NameProblem::DriveLetter)),
            ("c:x", Err(NameProblem::DriveLetter)),
            ("a\0b", Err(NameProblem::Nul)),
        ];
        for (name, expected) in cases {
            assert_eq!(validate_record_name(name), *expected, "name {name:?}");
        }
        assert_eq!(
            validate_with_limit(&"x".repeat(11), 10),
            Err(NameProblem::TooLong)
        );
    }

    #[test]
    fn prefix_is_the_file_stem() {
        for (path, prefix) in [
            ("model.pt", "model"),
            ("dir/my.model.pt", "my.model"),
            ("noext", "noext"),
            ("/tmp/x.zip", "x"),
        ] {
            assert_eq!(prefix_for_path(Path::new(path)).unwrap(), prefix);
        }
        assert!(prefix_for_path(Path::new("/")).is_err());
        assert!(prefix_for_path(Path::new("..")).is_err());
    }
}
