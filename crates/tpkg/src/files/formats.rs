//! Which PyTorch file a file is, told from its content, never its name.
//!
//! | format | what it is | how it is told |
//! |---|---|---|
//! | `package` | a torch.package (`PackageExporter`) | a zip with `.data/extern_modules`, or any other zip |
//! | `torch.save` | `torch.save` since PyTorch 1.6 | a zip with `data.pkl` and no `constants.pkl` |
//! | `torchscript` | `torch.jit.save` | a zip with `data.pkl` and `constants.pkl` |
//! | `pt2` | `torch.export.save` | a zip whose `archive_format` record says `pt2` |
//! | `torch.save-legacy` | `torch.save(_use_new_zipfile_serialization=False)`, and the pre-0.4 tar form | a pickle of PyTorch's magic number first; a tar with `sys_info` |
//! | `pickle` | a plain pickle (`pickle.dump`, several in a row allowed) | a pickle `PROTO` opcode first |
//!
//! A zip is told apart by the records PyTorch's own loaders look for, read
//! with PyTorch's reader rules ([`crate::archive`]).
//!
//! ```
//! # fn main() -> Result<(), tpkg::archive::ArchiveError> {
//! use tpkg::archive::{PackageReader, PackageWriter, WriteOptions};
//! use tpkg::formats::{FileFormat, zip_format};
//!
//! let mut writer = PackageWriter::in_memory(WriteOptions::default())?;
//! writer.write_record("m/model.pkl", b"\x80\x03N.")?;
//! writer.write_extern_modules(&["torch"])?;
//! let reader = PackageReader::from_bytes(writer.finish()?)?;
//! assert_eq!(zip_format(&reader), FileFormat::Package);
//! assert_eq!(FileFormat::Package.name(), "package");
//! # Ok(()) }
//! ```

use std::io::Read;
use std::path::Path;

use serde::Serialize;
use tpkg_archive::PackageReader;

/// A PyTorch file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub enum FileFormat {
    /// A torch.package archive (zip or directory form).
    #[serde(rename = "package")]
    Package,
    /// A zip `torch.save` file (PyTorch 1.6 and later).
    #[serde(rename = "torch.save")]
    TorchSave,
    /// A legacy `torch.save` stream, or the pre-0.4 tar form.
    #[serde(rename = "torch.save-legacy")]
    TorchSaveLegacy,
    /// A TorchScript file (`torch.jit.save`).
    #[serde(rename = "torchscript")]
    TorchScript,
    /// A `torch.export` archive (`torch.export.save`).
    #[serde(rename = "pt2")]
    Pt2,
    /// A plain pickle file.
    #[serde(rename = "pickle")]
    Pickle,
}

impl FileFormat {
    /// The name `inspect --json` gives it.
    pub fn name(self) -> &'static str {
        match self {
            FileFormat::Package => "package",
            FileFormat::TorchSave => "torch.save",
            FileFormat::TorchSaveLegacy => "torch.save-legacy",
            FileFormat::TorchScript => "torchscript",
            FileFormat::Pt2 => "pt2",
            FileFormat::Pickle => "pickle",
        }
    }

    /// Whether files of this format are zip archives (or a package folder).
    pub fn is_zip(self) -> bool {
        !matches!(self, FileFormat::TorchSaveLegacy | FileFormat::Pickle)
    }

    /// The pickle that holds the file's main object in a zip format:
    /// `data.pkl` for `torch.save` and TorchScript; `None` for a package
    /// (see [`main_pickle`]) and for formats without one.
    pub fn main_record(self) -> Option<&'static str> {
        match self {
            FileFormat::TorchSave | FileFormat::TorchScript => Some("data.pkl"),
            _ => None,
        }
    }
}

impl std::fmt::Display for FileFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The format of an opened zip (or package folder), from its records.
pub fn zip_format(reader: &PackageReader) -> FileFormat {
    let is_pt2 = reader
        .read("archive_format")
        .is_ok_and(|text| text.trim_ascii() == b"pt2");
    if is_pt2 {
        FileFormat::Pt2
    } else if reader.has_record(tpkg_archive::metadata::EXTERN_MODULES) {
        FileFormat::Package
    } else if reader.has_record("data.pkl") && reader.has_record("constants.pkl") {
        FileFormat::TorchScript
    } else if reader.has_record("data.pkl") {
        FileFormat::TorchSave
    } else {
        FileFormat::Package
    }
}

/// The pickle a command reads when none is named: the format's
/// [`main_record`](FileFormat::main_record), or in a package the first
/// pickle record outside `.data/` (`None` when there is no such record).
pub fn main_pickle(reader: &PackageReader, format: FileFormat) -> Option<String> {
    if let Some(record) = format.main_record() {
        return Some(record.to_owned());
    }
    reader
        .records()
        .iter()
        .map(|record| record.name.as_str())
        .find(|name| name.ends_with(".pkl") && !name.starts_with(".data/"))
        .map(str::to_owned)
}

/// What the first bytes of a file say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    /// A zip archive (local header signature, or anything else a zip
    /// reader should try: PyTorch finds archives from their end).
    Zip,
    /// A legacy `torch.save` stream: the magic-number pickle first.
    LegacyStream,
    /// A tar file (the pre-0.4 `torch.save` form when it holds `sys_info`).
    Tar,
    /// A pickle that is not a legacy `torch.save` stream.
    Pickle,
}

/// Tells a file's kind from its first 512 bytes.
///
/// `torch.load` takes a file for a zip only when it starts with a local
/// header (`PK\x03\x04`); torch.package's reader finds an archive from its
/// end. So anything starting `PK` is a zip; a pickle of PyTorch's magic
/// number (any protocol, [`looks_legacy`](crate::legacy::looks_legacy))
/// a legacy stream; a `ustar` header a tar; and a head that decodes as a
/// pickle, or as the start of one cut by the 512 bytes, a pickle (protocols
/// 0 and 1 have no `PROTO` opcode to tell them by). Anything else is left
/// to the zip reader, whose error names what it lacks.
pub fn sniff(head: &[u8]) -> Sniffed {
    if head.starts_with(b"PK") {
        Sniffed::Zip
    } else if crate::legacy::looks_legacy(head) {
        Sniffed::LegacyStream
    } else if head.len() >= 262 && &head[257..262] == b"ustar" {
        Sniffed::Tar
    } else if decodes_as_pickle(head) {
        Sniffed::Pickle
    } else {
        Sniffed::Zip
    }
}

/// Whether `head` (a file's first bytes) is a pickle as `pickle.load` sees
/// one: it decodes, is cut short by the end of `head`, or fails only after
/// it ran something (a call or an instantiation: CPython has run
/// everything before the failing opcode, so a payload followed by garbage
/// is still a payload; text that merely starts like an opcode,
/// `cats\ndogs`, runs nothing).
///
/// The deep check, by decoding (what [`sniff`] uses): it knows pickles of
/// every protocol, 0 and 1 included, which have no header. Compare
/// [`starts_like_pickle`], the two-byte check.
///
/// ```
/// use tpkg::formats::decodes_as_pickle;
/// assert!(decodes_as_pickle(b"\x80\x02K\x01."));
/// assert!(decodes_as_pickle(b"(lp0\nI1\na.")); // protocol 0
/// assert!(!decodes_as_pickle(b"just some text"));
/// ```
pub fn decodes_as_pickle(head: &[u8]) -> bool {
    use tpkg_pickle::{DecodeErrorKind, DecodeOptions, Symbolic, Value, decode_partial};
    if head.is_empty() {
        return false;
    }
    let (graph, result) = decode_partial(head, &DecodeOptions::default(), &Symbolic);
    match result {
        Ok(_) => true,
        Err(error) => {
            let cut_short = matches!(
                error.kind(),
                DecodeErrorKind::Truncated { .. } | DecodeErrorKind::MissingStop
            );
            let ran_something = graph
                .iter()
                .any(|(_, value)| matches!(value, Value::Reduce { .. } | Value::Object { .. }))
                || !graph.loose_builds().is_empty();
            (cut_short && matches!(head, [0x80, ..] | [b'(' | b']' | b'}' | b')' | b'c', ..]))
                || ran_something
        }
    }
}

/// Whether `bytes` start with a `PROTO` opcode of protocol 2 to 5, as every
/// pickle `save_pickle` and `torch.save` write does (`80 02` ... `80 05`).
///
/// The cheap check, of the first two bytes: protocols 0 and 1, which have
/// no header, fail it, and so does anything else; bytes that pass it may
/// still not decode. Compare [`decodes_as_pickle`], the deep check.
///
/// ```
/// use tpkg::formats::starts_like_pickle;
/// assert!(starts_like_pickle(b"\x80\x02}q\x00."));
/// assert!(!starts_like_pickle(b"(lp0\nI1\na."));
/// assert!(!starts_like_pickle(b"\x80"));
/// ```
pub fn starts_like_pickle(bytes: &[u8]) -> bool {
    matches!(bytes, [0x80, 2..=5, ..])
}

/// What the first bytes of `bytes` prove they are, if anything: a zip (a
/// local header first), a legacy `torch.save` (the magic-number pickle)
/// or a pickle ([`starts_like_pickle`]). Stricter than [`sniff`], which
/// reads every head as something (a zip when nothing else): for bytes
/// found inside a file, which are a file only when they say so.
///
/// ```
/// use tpkg::formats::{Sniffed, sniff_strict};
/// assert_eq!(sniff_strict(b"PK\x03\x04"), Some(Sniffed::Zip));
/// assert_eq!(sniff_strict(b"\x80\x04\x95"), Some(Sniffed::Pickle));
/// assert_eq!(sniff_strict(b"(lp0\nI1\na."), None);
/// assert_eq!(sniff_strict(b"raw tensor bytes"), None);
/// ```
pub fn sniff_strict(bytes: &[u8]) -> Option<Sniffed> {
    let head = &bytes[..bytes.len().min(512)];
    if head.starts_with(b"PK\x03\x04") {
        Some(Sniffed::Zip)
    } else if crate::legacy::looks_legacy(head) {
        Some(Sniffed::LegacyStream)
    } else if starts_like_pickle(head) {
        Some(Sniffed::Pickle)
    } else {
        None
    }
}

/// Reads the first 512 bytes of `path` and [`sniff`]s them; a folder is a
/// package's directory form.
pub fn sniff_path(path: &Path) -> std::io::Result<Sniffed> {
    if path.is_dir() {
        return Ok(Sniffed::Zip);
    }
    let mut head = Vec::with_capacity(512);
    std::fs::File::open(path)?
        .take(512)
        .read_to_end(&mut head)?;
    Ok(sniff(&head))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing_reads_content_not_names() {
        let legacy = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.\x80\x02M\xe9\x03.";
        assert_eq!(sniff(legacy), Sniffed::LegacyStream);
        assert_eq!(
            sniff(b"L119547037146038801333356L\n.I1001\n."),
            Sniffed::LegacyStream
        );
        assert_eq!(sniff(b"\x80\x04\x95\x05"), Sniffed::Pickle);
        // Protocol 0: `{'a': 1}` (no PROTO opcode), and one cut short.
        assert_eq!(sniff(b"(dp0\nVa\np1\nI1\ns."), Sniffed::Pickle);
        assert_eq!(sniff(b"(dp0\nVa\np1\nI1"), Sniffed::Pickle);
        assert_eq!(sniff(b"hello, world\n"), Sniffed::Zip);
        assert_eq!(sniff(b"PK\x03\x04rest"), Sniffed::Zip);
        let mut tar = vec![0u8; 512];
        tar[257..262].copy_from_slice(b"ustar");
        assert_eq!(sniff(&tar), Sniffed::Tar);
        assert_eq!(sniff(b""), Sniffed::Zip);
    }
}

/// Opening a PyTorch file, or reading its tensors, failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The zip (or folder) could not be read.
    #[error(transparent)]
    Archive(#[from] tpkg_archive::ArchiveError),
    /// The legacy `torch.save` file could not be read.
    #[error(transparent)]
    Legacy(#[from] crate::legacy::LegacyError),
    /// A pickle's tensors could not be read.
    #[error(transparent)]
    Tensors(#[from] crate::tensors::LoadTensorsError),
    /// A `.pt2` archive's weights could not be read.
    #[error(transparent)]
    Pt2(#[from] crate::pt2::Pt2Error),
    /// The file has no pickle to read when none is named.
    #[error("{path}: this {format} file has no pickle to read by default; name one")]
    NoMainPickle {
        /// The file.
        path: String,
        /// Its format.
        format: FileFormat,
    },
    /// A pickle of a plain pickle file does not decode.
    #[error("{path}: pickle at byte {offset}")]
    Pickle {
        /// The file.
        path: String,
        /// Where the pickle starts.
        offset: usize,
        /// Why it does not decode.
        source: tpkg_pickle::DecodeError,
    },
}

/// Any PyTorch file, opened by content: the one entry point to its
/// tensors, the same way for every format.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use tpkg::formats::PyTorchFile;
///
/// let file = PyTorchFile::open("checkpoint.pt")?;   // zip, legacy, .pt2, ...
/// let tensors = file.tensors(None)?;                // its main object's tensors
/// for index in 0..tensors.len() {
///     let view = tensors.view(index)?;              // zero-copy over the map
///     println!("{} {:?} {:?}", tensors.path(index), view.dtype(), view.shape());
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub enum PyTorchFile {
    /// A zip format (or a package folder).
    Zip {
        /// The archive, read with PyTorch's reader rules.
        reader: PackageReader,
        /// Which zip format.
        format: FileFormat,
    },
    /// A legacy `torch.save` stream or tar.
    Legacy(crate::legacy::LegacyFile),
    /// A plain pickle file: its pickles, in order.
    Pickle(Vec<tpkg_pickle::ValueGraph>),
}

impl PyTorchFile {
    /// Opens `path`, telling its format from its content.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, OpenError> {
        let path = path.as_ref();
        let io = |source| OpenError::Io {
            path: path.display().to_string(),
            source,
        };
        Ok(match sniff_path(path).map_err(io)? {
            Sniffed::Zip => {
                let reader = PackageReader::open(path)?;
                let format = zip_format(&reader);
                PyTorchFile::Zip { reader, format }
            }
            Sniffed::LegacyStream | Sniffed::Tar => {
                PyTorchFile::Legacy(crate::legacy::LegacyFile::open(path)?)
            }
            Sniffed::Pickle => {
                let bytes = std::fs::read(path).map_err(io)?;
                let options = tpkg_pickle::DecodeOptions::default();
                let pickles = tpkg_pickle::decode_stream(&bytes, &options, &tpkg_pickle::TorchData)
                    .map(|pickle| {
                        pickle.map(|(_, graph)| graph).map_err(|(offset, source)| {
                            OpenError::Pickle {
                                path: path.display().to_string(),
                                offset,
                                source,
                            }
                        })
                    })
                    .collect::<Result<_, _>>()?;
                PyTorchFile::Pickle(pickles)
            }
        })
    }

    /// The file's format.
    pub fn format(&self) -> FileFormat {
        match self {
            PyTorchFile::Zip { format, .. } => *format,
            PyTorchFile::Legacy(_) => FileFormat::TorchSaveLegacy,
            PyTorchFile::Pickle(_) => FileFormat::Pickle,
        }
    }

    /// The tensors of `pickle` (a record of a zip format), or by default of
    /// the file's main object: `data.pkl`, a package's first pickle, a
    /// `.pt2` archive's weights and constants, a legacy file's object, a
    /// pickle file's pickles ([`PackageTensors::from_pickles`](crate::tensors::PackageTensors::from_pickles)).
    pub fn tensors(
        &self,
        pickle: Option<&str>,
    ) -> Result<crate::tensors::PackageTensors<'_>, OpenError> {
        use crate::tensors::PackageTensors;
        match self {
            PyTorchFile::Zip { reader, format } => {
                if pickle.is_none() && *format == FileFormat::Pt2 {
                    return Ok(crate::pt2::pt2_tensors(reader)?);
                }
                let record = match pickle {
                    Some(record) => record.to_owned(),
                    None => {
                        main_pickle(reader, *format).ok_or_else(|| OpenError::NoMainPickle {
                            path: reader.label().to_owned(),
                            format: *format,
                        })?
                    }
                };
                Ok(PackageTensors::load(reader, &record)?)
            }
            PyTorchFile::Legacy(file) => Ok(PackageTensors::from_legacy(file)?),
            PyTorchFile::Pickle(pickles) => Ok(PackageTensors::from_pickles(pickles)?),
        }
    }
}
