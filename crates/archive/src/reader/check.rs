//! Checking a record's size and CRC-32 without copying it: verification's
//! hot path.
//!
//! Streaming a record through [`RecordReader`](super::RecordReader) copies
//! every byte out of the memory map into a buffer before hashing it. For a
//! stored record of a mapped package that copy is the larger part of the
//! work, so [`PackageReader::check_record`] hashes the mapped bytes where
//! they are, a window at a time (populated in one system call, released
//! behind), and splits large records across the machine's cores, joining
//! the parts with CRC-32's `combine`. Every other record (deflated, in a
//! directory, with a data size that differs from its declared size) goes
//! through the streaming reader, whose errors it keeps.

use std::io;

use super::pages::{Bytes, populate_pages};
use super::{Compression, PackageReader, Storage};
use crate::error::Result;

/// Bytes hashed between populating and releasing pages.
const WINDOW: usize = 4 << 20;

/// Each thread hashes at least this many bytes of a record.
const PARALLEL_MIN: usize = 4 << 20;

impl PackageReader {
    /// Checks one record as [`verify`](Self::verify) does: its data is as
    /// long as declared and matches its CRC-32 (whatever
    /// [`ReadOptions::verify_crc`](crate::ReadOptions::verify_crc) says).
    ///
    /// The errors are those reading the record through
    /// [`open_record_verified`](Self::open_record_verified) gives; a stored
    /// record of a mapped package is hashed in place, on every core for
    /// large records, and its pages are released behind.
    ///
    /// ```
    /// # fn main() -> Result<(), tpkg_archive::ArchiveError> {
    /// use tpkg_archive::{PackageReader, PackageWriter, WriteOptions};
    /// let mut writer = PackageWriter::in_memory(WriteOptions::default())?;
    /// writer.write_record("res/data.bin", &[7u8; 100])?;
    /// let reader = PackageReader::from_bytes(writer.finish()?)?;
    /// reader.check_record("res/data.bin")?;
    /// # Ok(()) }
    /// ```
    pub fn check_record(&self, name: &str) -> Result<()> {
        let info = self.record(name)?;
        if let (Storage::Zip(bytes), Compression::Stored, Some(start)) =
            (&self.storage, info.compression, info.data_offset)
            && info.compressed_size == info.size
        {
            let data = self.stored_range(bytes, start, 0, info.size, name)?;
            let crc = hash_in_place(bytes, start, data);
            return self.check_crc(info, crc);
        }
        let mut reader = self.open_record_checking(name, true)?;
        io::copy(&mut reader, &mut io::sink())
            .map(|_| ())
            .map_err(|error| self.record_io_error(name, error))
    }
}

/// CRC-32 of `data`, the bytes of `bytes` from `start`: on several threads
/// when it is large and the machine has more than one core.
fn hash_in_place(bytes: &Bytes, start: u64, data: &[u8]) -> u32 {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(data.len() / PARALLEL_MIN)
        .max(1);
    if threads == 1 {
        return hash_part(bytes, start, data).finalize();
    }
    let part_len = data.len().div_ceil(threads);
    let parts: Vec<crc32fast::Hasher> = std::thread::scope(|scope| {
        let handles: Vec<_> = data
            .chunks(part_len)
            .enumerate()
            .map(|(index, part)| {
                let part_start = start + (index * part_len) as u64;
                scope.spawn(move || hash_part(bytes, part_start, part))
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let mut parts = parts.into_iter();
    let mut hasher = parts.next().unwrap_or_default();
    for part in parts {
        hasher.combine(&part);
    }
    hasher.finalize()
}

/// The hasher of `part` (at `start` in `bytes`), a window at a time.
fn hash_part(bytes: &Bytes, start: u64, part: &[u8]) -> crc32fast::Hasher {
    let mut hasher = crc32fast::Hasher::new();
    let mut offset = start;
    for window in part.chunks(WINDOW) {
        populate_pages(bytes, offset, window.len() as u64);
        hasher.update(window);
        bytes.release(offset, window.len() as u64);
        offset += window.len() as u64;
    }
    hasher
}
