//! The bytes behind a zip package and their pages: memory map or buffer,
//! releasing mapped pages behind a read, and kernel copies out of the file.

#[cfg(target_os = "linux")]
use std::fs::File;
use std::io::{self, Read};
use std::sync::Arc;

use memmap2::Mmap;

/// The bytes of a zip archive: a memory map or an owned buffer, shared so the
/// zip parser and the reader can both hold them.
#[derive(Debug, Clone)]
pub(super) struct Bytes(pub(super) Arc<Backing>);

#[derive(Debug)]
pub(super) enum Backing {
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
    pub(super) fn release(&self, offset: u64, len: u64) {
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

/// A stored record of a mapped package, read front to back. Every 8 MiB
/// read, the pages behind are released ([`release_pages`]), so streaming a
/// large archive (verify, repack, extract) does not leave all of it
/// resident in the process.
#[cfg(unix)]
pub(super) struct MappedRecord<'a> {
    pub(super) map: &'a Mmap,
    /// The record's bytes in the map.
    pub(super) data: &'a [u8],
    /// Where `data` starts in the map.
    pub(super) start: usize,
    /// Bytes of `data` read so far.
    pub(super) read: usize,
    /// Bytes of `data` whose pages were released.
    pub(super) released: usize,
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

/// Maps the pages of `offset..offset + len` of a memory-mapped archive into
/// this process in one system call (`MADV_POPULATE_READ`), ahead of reading
/// them, instead of one page fault per few pages. Best effort: kernels
/// before 5.14 and other systems fault the pages in as they are read.
pub(super) fn populate_pages(bytes: &Bytes, offset: u64, len: u64) {
    #[cfg(target_os = "linux")]
    if let (Backing::Mapped { map, .. }, Ok(offset), Ok(len)) =
        (&*bytes.0, usize::try_from(offset), usize::try_from(len))
    {
        let _ = map.advise_range(memmap2::Advice::PopulateRead, offset, len);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (bytes, offset, len);
}

/// [`release_pages`] where pages cannot be released: nothing.
#[cfg(not(unix))]
pub fn release_pages(_map: &Mmap, _offset: u64, _len: u64) {}

/// Most bytes one `copy_file_range` call is asked for.
#[cfg(target_os = "linux")]
const KERNEL_COPY_CHUNK: usize = 1 << 20;

/// Copies `len` bytes at `offset` of `from` to `to`'s position with
/// `copy_file_range`, as `cp` does: the bytes never pass through this
/// process. Returns how many bytes were copied before the kernel said it
/// cannot (different file systems on old kernels, special files): the
/// caller writes the rest itself.
///
/// Public for the other readers of PyTorch files (the legacy `torch.save`
/// stream), which copy storages out the same way.
#[cfg(target_os = "linux")]
pub fn kernel_copy(from: &File, offset: u64, to: &File, len: u64) -> io::Result<u64> {
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
