//! Writing packages in PyTorch's layout, atomically and deterministically.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufWriter, Cursor, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;
use zip::write::SimpleFileOptions;

use crate::error::{ArchiveError, Result};
use crate::metadata::{self, FORMAT_VERSION};
use crate::name::{self, IN_MEMORY_PREFIX};

/// Alignment of every record's data, as PyTorch's `PyTorchFileWriter` does it,
/// so storages can be memory-mapped and viewed in place.
pub const DATA_ALIGNMENT: u16 = 64;

/// The id of the local extra field PyTorch pads with: the bytes `F`, `B`.
const PADDING_EXTRA_FIELD_ID: u16 = u16::from_le_bytes(*b"FB");

/// Python version recorded when the caller gives none. PyTorch records the
/// writer's interpreter here and reads it back only as information.
pub const DEFAULT_PYTHON_VERSION: &str = "3.11.7";

/// Which of PyTorch's two zip layouts to write. Both come from PyTorch's
/// `PyTorchFileWriter`; they differ in their bookkeeping records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ArchiveLayout {
    /// A torch.package (`PackageExporter`): `.data/extern_modules`,
    /// `.data/python_version`, `.data/version` = 6, `byteorder`,
    /// `.data/serialization_id`.
    #[default]
    Package,
    /// A `torch.save` file: `.format_version`, `.storage_alignment`,
    /// `version` = 3, `byteorder`, `.data/serialization_id`; the caller
    /// writes `data.pkl` and `data/<key>` storages.
    TorchSave,
    /// A `torch.jit.save` file: `version` = 3, `byteorder`,
    /// `.data/serialization_id`; the caller writes `data.pkl`,
    /// `constants.pkl`, `code/...` and `data/<key>` storages.
    TorchScript,
}

/// Options for [`PackageWriter`].
///
/// Built from [`WriteOptions::default`] and the `with_*` methods:
///
/// ```
/// use tpkg_archive::{ArchiveLayout, WriteOptions};
/// let options = WriteOptions::default()
///     .with_layout(ArchiveLayout::TorchSave)
///     .with_prefix("model");
/// assert_eq!(options.prefix.as_deref(), Some("model"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteOptions {
    /// Package or `torch.save` bookkeeping.
    pub layout: ArchiveLayout,
    /// The package folder; by default the file stem (`model.pt` → `model`),
    /// or `archive` for in-memory packages, as PyTorch does.
    pub prefix: Option<String>,
    /// Content of `.data/python_version` unless
    /// [`PackageWriter::write_python_version`] is called.
    pub python_version: String,
    /// Content of `.data/serialization_id`; by default 40 digits derived from
    /// the package's content, so identical input gives identical bytes.
    pub serialization_id: Option<String>,
    /// Whether [`PackageWriter::finish`] fsyncs the file (and its folder)
    /// before the rename, so the new package survives a power loss as well
    /// as a crash. On by default. Off, the replacement is still atomic for
    /// every reader and against this process dying; only the data's trip to
    /// the disk is left to the kernel, as `cp` and PyTorch leave it. Ignored
    /// for in-memory packages.
    pub durable: bool,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            layout: ArchiveLayout::Package,
            prefix: None,
            python_version: DEFAULT_PYTHON_VERSION.to_owned(),
            serialization_id: None,
            durable: true,
        }
    }
}

impl WriteOptions {
    /// Sets [`layout`](Self::layout).
    #[must_use]
    pub fn with_layout(mut self, layout: ArchiveLayout) -> Self {
        self.layout = layout;
        self
    }

    /// Sets [`prefix`](Self::prefix), the package folder.
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// Sets [`python_version`](Self::python_version).
    #[must_use]
    pub fn with_python_version(mut self, python_version: impl Into<String>) -> Self {
        self.python_version = python_version.into();
        self
    }

    /// Sets [`serialization_id`](Self::serialization_id).
    #[must_use]
    pub fn with_serialization_id(mut self, serialization_id: impl Into<String>) -> Self {
        self.serialization_id = Some(serialization_id.into());
        self
    }

    /// Turns [`durable`](Self::durable) off: no fsync before the rename.
    #[must_use]
    pub fn without_fsync(mut self) -> Self {
        self.durable = false;
        self
    }

    /// [`durable`](Self::durable) as the [`Durability`] of an [`AtomicFile`].
    pub fn durability(&self) -> Durability {
        if self.durable {
            Durability::Fsync
        } else {
            Durability::NoFsync
        }
    }
}

/// Whether an [`AtomicFile`] reaches the disk before it replaces its
/// target (see [`WriteOptions::durable`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// [`AtomicFile::commit`] fsyncs the data and the folder around the
    /// rename, so the new file survives a power loss as well as a crash.
    #[default]
    Fsync,
    /// No fsync: the replacement is still atomic for every reader and
    /// against this process dying; the data's trip to the disk is left to
    /// the kernel, as `cp` leaves it.
    NoFsync,
}

/// Asks the kernel to start writing `file`'s dirty pages to the disk now,
/// without waiting for them (Linux: `sync_file_range` with
/// `SYNC_FILE_RANGE_WRITE`; nothing elsewhere). It makes nothing durable by
/// itself: an fsync must follow. Without it the kernel holds a gigabyte of
/// fresh data in the page cache until the fsync (background write-back
/// starts only past a tenth of memory), and the disk idles while it is
/// copied. Best effort: an error only means the fsync does all the work.
pub fn start_writeback(file: &File) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: the descriptor is open for the borrow of `file`; the call
        // only schedules write-back of the file's dirty pages.
        let _ =
            unsafe { libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE) };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = file;
}

mod sealed {
    pub trait Sealed {}
}

/// Where a [`PackageWriter`] puts its bytes: [`AtomicFile`] or [`InMemory`].
pub trait Destination: Write + sealed::Sealed {
    /// What [`PackageWriter::finish`] returns.
    type Output;
    #[doc(hidden)]
    fn commit(self) -> io::Result<Self::Output>;
    #[doc(hidden)]
    fn label(&self) -> String;
}

/// A file that appears complete or not at all: bytes go to a temporary
/// file next to the target, which [`commit`](Self::commit) fsyncs (when
/// durable) and renames over the target. Until then the target is
/// untouched; an error, a panic or dropping it deletes the temporary file.
/// (A process killed by SIGKILL can leave a `.tpkg-*.tmp` file behind,
/// never a damaged target.) [`PackageWriter::create`] writes packages
/// through one; other outputs (safetensors files) use it directly.
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// use std::io::Write;
/// use tpkg_archive::{AtomicFile, Durability};
///
/// let dir = tempfile::tempdir()?;
/// let target = dir.path().join("out.bin");
/// let mut file = AtomicFile::create(&target, Durability::Fsync)?;
/// file.write_all(b"header")?;
/// assert!(!target.exists());
/// file.commit()?;
/// assert_eq!(std::fs::read(&target)?, b"header");
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct AtomicFile {
    file: BufWriter<NamedTempFile>,
    target: PathBuf,
    durable: bool,
}

impl sealed::Sealed for AtomicFile {}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.file.write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl AtomicFile {
    /// Starts a file that will replace `target`. [`Durability::Fsync`] makes
    /// [`commit`](Self::commit) fsync the data and the folder (see
    /// [`WriteOptions::durable`]).
    pub fn create(target: impl AsRef<Path>, durability: Durability) -> io::Result<Self> {
        let target = target.as_ref().to_path_buf();
        let parent = match target.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let temp = tempfile::Builder::new()
            .prefix(".tpkg-")
            .suffix(".tmp")
            .tempfile_in(&parent)?;
        Ok(AtomicFile {
            file: BufWriter::with_capacity(1 << 20, temp),
            target,
            durable: durability == Durability::Fsync,
        })
    }

    /// The temporary file, with every buffered byte written to it: for
    /// copies that need a file rather than a writer
    /// ([`PackageReader::copy_range_to`](crate::PackageReader::copy_range_to)).
    /// Writes through it land at the file's position, after what was
    /// written before.
    pub fn as_file(&mut self) -> io::Result<&File> {
        self.file.flush()?;
        Ok(self.file.get_ref().as_file())
    }

    /// With [`Durability::Fsync`], asks the kernel to start writing what
    /// was written so far to the disk now, without waiting
    /// ([`start_writeback`]); nothing without. Called between large copies,
    /// it lets the disk work while the next bytes are copied, so the fsync
    /// at [`commit`](Self::commit) finds most of the data already written.
    pub fn start_writeback(&mut self) -> io::Result<()> {
        if self.durable {
            start_writeback(self.as_file()?);
        }
        Ok(())
    }

    /// The file this one will replace.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Writes out buffered bytes, fsyncs when durable, and renames the
    /// temporary file over the target (keeping the target's permissions,
    /// 0644 for a new file). Returns the target.
    pub fn commit(self) -> io::Result<PathBuf> {
        let temp = self.file.into_inner().map_err(|error| error.into_error())?;
        // Keep the permissions of the file we replace; new files get the
        // usual 0644 rather than the temporary file's 0600.
        let permissions = match std::fs::metadata(&self.target) {
            Ok(existing) => existing.permissions(),
            Err(_) => default_permissions(temp.as_file())?,
        };
        temp.as_file().set_permissions(permissions)?;
        if self.durable {
            temp.as_file().sync_all()?;
        }
        temp.persist(&self.target).map_err(|error| error.error)?;
        if self.durable {
            sync_parent_directory(&self.target);
        }
        Ok(self.target)
    }
}

impl Destination for AtomicFile {
    type Output = PathBuf;

    fn commit(self) -> io::Result<PathBuf> {
        AtomicFile::commit(self)
    }

    fn label(&self) -> String {
        self.target.display().to_string()
    }
}

#[cfg(unix)]
fn default_permissions(_file: &File) -> io::Result<std::fs::Permissions> {
    use std::os::unix::fs::PermissionsExt;
    Ok(std::fs::Permissions::from_mode(0o644))
}

#[cfg(not(unix))]
fn default_permissions(file: &File) -> io::Result<std::fs::Permissions> {
    Ok(file.metadata()?.permissions())
}

/// Makes the rename durable. Best effort: not every platform or file system
/// lets a folder be opened and synced, and the data itself is already synced.
fn sync_parent_directory(path: &Path) {
    #[cfg(unix)]
    if let Some(parent) = path.parent() {
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        if let Ok(dir) = File::open(parent) {
            let _ = dir.sync_all();
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// Writes into a `Vec<u8>` (PyTorch's "buffer" case; the folder is `archive`).
#[derive(Debug, Default)]
pub struct InMemory(Cursor<Vec<u8>>);

impl sealed::Sealed for InMemory {}

impl Write for InMemory {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Destination for InMemory {
    type Output = Vec<u8>;
    fn commit(self) -> io::Result<Vec<u8>> {
        Ok(self.0.into_inner())
    }
    fn label(&self) -> String {
        "<memory>".to_owned()
    }
}

/// Writes a torch.package archive exactly as PyTorch lays it out: one package
/// folder, every record stored (not compressed) with its data 64-byte
/// aligned, zip64 where needed, and the bookkeeping records
/// (`.data/extern_modules`, `.data/python_version`, `.data/version`,
/// `byteorder`, `.data/serialization_id`) written in PyTorch's order by
/// [`finish`](Self::finish).
///
/// Records are streamed: [`write_record_from`](Self::write_record_from)
/// copies from any reader without holding the record in memory. The same
/// records in the same order always give byte-identical archives.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use tpkg_archive::{PackageReader, PackageWriter, WriteOptions};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("hello.pt");
/// let mut writer = PackageWriter::create(&path, WriteOptions::default())?;
/// writer.write_record("greeting/hello.txt", b"hi there")?;
/// writer.write_extern_modules(&["math"])?;
/// writer.finish()?;
///
/// let reader = PackageReader::open(&path)?;
/// assert_eq!(reader.prefix(), "hello");
/// assert_eq!(&reader.read(".data/extern_modules")?[..], b"math\n");
/// # Ok(()) }
/// ```
pub struct PackageWriter<D: Destination> {
    zip: Option<zip::ZipWriter<zip::write::StreamWriter<D>>>,
    label: String,
    prefix: String,
    options: WriteOptions,
    written: HashSet<String>,
    /// Hash of (name, length, CRC-32) of every record, for the derived
    /// serialization id. Cheap: it never sees the data itself.
    content_digest: Sha256,
    extern_modules_written: bool,
    python_version_written: bool,
    /// Set when a write failed halfway; the archive can then only be dropped.
    poisoned: bool,
}

impl<D: Destination> std::fmt::Debug for PackageWriter<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackageWriter")
            .field("label", &self.label)
            .field("prefix", &self.prefix)
            .field("records", &self.written.len())
            .finish_non_exhaustive()
    }
}

impl PackageWriter<AtomicFile> {
    /// Starts a package that will replace `path` when finished.
    pub fn create(path: impl AsRef<Path>, options: WriteOptions) -> Result<Self> {
        let target = path.as_ref().to_path_buf();
        let prefix = match &options.prefix {
            Some(prefix) => prefix.clone(),
            None => name::prefix_for_path(&target)?,
        };
        let destination = AtomicFile::create(&target, options.durability()).map_err(|e| {
            let parent = target.parent().filter(|p| !p.as_os_str().is_empty());
            ArchiveError::io(parent.unwrap_or(Path::new(".")), e)
        })?;
        Self::new(destination, prefix, options)
    }
}

impl PackageWriter<InMemory> {
    /// Starts a package in memory; [`finish`](Self::finish) returns its bytes.
    pub fn in_memory(options: WriteOptions) -> Result<Self> {
        let prefix = options
            .prefix
            .clone()
            .unwrap_or_else(|| IN_MEMORY_PREFIX.to_owned());
        Self::new(InMemory::default(), prefix, options)
    }
}

impl<D: Destination> PackageWriter<D> {
    fn new(destination: D, prefix: String, options: WriteOptions) -> Result<Self> {
        name::validate_prefix(&prefix)?;
        let mut content_digest = Sha256::new();
        content_digest.update((prefix.len() as u64).to_le_bytes());
        content_digest.update(prefix.as_bytes());
        Ok(PackageWriter {
            label: destination.label(),
            zip: Some(zip::ZipWriter::new_stream(destination)),
            prefix,
            options,
            written: HashSet::new(),
            content_digest,
            extern_modules_written: false,
            python_version_written: false,
            poisoned: false,
        })
    }

    /// The package folder records are written under.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether a record of this name was written already.
    pub fn has_record(&self, name: &str) -> bool {
        self.written.contains(name)
    }

    /// Writes a record from memory.
    pub fn write_record(&mut self, name: &str, data: &[u8]) -> Result<()> {
        self.check_user_name(name)?;
        self.put_slice(name, data)
    }

    /// Streams a record of exactly `len` bytes from `reader`, without holding
    /// it in memory. Fails with [`ArchiveError::LengthMismatch`] if the reader
    /// gives fewer or more bytes; the writer is then unusable (drop it).
    pub fn write_record_from(&mut self, name: &str, reader: impl Read, len: u64) -> Result<()> {
        self.check_user_name(name)?;
        self.put(name, Source::Reader(reader), len)
    }

    /// Copies record `source_name` of the package `source` into this one as
    /// `name`, exactly as [`write_record_from`](Self::write_record_from)
    /// with [`PackageReader::open_record`](crate::PackageReader::open_record)
    /// would, but without copying through a buffer when it can: a stored
    /// record of a memory-mapped package is written straight from the map,
    /// a window at a time, its CRC-32 computed on another core while the
    /// window is written, and the window's mapped pages released behind
    /// (a gigabyte record never makes the process hold a gigabyte).
    ///
    /// ```
    /// # fn main() -> Result<(), tpkg_archive::ArchiveError> {
    /// use tpkg_archive::{PackageReader, PackageWriter, WriteOptions};
    /// let mut first = PackageWriter::in_memory(WriteOptions::default())?;
    /// first.write_record("res/blob.bin", &[1, 2, 3])?;
    /// let source = PackageReader::from_bytes(first.finish()?)?;
    /// let mut second = PackageWriter::in_memory(WriteOptions::default())?;
    /// second.copy_record("res/blob.bin", &source, "res/blob.bin")?;
    /// let copy = PackageReader::from_bytes(second.finish()?)?;
    /// assert_eq!(&copy.read("res/blob.bin")?[..], &[1, 2, 3]);
    /// # Ok(()) }
    /// ```
    pub fn copy_record(
        &mut self,
        name: &str,
        source: &crate::PackageReader,
        source_name: &str,
    ) -> Result<()> {
        self.check_user_name(name)?;
        let info = source.record(source_name)?;
        let whole = info.compressed_size == info.size && !source.options().verify_crc;
        if let Some(data) = source.stored_slice(source_name)?.filter(|_| whole) {
            let release = |offset, len| source.release_range(info, offset, len);
            return self.put::<io::Empty>(name, Source::Mapped(data, &release), info.size);
        }
        let stream = source.open_record(source_name)?;
        let len = stream.len();
        self.put(name, Source::Reader(stream), len)
    }

    /// Writes `.data/extern_modules` (each name followed by `\n`). Called by
    /// [`finish`](Self::finish) with no modules if never called.
    pub fn write_extern_modules<S: AsRef<str>>(&mut self, modules: &[S]) -> Result<()> {
        let text = metadata::extern_modules_text(modules);
        self.put_slice(metadata::EXTERN_MODULES, text.as_bytes())?;
        self.extern_modules_written = true;
        Ok(())
    }

    /// Writes `.data/python_version`. Called by [`finish`](Self::finish) with
    /// [`WriteOptions::python_version`] if never called.
    pub fn write_python_version(&mut self, version: &str) -> Result<()> {
        self.put_slice(metadata::PYTHON_VERSION, version.as_bytes())?;
        self.python_version_written = true;
        Ok(())
    }

    /// Writes the remaining bookkeeping records, the central directory, and
    /// commits the archive (for files: fsync unless [`WriteOptions::durable`]
    /// is off, then rename over the target).
    pub fn finish(mut self) -> Result<D::Output> {
        if self.options.layout == ArchiveLayout::TorchSave {
            // What torch.save (PyTorch 2.x) writes besides data.pkl and data/.
            for (name, content) in [
                (".format_version", &b"1"[..]),
                (".storage_alignment", b"64"),
                ("version", b"3\n"),
            ] {
                self.put_slice(name, content)?;
            }
            return self.finish_common();
        }
        if self.options.layout == ArchiveLayout::TorchScript {
            // What torch.jit.save (PyTorch 2.x) writes besides the module.
            self.put_slice("version", b"3\n")?;
            return self.finish_common();
        }
        if !self.extern_modules_written {
            self.write_extern_modules::<&str>(&[])?;
        }
        if !self.python_version_written {
            let version = self.options.python_version.clone();
            self.write_python_version(&version)?;
        }
        let version = format!("{FORMAT_VERSION}\n");
        self.put_slice(metadata::VERSION, version.as_bytes())?;
        self.finish_common()
    }

    /// `byteorder`, `.data/serialization_id`, the central directory, commit.
    fn finish_common(mut self) -> Result<D::Output> {
        let byteorder: &[u8] = if cfg!(target_endian = "little") {
            b"little"
        } else {
            b"big"
        };
        self.put_slice(metadata::BYTEORDER, byteorder)?;
        let serialization_id = match self.options.serialization_id.clone() {
            Some(id) => id,
            None => derived_serialization_id(self.content_digest.clone()),
        };
        self.put_slice(metadata::SERIALIZATION_ID, serialization_id.as_bytes())?;
        let label = self.label.clone();
        let failed = |source: io::Error| ArchiveError::Write {
            archive: label.clone(),
            record: String::new(),
            source,
        };
        let zip = self.zip.take().ok_or_else(|| failed(poisoned_error()))?;
        let destination = zip.finish().map_err(|e| failed(zip_to_io(e)))?;
        destination.into_inner().commit().map_err(failed)
    }

    fn check_user_name(&self, name: &str) -> Result<()> {
        name::validate_record_name(name).map_err(|problem| ArchiveError::BadName {
            archive: self.label.clone(),
            name: name.to_owned(),
            offset: None,
            problem,
        })?;
        let torch_save_reserved = self.options.layout == ArchiveLayout::TorchSave
            && matches!(name, ".format_version" | ".storage_alignment");
        let instead = match name {
            _ if torch_save_reserved => "finish (it writes this record)",
            metadata::EXTERN_MODULES => "write_extern_modules",
            metadata::PYTHON_VERSION => "write_python_version",
            metadata::VERSION
            | metadata::LEGACY_VERSION
            | metadata::BYTEORDER
            | metadata::SERIALIZATION_ID => "finish (it writes this record)",
            _ => return Ok(()),
        };
        Err(ArchiveError::ReservedRecord {
            archive: self.label.clone(),
            record: name.to_owned(),
            instead,
        })
    }

    fn put_slice(&mut self, name: &str, data: &[u8]) -> Result<()> {
        self.put::<io::Empty>(name, Source::Slice(data), data.len() as u64)
    }

    fn put<R: Read>(&mut self, name: &str, mut data: Source<'_, R>, len: u64) -> Result<()> {
        if self.written.contains(name) {
            return Err(ArchiveError::DuplicateWrite {
                archive: self.label.clone(),
                record: name.to_owned(),
            });
        }
        let label = self.label.clone();
        let failed = |source: io::Error| ArchiveError::Write {
            archive: label.clone(),
            record: name.to_owned(),
            source,
        };
        if self.poisoned {
            return Err(failed(poisoned_error()));
        }
        let zip = self.zip.as_mut().ok_or_else(|| failed(poisoned_error()))?;
        let options = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .last_modified_time(zip::DateTime::default())
            .large_file(len >= u64::from(u32::MAX))
            .with_alignment_and_header_id(DATA_ALIGNMENT, PADDING_EXTRA_FIELD_ID);
        // From here on a failure leaves a half-written entry: poison.
        self.poisoned = true;
        zip.start_file(format!("{}/{}", self.prefix, name), options)
            .map_err(|e| failed(zip_to_io(e)))?;
        let mut crc = crc32fast::Hasher::new();
        // Bytes in memory go straight to the file in large chunks (no copy
        // through a buffer: a gigabyte of tensors is written once). The zip
        // stream computes its own CRC-32 as it writes; the content digest's
        // is computed beside it, on another core for large slices.
        let data = match data {
            Source::Slice(slice) if slice.len() >= PARALLEL_CRC_MIN => {
                let written = std::thread::scope(|scope| {
                    let digest = scope.spawn(|| crc32fast::hash(slice));
                    let written = slice
                        .chunks(WRITE_CHUNK)
                        .try_for_each(|chunk| zip.write_all(chunk));
                    (written, digest.join())
                });
                match written {
                    (Err(error), _) => return Err(failed(error)),
                    (Ok(()), Ok(digest)) => return self.finish_entry(name, len, digest),
                    (Ok(()), Err(panic)) => std::panic::resume_unwind(panic),
                }
            }
            Source::Slice(slice) => {
                for chunk in slice.chunks(WRITE_CHUNK) {
                    crc.update(chunk);
                    zip.write_all(chunk).map_err(failed)?;
                }
                return self.finish_entry(name, len, crc.finalize());
            }
            Source::Mapped(slice, release) => {
                let crc = write_mapped(zip, slice, release).map_err(failed)?;
                return self.finish_entry(name, len, crc);
            }
            Source::Reader(ref mut reader) => reader,
        };
        let mut buffer = vec![0u8; usize::try_from(len.min(1 << 20)).unwrap_or(1 << 20)];
        let mut copied: u64 = 0;
        while copied < len {
            let want = buffer
                .len()
                .min(usize::try_from(len - copied).unwrap_or(usize::MAX));
            let got = match data.read(&mut buffer[..want]) {
                Ok(0) => {
                    return Err(ArchiveError::LengthMismatch {
                        archive: self.label.clone(),
                        record: name.to_owned(),
                        declared: len,
                        actual: copied,
                    });
                }
                Ok(got) => got,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(failed(error)),
            };
            crc.update(&buffer[..got]);
            zip.write_all(&buffer[..got]).map_err(failed)?;
            copied += got as u64;
        }
        let mut probe = [0u8; 1];
        loop {
            match data.read(&mut probe) {
                Ok(0) => break,
                Ok(_) => {
                    return Err(ArchiveError::LengthMismatch {
                        archive: self.label.clone(),
                        record: name.to_owned(),
                        declared: len,
                        actual: len + 1,
                    });
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(failed(error)),
            }
        }
        self.finish_entry(name, len, crc.finalize())
    }

    /// Records a fully written entry in the content digest.
    fn finish_entry(&mut self, name: &str, len: u64, crc: u32) -> Result<()> {
        self.poisoned = false;
        let digest = &mut self.content_digest;
        digest.update((name.len() as u64).to_le_bytes());
        digest.update(name.as_bytes());
        digest.update(len.to_le_bytes());
        digest.update(crc.to_le_bytes());
        self.written.insert(name.to_owned());
        Ok(())
    }
}

/// Slices are written in chunks of this size. Measured on ext4 in a VM:
/// `write(2)`s of 1 MiB copy a gigabyte into the page cache in a steady
/// 0.29 s; 8 MiB and larger writes took 0.4 to 3.4 s from run to run (as
/// `dd bs=8M` does against `dd bs=1M`).
const WRITE_CHUNK: usize = 1 << 20;

/// Slices at least this long have their content-digest CRC-32 computed on
/// another thread while they are written.
const PARALLEL_CRC_MIN: usize = 4 << 20;

/// What [`PackageWriter::put`] copies from.
enum Source<'a, R> {
    Slice(&'a [u8]),
    /// Bytes of a memory map, and how to release their pages (offset and
    /// length within the slice) once written.
    Mapped(&'a [u8], &'a dyn Fn(u64, u64)),
    Reader(R),
}

/// Bytes of a mapped record written and released a window at a time.
const MAPPED_WINDOW: usize = 8 << 20;

/// Writes `slice` to `zip` a window at a time, each window's CRC-32 computed
/// on another thread while it is written, its pages released after; returns
/// the CRC-32 of the whole.
fn write_mapped(zip: &mut impl Write, slice: &[u8], release: &dyn Fn(u64, u64)) -> io::Result<u32> {
    let mut crc = crc32fast::Hasher::new();
    let mut offset = 0u64;
    for window in slice.chunks(MAPPED_WINDOW) {
        let (written, digest) = std::thread::scope(|scope| {
            let digest = scope.spawn(|| crc32fast::hash(window));
            let written = window
                .chunks(WRITE_CHUNK)
                .try_for_each(|chunk| zip.write_all(chunk));
            (written, digest.join())
        });
        written?;
        let digest = digest.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        crc.combine(&crc32fast::Hasher::new_with_initial_len(
            digest,
            window.len() as u64,
        ));
        release(offset, window.len() as u64);
        offset += window.len() as u64;
    }
    Ok(crc.finalize())
}

fn poisoned_error() -> io::Error {
    io::Error::other("an earlier write failed halfway; this package writer can only be dropped")
}

fn zip_to_io(error: zip::result::ZipError) -> io::Error {
    match error {
        zip::result::ZipError::Io(error) => error,
        other => io::Error::other(other),
    }
}

/// 40 decimal digits, like PyTorch's random serialization id, but taken from
/// a digest of the content so that writing is deterministic.
fn derived_serialization_id(digest: Sha256) -> String {
    let hash = digest.finalize();
    let mut high = [0u8; 8];
    let mut low = [0u8; 8];
    high.copy_from_slice(&hash[..8]);
    low.copy_from_slice(&hash[8..16]);
    format!(
        "{:020}{:020}",
        u64::from_le_bytes(high),
        u64::from_le_bytes(low)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialization_id_has_forty_digits() {
        let id = derived_serialization_id(Sha256::new());
        assert_eq!(id.len(), 40);
        assert!(id.bytes().all(|b| b.is_ascii_digit()));
    }

    #[test]
    fn padding_extra_field_is_fb() {
        assert_eq!(PADDING_EXTRA_FIELD_ID.to_le_bytes(), *b"FB");
    }
}
