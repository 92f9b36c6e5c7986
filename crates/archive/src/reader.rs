//! Reading packages: zip files (memory-mapped) and PyTorch's directory form.

mod check;
mod directory;
mod pages;
mod record;

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;

#[cfg(unix)]
use self::pages::MappedRecord;
#[cfg(target_os = "linux")]
pub use self::pages::kernel_copy;
pub use self::pages::release_pages;
use self::pages::{Backing, Bytes};
pub use self::record::RecordReader;
use crate::error::{ArchiveError, Result};
use crate::listing::{ZipIndex, list_zip};
use crate::name::DEFAULT_MAX_NAME_LEN;

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
///
/// Built from [`ReadOptions::default`] and the `with_*` methods:
///
/// ```
/// use tpkg_archive::ReadOptions;
/// let options = ReadOptions::default()
///     .with_max_record_size(1 << 24)
///     .with_crc_checks();
/// assert!(options.verify_crc);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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

impl ReadOptions {
    /// Sets [`max_records`](Self::max_records).
    #[must_use]
    pub fn with_max_records(mut self, max_records: usize) -> Self {
        self.max_records = max_records;
        self
    }

    /// Sets [`max_record_size`](Self::max_record_size).
    #[must_use]
    pub fn with_max_record_size(mut self, max_record_size: u64) -> Self {
        self.max_record_size = max_record_size;
        self
    }

    /// Sets [`max_name_len`](Self::max_name_len).
    #[must_use]
    pub fn with_max_name_len(mut self, max_name_len: usize) -> Self {
        self.max_name_len = max_name_len;
        self
    }

    /// Turns [`verify_crc`](Self::verify_crc) on: every zip record read is
    /// checked against its CRC-32.
    #[must_use]
    pub fn with_crc_checks(mut self) -> Self {
        self.verify_crc = true;
        self
    }

    /// Turns [`mmap`](Self::mmap) off: zip files are read into memory.
    #[must_use]
    pub fn without_mmap(mut self) -> Self {
        self.mmap = false;
        self
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

    /// The options this reader was opened with.
    pub fn options(&self) -> &ReadOptions {
        &self.options
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

    /// Releases this process's mapped pages of bytes `offset..offset + len`
    /// of a stored record (see [`release`](Self::release)); nothing for
    /// other records or ranges outside it.
    pub(crate) fn release_range(&self, info: &RecordInfo, offset: u64, len: u64) {
        if self.check_range(info, offset, len).is_ok() {
            let _ = self.use_stored_range(info, offset, len, |_| ());
        }
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
            self.check_record(&info.name)?;
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
