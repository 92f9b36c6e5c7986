//! Reading packages: zip files (memory-mapped) and PyTorch's directory form.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;

use crate::error::{ArchiveError, NameProblem, Result};
use crate::listing::{ZipIndex, list_zip};
use crate::name::{self, DEFAULT_MAX_NAME_LEN};

/// How a record's bytes are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Stored as is (what PyTorch writes); readable zero-copy.
    Stored,
    /// Deflated (a package re-zipped by another tool); inflated while reading.
    Deflated,
}

/// One record of a package, as listed by [`PackageReader::records`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordInfo {
    /// Name without the package folder, e.g. `.data/0.storage`.
    pub name: String,
    /// Size of the record's content in bytes.
    pub size: u64,
    /// Bytes the record takes in the archive (equal to `size` unless deflated).
    pub compressed_size: u64,
    /// How the record is stored.
    pub compression: Compression,
    /// CRC-32 from the zip header; `None` in the directory form.
    pub crc32: Option<u32>,
    /// Offset of the record's data in the zip file; `None` in the directory form.
    pub data_offset: Option<u64>,
}

/// Which layout a package was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageFormat {
    /// A zip archive (file or bytes).
    Zip,
    /// PyTorch's unzipped directory form.
    Directory,
}

/// Limits and checks applied while reading untrusted packages.
///
/// The defaults accept every package PyTorch writes and bound what a hostile
/// one can make the reader do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOptions {
    /// Most entries a package may have.
    pub max_records: usize,
    /// Largest record content, in bytes.
    pub max_record_size: u64,
    /// Longest record name, in bytes.
    pub max_name_len: usize,
    /// Check CRC-32 whenever a zip record is read (not for
    /// [`PackageReader::stored_slice`], which is zero-copy by contract).
    ///
    /// Off by default, because PyTorch's reader does not check them
    /// (torch 2.13's miniz is built with
    /// `MINIZ_DISABLE_ZIP_READER_CRC32_CHECKS`): a record whose bytes do not
    /// match its CRC-32 is what PyTorch loads, so it is what a scanner must
    /// look at. [`PackageReader::verify`] and
    /// [`PackageReader::open_record_verified`] check them regardless.
    pub verify_crc: bool,
    /// Memory-map zip files instead of reading them into memory.
    pub mmap: bool,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            max_records: 1 << 20,
            max_record_size: 1 << 40,
            max_name_len: DEFAULT_MAX_NAME_LEN,
            verify_crc: false,
            mmap: true,
        }
    }
}

/// A read-only view of a torch.package, zip or directory.
///
/// Opening validates the whole container: every name is safe, under one
/// package folder, unique, and every record's bytes lie inside the file.
/// After that, reads only fail on I/O errors or corrupt record data.
///
/// ```
/// # fn main() -> Result<(), tpkg_archive::ArchiveError> {
/// use tpkg_archive::{PackageReader, PackageWriter, WriteOptions};
///
/// let mut writer = PackageWriter::in_memory(WriteOptions::default())?;
/// writer.write_record("notes/readme.txt", b"hello")?;
/// let bytes = writer.finish()?;
///
/// let reader = PackageReader::from_bytes(bytes)?;
/// assert_eq!(reader.prefix(), "archive");
/// assert_eq!(&reader.read("notes/readme.txt")?[..], b"hello");
/// assert!(reader.has_record(".data/version"));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct PackageReader {
    label: String,
    prefix: String,
    records: Vec<RecordInfo>,
    /// Exact names, for the directory form.
    index: HashMap<String, usize>,
    /// miniz's directory and every entry, for zip archives.
    zip_index: Option<ZipIndex>,
    storage: Storage,
    options: ReadOptions,
}

#[derive(Debug)]
enum Storage {
    Zip(Bytes),
    Directory(PathBuf),
}

/// The bytes of a zip archive: a memory map or an owned buffer, shared so the
/// zip parser and the reader can both hold them.
#[derive(Debug, Clone)]
struct Bytes(Arc<Backing>);

#[derive(Debug)]
enum Backing {
    /// The map, and the file it maps (for kernel copies that leave the
    /// map's pages alone).
    Mapped {
        map: Mmap,
        file: File,
    },
    Owned(Vec<u8>),
}

impl Bytes {
    /// Drops this process's pages of `offset..offset + len` when the bytes
    /// are a memory map ([`release_pages`]); nothing otherwise.
    fn release(&self, offset: u64, len: u64) {
        #[cfg(unix)]
        if let Backing::Mapped { map, .. } = &*self.0 {
            release_pages(map, offset, len);
        }
        #[cfg(not(unix))]
        let _ = (offset, len);
    }
}

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        match &*self.0 {
            Backing::Mapped { map, .. } => map,
            Backing::Owned(bytes) => bytes,
        }
    }
}

impl PackageReader {
    /// Opens a package file or a package folder with default options.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, ReadOptions::default())
    }

    /// Opens a package file (zip) or folder (directory form).
    pub fn open_with(path: impl AsRef<Path>, options: ReadOptions) -> Result<Self> {
        let path = path.as_ref();
        let metadata = std::fs::metadata(path).map_err(|e| ArchiveError::io(path, e))?;
        if metadata.is_dir() {
            Self::open_directory(path, options)
        } else {
            Self::open_zip(path, options)
        }
    }

    /// Opens a zip package from a file.
    pub fn open_zip(path: impl AsRef<Path>, options: ReadOptions) -> Result<Self> {
        let path = path.as_ref();
        let mut file = File::open(path).map_err(|e| ArchiveError::io(path, e))?;
        let len = file
            .metadata()
            .map_err(|e| ArchiveError::io(path, e))?
            .len();
        let backing = if options.mmap && len > 0 {
            // SAFETY: the map is read-only. As with every mmap-based reader,
            // another process truncating or rewriting the file while it is
            // open can change or invalidate the bytes; tpkg's own writer
            // never does that (it replaces files by rename).
            let map = unsafe { Mmap::map(&file) }.map_err(|e| ArchiveError::io(path, e))?;
            Backing::Mapped { map, file }
        } else {
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)
                .map_err(|e| ArchiveError::io(path, e))?;
            Backing::Owned(bytes)
        };
        Self::from_backing(path.display().to_string(), backing, options)
    }

    /// Opens a zip package held in memory (PyTorch's `<binary>` case).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self> {
        Self::from_bytes_with(bytes, ReadOptions::default())
    }

    /// Opens a zip package held in memory, with options.
    pub fn from_bytes_with(bytes: Vec<u8>, options: ReadOptions) -> Result<Self> {
        Self::from_backing("<memory>".to_owned(), Backing::Owned(bytes), options)
    }

    fn from_backing(label: String, backing: Backing, options: ReadOptions) -> Result<Self> {
        let bytes = Bytes(Arc::new(backing));
        let listing = list_zip(&label, bytes.as_ref(), &options)?;
        Ok(PackageReader {
            label,
            prefix: listing.prefix,
            index: HashMap::new(),
            zip_index: Some(listing.index),
            records: listing.records,
            storage: Storage::Zip(bytes),
            options,
        })
    }

    /// Opens PyTorch's directory form: `root` is the package folder itself
    /// (what unzipping a package creates), and its name is the prefix.
    ///
    /// Unlike PyTorch's `DirectoryReader`, hidden records (`.data/...`) are
    /// listed too, so both forms of one package list the same records.
    /// Symbolic links and special files are refused: they could point
    /// outside the package.
    pub fn open_directory(root: impl AsRef<Path>, options: ReadOptions) -> Result<Self> {
        let root = root.as_ref();
        let label = root.display().to_string();
        let prefix = root
            .file_name()
            .and_then(|name| name.to_str())
            .ok_or_else(|| ArchiveError::BadPrefix {
                prefix: label.clone(),
                reason: "the folder has no UTF-8 name",
            })?
            .to_owned();
        name::validate_prefix(&prefix)?;
        let mut records = Vec::new();
        let walk = walkdir::WalkDir::new(root)
            .follow_links(false)
            .sort_by_file_name()
            .min_depth(1);
        for entry in walk {
            let entry = entry.map_err(|error| {
                let path = error.path().unwrap_or(root).to_path_buf();
                let source = error
                    .into_io_error()
                    .unwrap_or_else(|| io::Error::other("file system loop"));
                ArchiveError::io(path, source)
            })?;
            let file_type = entry.file_type();
            if file_type.is_dir() {
                continue;
            }
            if !file_type.is_file() {
                return Err(ArchiveError::UnsupportedEntry {
                    archive: label,
                    path: entry.path().to_path_buf(),
                    kind: if file_type.is_symlink() {
                        "a symbolic link"
                    } else {
                        "a special file"
                    },
                });
            }
            if records.len() >= options.max_records {
                return Err(ArchiveError::LimitExceeded {
                    archive: label,
                    what: "number of records".to_owned(),
                    value: records.len() as u64 + 1,
                    limit: options.max_records as u64,
                });
            }
            let relative = entry.path().strip_prefix(root).unwrap_or(entry.path());
            let name = relative_record_name(relative).map_err(|problem| ArchiveError::BadName {
                archive: label.clone(),
                name: relative.to_string_lossy().into_owned(),
                offset: None,
                problem,
            })?;
            name::validate_with_limit(&name, options.max_name_len).map_err(|problem| {
                ArchiveError::BadName {
                    archive: label.clone(),
                    name: name.clone(),
                    offset: None,
                    problem,
                }
            })?;
            let size = entry
                .metadata()
                .map_err(|e| ArchiveError::io(entry.path(), e.into()))?
                .len();
            check_size(&label, &name, size, &options)?;
            records.push(RecordInfo {
                name,
                size,
                compressed_size: size,
                compression: Compression::Stored,
                crc32: None,
                data_offset: None,
            });
        }
        if records.is_empty() {
            return Err(ArchiveError::Empty { archive: label });
        }
        Ok(PackageReader {
            label,
            prefix,
            index: index_of(&records),
            zip_index: None,
            records,
            storage: Storage::Directory(root.to_path_buf()),
            options,
        })
    }

    /// The whole zip file's bytes (the memory map), for tools that inspect
    /// the container itself (see [`zip_anomalies`](crate::zip_anomalies));
    /// `None` for the directory form.
    pub fn zip_bytes(&self) -> Option<&[u8]> {
        match &self.storage {
            Storage::Zip(bytes) => Some(bytes.as_ref()),
            Storage::Directory(_) => None,
        }
    }

    /// The archive's path as given, or `<memory>`; used in error messages.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The package folder every record sits under.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether this is a zip or a directory package.
    pub fn format(&self) -> PackageFormat {
        match self.storage {
            Storage::Zip(_) => PackageFormat::Zip,
            Storage::Directory(_) => PackageFormat::Directory,
        }
    }

    /// All records, in archive order (zip) or sorted by path (directory).
    pub fn records(&self) -> &[RecordInfo] {
        &self.records
    }

    /// Whether a record with this name (without the package folder) exists.
    ///
    /// In a zip, names are found as PyTorch finds them: by miniz's
    /// ASCII case-insensitive search, so `DATA.PKL` finds `data.pkl`.
    pub fn has_record(&self, name: &str) -> bool {
        match (&self.zip_index, &self.storage) {
            (Some(zip), Storage::Zip(bytes)) => zip.locate(bytes.as_ref(), name).is_some(),
            _ => self.index.contains_key(name),
        }
    }

    /// Information on one record: in a zip, the entry PyTorch reads for
    /// this name (see [`has_record`](Self::has_record)). Fails, as PyTorch's
    /// `get_record` does, when that entry cannot be read (a damaged local
    /// header, data past the end of the file, an unsupported method...).
    pub fn record(&self, name: &str) -> Result<&RecordInfo> {
        let not_found = || ArchiveError::RecordNotFound {
            archive: self.label.clone(),
            record: name.to_owned(),
        };
        match (&self.zip_index, &self.storage) {
            (Some(zip), Storage::Zip(bytes)) => {
                let entry = zip.locate(bytes.as_ref(), name).ok_or_else(not_found)?;
                zip.entry(&self.label, entry)
            }
            _ => self
                .index
                .get(name)
                .map(|&i| &self.records[i])
                .ok_or_else(not_found),
        }
    }

    /// A record's whole content. Stored zip records are borrowed from the
    /// memory map (no copy); deflated and directory records are read into a
    /// buffer. The CRC-32 is checked unless [`ReadOptions::verify_crc`] is off.
    pub fn read(&self, name: &str) -> Result<Cow<'_, [u8]>> {
        let info = self.record(name)?;
        if let Some(slice) = self.stored_slice(name)? {
            if self.options.verify_crc {
                self.check_crc(info, crc32fast::hash(slice))?;
            }
            return Ok(Cow::Borrowed(slice));
        }
        let mut reader = self.open_record(name)?;
        // Grow with the data actually produced, never trusting the header
        // for more than the bounded `size` (checked against the ratio limit).
        let mut buffer = Vec::with_capacity(usize::try_from(info.size).unwrap_or(0).min(1 << 26));
        reader
            .read_to_end(&mut buffer)
            .map_err(|error| self.record_io_error(name, error))?;
        Ok(Cow::Owned(buffer))
    }

    /// Zero-copy access to a stored zip record: a slice of the memory map,
    /// bounds-checked at open, **without** a CRC check (use [`read`](Self::read)
    /// or [`verify`](Self::verify) for that). `None` for deflated records and
    /// for directory packages.
    pub fn stored_slice(&self, name: &str) -> Result<Option<&[u8]>> {
        let info = self.record(name)?;
        let (Storage::Zip(bytes), Some(offset), Compression::Stored) =
            (&self.storage, info.data_offset, info.compression)
        else {
            return Ok(None);
        };
        // Both bounds were checked against the file length when opening.
        let start = offset as usize;
        let end = start + info.size as usize;
        Ok(bytes.as_ref().get(start..end))
    }

    /// Streams a record's content. The reader yields exactly the declared
    /// size and fails (as an `io::Error` wrapping an [`ArchiveError`]) if the
    /// data is shorter, longer, or does not match its CRC-32.
    pub fn open_record(&self, name: &str) -> Result<RecordReader<'_>> {
        self.open_record_checking(name, self.options.verify_crc)
    }

    /// [`open_record`](Self::open_record) that checks the CRC-32 whatever
    /// [`ReadOptions::verify_crc`] says: for verification.
    pub fn open_record_verified(&self, name: &str) -> Result<RecordReader<'_>> {
        self.open_record_checking(name, true)
    }

    fn open_record_checking(&self, name: &str, check_crc: bool) -> Result<RecordReader<'_>> {
        let info = self.record(name)?;
        let inner: Box<dyn Read + '_> = match (&self.storage, info.compression) {
            (Storage::Zip(bytes), compression) => {
                let start = info.data_offset.unwrap_or(0) as usize;
                let end = start + info.compressed_size as usize;
                let data = bytes.as_ref().get(start..end).unwrap_or(&[]);
                match (compression, &*bytes.0) {
                    #[cfg(unix)]
                    (Compression::Stored, Backing::Mapped { map, .. }) => Box::new(MappedRecord {
                        map,
                        data,
                        start,
                        read: 0,
                        released: 0,
                    }),
                    (Compression::Stored, _) => Box::new(data),
                    (Compression::Deflated, _) => Box::new(flate2::read::DeflateDecoder::new(data)),
                }
            }
            (Storage::Directory(root), _) => {
                let path = root.join(name);
                let file = File::open(&path).map_err(|e| ArchiveError::io(&path, e))?;
                Box::new(file)
            }
        };
        let expected_crc = info.crc32.filter(|_| check_crc);
        Ok(RecordReader {
            inner,
            archive: &self.label,
            record: &info.name,
            declared: info.size,
            produced: 0,
            hasher: expected_crc.map(|crc| (crc32fast::Hasher::new(), crc)),
            strict: check_crc,
            finished: false,
        })
    }

    /// Reads bytes `offset..offset + buf.len()` of a record into `buf`.
    ///
    /// For a stored record of a memory-mapped package the bytes are copied
    /// out of the map, whose pages of the range are then released (as
    /// [`release`](Self::release) does): the process ends up holding `buf`,
    /// not `buf` plus the mapped pages. It is the way to load large records
    /// (tensor storages) into memory the caller owns, for example a
    /// libtorch tensor's. A part of a record has no CRC to check; use
    /// [`verify`](Self::verify) for that. Deflated records are decompressed
    /// up to the range.
    ///
    /// ```
    /// # fn main() -> Result<(), tpkg_archive::ArchiveError> {
    /// use tpkg_archive::{PackageReader, PackageWriter, WriteOptions};
    ///
    /// let mut writer = PackageWriter::in_memory(WriteOptions::default())?;
    /// writer.write_record(".data/0.storage", b"0123456789")?;
    /// let reader = PackageReader::from_bytes(writer.finish()?)?;
    /// let mut middle = [0u8; 4];
    /// reader.read_range_into(".data/0.storage", 3, &mut middle)?;
    /// assert_eq!(&middle, b"3456");
    /// assert!(reader.read_range_into(".data/0.storage", 8, &mut middle).is_err());
    /// # Ok(()) }
    /// ```
    pub fn read_range_into(&self, name: &str, offset: u64, buf: &mut [u8]) -> Result<()> {
        let info = self.record(name)?;
        let len = buf.len() as u64;
        self.check_range(info, offset, len)?;
        let copied = |slice: &[u8]| buf.copy_from_slice(slice);
        if self.use_stored_range(info, offset, len, copied)?.is_some() {
            return Ok(());
        }
        let mut reader = self.open_record(name)?;
        io::copy(&mut (&mut reader).take(offset), &mut io::sink())
            .and_then(|_| reader.read_exact(buf))
            .map_err(|error| self.record_io_error(name, error))
    }

    /// Bytes `offset..offset + len` of a record, in a buffer the caller
    /// owns: [`read_range_into`](Self::read_range_into) without first
    /// zeroing a buffer.
    pub fn read_range(&self, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let info = self.record(name)?;
        self.check_range(info, offset, len)?;
        if let Some(owned) = self.use_stored_range(info, offset, len, <[u8]>::to_vec)? {
            return Ok(owned);
        }
        let mut owned = vec![0u8; usize::try_from(len).unwrap_or(usize::MAX)];
        self.read_range_into(name, offset, &mut owned)?;
        Ok(owned)
    }

    /// Drops this process's mapped pages of a stored record, as
    /// [`read_range`](Self::read_range) and streaming reads do behind
    /// themselves: the bytes stay readable (a later access faults them in
    /// again from the file) and stay in the page cache. For callers that
    /// went through a large record with [`stored_slice`](Self::stored_slice)
    /// and are done with it, so a pass over a whole archive does not keep
    /// all of it resident. A no-op for records not in a memory map.
    pub fn release(&self, name: &str) -> Result<()> {
        let info = self.record(name)?;
        self.use_stored_range(info, 0, info.size, |_| ())?;
        Ok(())
    }

    /// For a stored zip record: runs `use_bytes` on its bytes
    /// `offset..offset + len` (already checked against its size), then
    /// releases their mapped pages. `None` for other records.
    fn use_stored_range<T>(
        &self,
        info: &RecordInfo,
        offset: u64,
        len: u64,
        use_bytes: impl FnOnce(&[u8]) -> T,
    ) -> Result<Option<T>> {
        let (Storage::Zip(bytes), Compression::Stored, Some(start)) =
            (&self.storage, info.compression, info.data_offset)
        else {
            return Ok(None);
        };
        let used = use_bytes(self.stored_range(bytes, start, offset, len, &info.name)?);
        bytes.release(start + offset, len);
        Ok(Some(used))
    }

    /// Appends bytes `offset..offset + len` of a record to `out` (at its
    /// current position).
    ///
    /// For a stored record of a package file on Linux the kernel copies
    /// from file to file (`copy_file_range`, as `cp` does): the bytes never
    /// pass through this process, and the map's pages are not touched.
    /// Otherwise they are written from memory or streamed. No CRC check, as
    /// for [`read_range_into`](Self::read_range_into).
    pub fn copy_range_to(&self, name: &str, offset: u64, len: u64, out: &File) -> Result<()> {
        let info = self.record(name)?;
        self.check_range(info, offset, len)?;
        let copy_failed = |source: io::Error| ArchiveError::CopyOut {
            archive: self.label.clone(),
            record: name.to_owned(),
            source,
        };
        let mut out = out;
        if let (Storage::Zip(bytes), Compression::Stored, Some(start)) =
            (&self.storage, info.compression, info.data_offset)
        {
            #[cfg(target_os = "linux")]
            if let Backing::Mapped { file, .. } = &*bytes.0 {
                let copied = kernel_copy(file, start + offset, out, len).map_err(copy_failed)?;
                if copied == len {
                    return Ok(());
                }
                // The file systems do not support it: write from the map.
                let slice = self.stored_range(bytes, start, offset + copied, len - copied, name)?;
                return out.write_all(slice).map_err(copy_failed);
            }
            let slice = self.stored_range(bytes, start, offset, len, name)?;
            return out.write_all(slice).map_err(copy_failed);
        }
        let mut reader = self.open_record(name)?;
        io::copy(&mut (&mut reader).take(offset), &mut io::sink())
            .map_err(|error| self.record_io_error(name, error))?;
        let copied = io::copy(&mut (&mut reader).take(len), &mut out).map_err(copy_failed)?;
        if copied != len {
            return Err(self.record_io_error(name, io::ErrorKind::UnexpectedEof.into()));
        }
        Ok(())
    }

    fn check_range(&self, info: &RecordInfo, offset: u64, len: u64) -> Result<()> {
        match offset.checked_add(len) {
            Some(end) if end <= info.size => Ok(()),
            _ => Err(ArchiveError::RangeOutOfBounds {
                archive: self.label.clone(),
                record: info.name.clone(),
                start: offset,
                end: offset.saturating_add(len),
                size: info.size,
            }),
        }
    }

    /// Bytes `offset..offset + len` of a stored record whose data starts at
    /// `start` (bounds were checked at open and by `check_range`).
    fn stored_range<'b>(
        &self,
        bytes: &'b Bytes,
        start: u64,
        offset: u64,
        len: u64,
        name: &str,
    ) -> Result<&'b [u8]> {
        let from = usize::try_from(start + offset).ok();
        let to = usize::try_from(start + offset + len).ok();
        from.zip(to)
            .and_then(|(from, to)| bytes.as_ref().get(from..to))
            .ok_or_else(|| self.record_io_error(name, io::ErrorKind::UnexpectedEof.into()))
    }

    /// Reads every record once, checking sizes and CRC-32s (whatever
    /// [`ReadOptions::verify_crc`] says: PyTorch does not check them, a
    /// verification does).
    pub fn verify(&self) -> Result<()> {
        for info in &self.records {
            let mut reader = self.open_record_checking(&info.name, true)?;
            io::copy(&mut reader, &mut io::sink())
                .map_err(|error| self.record_io_error(&info.name, error))?;
        }
        Ok(())
    }

    fn check_crc(&self, info: &RecordInfo, actual: u32) -> Result<()> {
        match info.crc32 {
            Some(expected) if expected != actual => Err(ArchiveError::CrcMismatch {
                archive: self.label.clone(),
                record: info.name.clone(),
                expected,
                actual,
            }),
            _ => Ok(()),
        }
    }

    fn record_io_error(&self, name: &str, error: io::Error) -> ArchiveError {
        ArchiveError::from_io(error, |source| match &self.storage {
            Storage::Directory(root) => ArchiveError::io(root.join(name), source),
            Storage::Zip(_) => ArchiveError::CorruptZip {
                archive: self.label.clone(),
                offset: self
                    .record(name)
                    .ok()
                    .and_then(|info| info.data_offset)
                    .unwrap_or(0),
                reason: format!("record {name:?}: {source}"),
            },
        })
    }
}

/// A stored record of a mapped package, read front to back. Every 8 MiB
/// read, the pages behind are released ([`release_pages`]), so streaming a
/// large archive (verify, repack, extract) does not leave all of it
/// resident in the process.
#[cfg(unix)]
struct MappedRecord<'a> {
    map: &'a Mmap,
    /// The record's bytes in the map.
    data: &'a [u8],
    /// Where `data` starts in the map.
    start: usize,
    /// Bytes of `data` read so far.
    read: usize,
    /// Bytes of `data` whose pages were released.
    released: usize,
}

#[cfg(unix)]
impl Read for MappedRecord<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        const RELEASE_STEP: usize = 8 << 20;
        let rest = self.data.get(self.read..).unwrap_or(&[]);
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.read += n;
        let done = self.read == self.data.len();
        if self.read - self.released >= RELEASE_STEP || (done && self.read > self.released) {
            let from = (self.start + self.released) as u64;
            release_pages(self.map, from, (self.read - self.released) as u64);
            self.released = self.read;
        }
        Ok(n)
    }
}

/// Tells the kernel this process no longer needs the mapped pages of
/// `offset..offset + len` (they stay in the page cache), so a process
/// copying a whole archive out holds the copies, not the copies plus the
/// map. Best effort, and only for ranges of 1 MiB or more: for small
/// records the system call costs more than the pages.
///
/// Public for the other readers of memory-mapped PyTorch files (the legacy
/// `torch.save` stream), which release storages the same way.
#[cfg(unix)]
pub fn release_pages(map: &Mmap, offset: u64, len: u64) {
    const RELEASE_MIN: u64 = 1 << 20;
    let (Ok(offset), Ok(len)) = (usize::try_from(offset), usize::try_from(len)) else {
        return;
    };
    if (len as u64) < RELEASE_MIN {
        return;
    }
    // SAFETY: the map is a read-only shared mapping of a file. Dropping its
    // pages only makes the next access (through any slice of it) fault
    // them in again from the file, with the same content; unlike a private
    // mapping there are no modified pages whose loss a reader could see.
    let _ = unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, offset, len) };
}

/// [`release_pages`] where pages cannot be released: nothing.
#[cfg(not(unix))]
pub fn release_pages(_map: &Mmap, _offset: u64, _len: u64) {}

/// Copies `len` bytes at `offset` of `from` to `to`'s position with
/// `copy_file_range`. Returns how many bytes were copied before the kernel
/// said it cannot (different file systems on old kernels, special files):
/// the caller writes the rest itself.
#[cfg(target_os = "linux")]
const KERNEL_COPY_CHUNK: usize = 1 << 20;

#[cfg(target_os = "linux")]
fn kernel_copy(from: &File, offset: u64, to: &File, len: u64) -> io::Result<u64> {
    use rustix::io::Errno;
    let mut source_offset = offset;
    let mut copied = 0;
    while copied < len {
        let chunk = usize::try_from(len - copied)
            .unwrap_or(usize::MAX)
            .min(KERNEL_COPY_CHUNK);
        match rustix::fs::copy_file_range(from, Some(&mut source_offset), to, None, chunk) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => copied += n as u64,
            Err(Errno::INTR) => {}
            Err(Errno::XDEV | Errno::NOSYS | Errno::OPNOTSUPP | Errno::INVAL | Errno::PERM) => {
                return Ok(copied);
            }
            Err(errno) => return Err(errno.into()),
        }
    }
    Ok(copied)
}

/// A streaming reader over one record; see [`PackageReader::open_record`].
pub struct RecordReader<'a> {
    inner: Box<dyn Read + 'a>,
    archive: &'a str,
    record: &'a str,
    declared: u64,
    produced: u64,
    hasher: Option<(crc32fast::Hasher, u32)>,
    /// Whether data past the declared size is an error. PyTorch stops at
    /// the declared size (a deflate stream that goes on is cut short), so
    /// only verification complains.
    strict: bool,
    finished: bool,
}

impl std::fmt::Debug for RecordReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordReader")
            .field("archive", &self.archive)
            .field("record", &self.record)
            .field("declared", &self.declared)
            .field("produced", &self.produced)
            .finish_non_exhaustive()
    }
}

impl RecordReader<'_> {
    /// The record's declared size in bytes.
    pub fn len(&self) -> u64 {
        self.declared
    }

    /// Whether the record is empty.
    pub fn is_empty(&self) -> bool {
        self.declared == 0
    }

    fn size_mismatch(&self, actual: u64, at_least: bool) -> io::Error {
        ArchiveError::SizeMismatch {
            archive: self.archive.to_owned(),
            record: self.record.to_owned(),
            declared: self.declared,
            actual,
            at_least,
        }
        .into_io()
    }

    /// Called at the declared end: the source must be exhausted too, and the
    /// checksum must match.
    fn finish(&mut self) -> io::Result<()> {
        self.finished = true;
        let mut probe = [0u8; 1];
        if self.strict && read_retrying(&mut self.inner, &mut probe)? != 0 {
            return Err(self.size_mismatch(self.declared + 1, true));
        }
        if let Some((hasher, expected)) = self.hasher.take() {
            let actual = hasher.finalize();
            if actual != expected {
                return Err(ArchiveError::CrcMismatch {
                    archive: self.archive.to_owned(),
                    record: self.record.to_owned(),
                    expected,
                    actual,
                }
                .into_io());
            }
        }
        Ok(())
    }
}

impl Read for RecordReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let remaining = self.declared - self.produced;
        if remaining == 0 {
            if !self.finished {
                self.finish()?;
            }
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(remaining).unwrap_or(usize::MAX));
        let got = read_retrying(&mut self.inner, &mut buf[..want])?;
        if got == 0 && want > 0 {
            return Err(self.size_mismatch(self.produced, false));
        }
        if let Some((hasher, _)) = &mut self.hasher {
            hasher.update(&buf[..got]);
        }
        self.produced += got as u64;
        Ok(got)
    }
}

fn read_retrying(reader: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match reader.read(buf) {
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            result => return result,
        }
    }
}

fn check_size(label: &str, record: &str, size: u64, options: &ReadOptions) -> Result<()> {
    if size > options.max_record_size {
        return Err(ArchiveError::LimitExceeded {
            archive: label.to_owned(),
            what: format!("size of record {record:?}"),
            value: size,
            limit: options.max_record_size,
        });
    }
    Ok(())
}

fn index_of(records: &[RecordInfo]) -> HashMap<String, usize> {
    records
        .iter()
        .enumerate()
        .map(|(i, record)| (record.name.clone(), i))
        .collect()
}

/// `a/b/c` from a relative file system path, refusing non-UTF-8 components.
fn relative_record_name(relative: &Path) -> Result<String, NameProblem> {
    let mut name = String::new();
    for component in relative.components() {
        let std::path::Component::Normal(part) = component else {
            return Err(NameProblem::ParentDirectory);
        };
        let part = part.to_str().ok_or(NameProblem::NotUtf8)?;
        if !name.is_empty() {
            name.push('/');
        }
        name.push_str(part);
    }
    Ok(name)
}
