//! Streaming one record with size and CRC-32 enforcement.

use std::io::{self, Read};

use crate::error::ArchiveError;

/// A streaming reader over one record; see [`PackageReader::open_record`](crate::PackageReader::open_record).
pub struct RecordReader<'a> {
    pub(super) inner: Box<dyn Read + 'a>,
    pub(super) archive: &'a str,
    pub(super) record: &'a str,
    pub(super) declared: u64,
    pub(super) produced: u64,
    pub(super) hasher: Option<(crc32fast::Hasher, u32)>,
    /// Whether data past the declared size is an error. PyTorch stops at
    /// the declared size (a deflate stream that goes on is cut short), so
    /// only verification complains.
    pub(super) strict: bool,
    pub(super) finished: bool,
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
