//! The one error type of this crate.
//!
//! Every variant says *which* archive (its path, or `<memory>`), *which*
//! record, and where possible the byte offset of the problem, so a user can
//! find it with a hex editor or `zipinfo -v`.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why a record name is refused.
///
/// PyTorch only ever writes relative, `/`-separated names; anything else is
/// either a bug or an attempt to make an extracting tool write outside its
/// target folder ("zip slip").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameProblem {
    /// The name is empty, or only the package folder.
    Empty,
    /// Not valid UTF-8 (PyTorch writes UTF-8 names).
    NotUtf8,
    /// Starts with `/`.
    Absolute,
    /// Starts with a drive letter such as `C:`.
    DriveLetter,
    /// Contains a `\`; Windows tools would read it as a separator.
    Backslash,
    /// Contains a NUL byte.
    Nul,
    /// Has a `..` component.
    ParentDirectory,
    /// Has a `.` component.
    CurrentDirectory,
    /// Has an empty component (`a//b`) or a trailing `/`.
    EmptyComponent,
    /// A zip entry that is not inside any folder; packages keep every
    /// record under one top folder.
    NoPackageFolder,
    /// Longer than the limit (see [`ReadOptions::max_name_len`](crate::ReadOptions)).
    TooLong,
}

impl fmt::Display for NameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameProblem::Empty => "the name is empty",
            NameProblem::NotUtf8 => "the name is not valid UTF-8",
            NameProblem::Absolute => "absolute paths are not allowed",
            NameProblem::DriveLetter => "drive letters are not allowed",
            NameProblem::Backslash => "backslashes are not allowed (use '/')",
            NameProblem::Nul => "NUL bytes are not allowed",
            NameProblem::ParentDirectory => "'..' components are not allowed",
            NameProblem::CurrentDirectory => "'.' components are not allowed",
            NameProblem::EmptyComponent => "empty path components are not allowed",
            NameProblem::NoPackageFolder => {
                "the entry is not inside a package folder (a package keeps every record under one top folder)"
            }
            NameProblem::TooLong => "the name is too long",
        })
    }
}

/// Everything that can go wrong reading, writing or extracting a package.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// The operating system refused an operation on `path` (the reason is
    /// the error's `source()`).
    #[error("{path}")]
    Io {
        /// The file or folder involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The input has no zip central directory.
    #[error("{archive}: not a zip archive ({reason})")]
    NotAZip {
        /// The archive.
        archive: String,
        /// What the zip parser saw.
        reason: String,
    },

    /// The zip structure is damaged.
    #[error("{archive}: corrupt zip at byte {offset}: {reason}")]
    CorruptZip {
        /// The archive.
        archive: String,
        /// Byte offset of the damaged structure (0 when the parser cannot tell).
        offset: u64,
        /// What is wrong.
        reason: String,
    },

    /// PyTorch's reader (miniz, then `PyTorchStreamReader`) refuses this
    /// structure, so tpkg does too: reading what PyTorch cannot read, or
    /// reading it differently, is how scanners are bypassed.
    #[error(
        "{archive}: {structure} at byte {offset}{}: {error} (PyTorch refuses this too)",
        record.as_ref().map(|record| format!(" (record {record:?})")).unwrap_or_default()
    )]
    ZipRefused {
        /// The archive.
        archive: String,
        /// The record being read, when the problem shows only on reading it.
        record: Option<String>,
        /// Which zip structure is at fault.
        structure: crate::ZipStructure,
        /// Byte offset of that structure.
        offset: u64,
        /// miniz's error, as PyTorch reports it.
        error: crate::MinizError,
    },

    /// PyTorch "reads" this record without writing to its buffer (a
    /// directory entry, or one with no compressed bytes but a size): what
    /// it hands out is uninitialized memory, so there are no bytes to agree
    /// with.
    #[error(
        "{archive}: record {record:?} is a directory entry or has no data but claims {size} bytes; PyTorch would hand out uninitialized memory for it"
    )]
    IndeterminateRecord {
        /// The archive.
        archive: String,
        /// The record.
        record: String,
        /// The size it claims.
        size: u64,
    },

    /// A record's data reaches past the end of the file.
    #[error(
        "{archive}: record {record:?} needs bytes {offset}..{end} but the file has only {file_len} bytes (truncated?)"
    )]
    Truncated {
        /// The archive.
        archive: String,
        /// The record (name without the package folder).
        record: String,
        /// Where the record's data starts.
        offset: u64,
        /// Where it would end.
        end: u64,
        /// How long the file actually is.
        file_len: u64,
    },

    /// A record's bytes do not match the CRC-32 in its header.
    #[error(
        "{archive}: record {record:?} is corrupt: CRC-32 is {actual:#010x} but the header says {expected:#010x}"
    )]
    CrcMismatch {
        /// The archive.
        archive: String,
        /// The record.
        record: String,
        /// CRC-32 recorded in the zip header.
        expected: u32,
        /// CRC-32 of the bytes read.
        actual: u32,
    },

    /// A record name is unsafe or malformed.
    #[error("{archive}: entry {name:?}{}: {problem}", at_central_offset(*.offset))]
    BadName {
        /// The archive.
        archive: String,
        /// The name as stored (lossily decoded).
        name: String,
        /// Offset of the entry's central directory header (`None` outside a zip).
        offset: Option<u64>,
        /// Why it is refused.
        problem: NameProblem,
    },

    /// Two entries have the same record name.
    #[error(
        "{archive}: record {record:?} appears twice (second copy at central directory byte {offset})"
    )]
    DuplicateRecord {
        /// The archive.
        archive: String,
        /// The record.
        record: String,
        /// Offset of the second entry's central directory header.
        offset: u64,
    },

    /// An entry is not inside the package's one top-level folder.
    #[error(
        "{archive}: entry {name:?} (central directory byte {offset}) is outside the package folder {prefix:?}; a package keeps every record under exactly one top folder"
    )]
    OutsidePrefix {
        /// The archive.
        archive: String,
        /// The entry's full name.
        name: String,
        /// The package folder taken from the first entry.
        prefix: String,
        /// Offset of the entry's central directory header.
        offset: u64,
    },

    /// The archive has no records at all.
    #[error("{archive}: the package holds no records")]
    Empty {
        /// The archive.
        archive: String,
    },

    /// A size from the input is beyond a configured limit.
    #[error("{archive}: {what} is {value}, over the limit of {limit}")]
    LimitExceeded {
        /// The archive.
        archive: String,
        /// What was measured ("record \"x\" size", "number of entries").
        what: String,
        /// The value found.
        value: u64,
        /// The limit in force.
        limit: u64,
    },

    /// A compressed record inflates to a different size than declared.
    #[error(
        "{archive}: record {record:?} declares {declared} bytes but its data holds {actual}{}",
        if *.at_least { " or more" } else { "" }
    )]
    SizeMismatch {
        /// The archive.
        archive: String,
        /// The record.
        record: String,
        /// Size in the header.
        declared: u64,
        /// Size found (a lower bound when `at_least`).
        actual: u64,
        /// Whether reading stopped early because `actual` already exceeded `declared`.
        at_least: bool,
    },

    /// Copying a record's bytes into another file failed (reading this
    /// archive or writing the other file).
    #[error("{archive}: copying record {record:?} into another file failed")]
    CopyOut {
        /// The archive.
        archive: String,
        /// The record.
        record: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// A ranged read asked for bytes past the end of a record.
    #[error("{archive}: record {record:?} holds {size} bytes; bytes {start}..{end} were asked for")]
    RangeOutOfBounds {
        /// The archive.
        archive: String,
        /// The record.
        record: String,
        /// First byte asked for.
        start: u64,
        /// One past the last byte asked for.
        end: u64,
        /// The record's size.
        size: u64,
    },

    /// A record uses a compression method this crate does not read.
    #[error(
        "{archive}: record {record:?} uses compression method {method}; tpkg reads stored and deflated records only"
    )]
    UnsupportedCompression {
        /// The archive.
        archive: String,
        /// The record.
        record: String,
        /// The method as the zip parser names it.
        method: String,
    },

    /// A record is encrypted.
    #[error("{archive}: record {record:?} is encrypted, which packages never are")]
    Encrypted {
        /// The archive.
        archive: String,
        /// The record.
        record: String,
    },

    /// A directory package contains something other than files and folders.
    #[error("{archive}: {path} is {kind}; a package folder holds only regular files and folders")]
    UnsupportedEntry {
        /// The package folder.
        archive: String,
        /// The offending entry.
        path: PathBuf,
        /// What it is (shown as "a symbolic link", ...).
        kind: EntryKind,
    },

    /// A metadata record exists but cannot be understood.
    #[error("{archive}: record {record:?}: {reason}")]
    BadMetadata {
        /// The archive.
        archive: String,
        /// The metadata record.
        record: String,
        /// What is wrong.
        reason: String,
    },

    /// No record has this name.
    #[error("{archive}: no record named {record:?}")]
    RecordNotFound {
        /// The archive.
        archive: String,
        /// The name asked for.
        record: String,
    },

    /// The writer was asked to write a record twice.
    #[error("{archive}: record {record:?} was already written to this package")]
    DuplicateWrite {
        /// The archive being written.
        archive: String,
        /// The record.
        record: String,
    },

    /// The writer was asked to write a record it writes itself.
    #[error(
        "{archive}: record {record:?} is written by the package writer itself; use {instead} instead"
    )]
    ReservedRecord {
        /// The archive being written.
        archive: String,
        /// The record.
        record: String,
        /// What to call instead.
        instead: &'static str,
    },

    /// A streamed record was shorter or longer than the caller declared.
    #[error(
        "{archive}: record {record:?} was declared as {declared} bytes but its reader gave {actual}"
    )]
    LengthMismatch {
        /// The archive being written.
        archive: String,
        /// The record.
        record: String,
        /// Length promised by the caller.
        declared: u64,
        /// Bytes actually read (a lower bound when longer than declared).
        actual: u64,
    },

    /// The package folder name (prefix) is unusable.
    #[error("package folder name {prefix:?} is invalid: {reason}")]
    BadPrefix {
        /// The rejected prefix.
        prefix: String,
        /// Why.
        reason: &'static str,
    },

    /// The zip encoder failed.
    #[error("{archive}: writing record {record:?} failed")]
    Write {
        /// The archive being written.
        archive: String,
        /// The record being written ("" while finishing the archive).
        record: String,
        /// What failed.
        #[source]
        source: io::Error,
    },

    /// An extraction target already exists.
    #[error("{path} already exists; refusing to overwrite it")]
    DestinationExists {
        /// The existing path.
        path: PathBuf,
    },
}

/// What a package folder holds that is neither a file nor a folder
/// ([`ArchiveError::UnsupportedEntry`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EntryKind {
    /// A symbolic link (shown as "a symbolic link").
    SymbolicLink,
    /// A device, socket, FIFO... (shown as "a special file").
    SpecialFile,
}

impl std::fmt::Display for EntryKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EntryKind::SymbolicLink => "a symbolic link",
            EntryKind::SpecialFile => "a special file",
        })
    }
}

fn at_central_offset(offset: Option<u64>) -> String {
    offset.map_or_else(String::new, |offset| {
        format!(" (central directory byte {offset})")
    })
}

/// Shorthand for results of this crate.
pub type Result<T, E = ArchiveError> = std::result::Result<T, E>;

impl ArchiveError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        ArchiveError::Io {
            path: path.into(),
            source,
        }
    }

    /// Wraps this error into an [`io::Error`], so it can travel through
    /// [`std::io::Read`] and be recovered with [`ArchiveError::from_io`].
    pub(crate) fn into_io(self) -> io::Error {
        io::Error::other(self)
    }

    /// Recovers an `ArchiveError` that travelled through an `io::Error`, or
    /// wraps a genuine I/O error with `context`.
    pub(crate) fn from_io(error: io::Error, context: impl FnOnce(io::Error) -> Self) -> Self {
        if error
            .get_ref()
            .is_some_and(|inner| inner.is::<ArchiveError>())
        {
            match error
                .into_inner()
                .map(|inner| inner.downcast::<ArchiveError>())
            {
                Some(Ok(archive_error)) => *archive_error,
                // Unreachable: checked with `is` above. Keep a sane fallback.
                Some(Err(other)) => context(io::Error::other(other)),
                None => context(io::Error::other("unknown I/O error")),
            }
        } else {
            context(error)
        }
    }
}
