//! The paths that avoid copying a record through memory (checking it in
//! place, copying it into another package, extracting it with the kernel's
//! copy) give exactly what the streaming paths give: the same bytes, the
//! same CRC-32s, the same refusals.

use std::path::{Path, PathBuf};

use tpkg_archive::{ArchiveError, PackageReader, PackageWriter, ReadOptions, WriteOptions};

/// Large enough to be hashed on several threads and in several windows,
/// and not a multiple of any window.
const BIG: usize = (21 << 20) + 12_345;

fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

/// A package file with a big stored record, a small one and an empty one.
fn package(dir: &Path) -> (PathBuf, Vec<u8>) {
    let path = dir.join("pkg.pt");
    let big = pattern(BIG);
    let mut writer = PackageWriter::create(&path, WriteOptions::default()).unwrap();
    writer.write_record(".data/0.storage", &big).unwrap();
    writer.write_record("res/small.txt", b"small").unwrap();
    writer.write_record("res/empty.bin", b"").unwrap();
    writer.finish().unwrap();
    (path, big)
}

#[test]
fn check_record_accepts_what_streaming_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = package(dir.path());
    let reader = PackageReader::open(&path).unwrap();
    for info in reader.records() {
        reader.check_record(&info.name).unwrap();
    }
    reader.verify().unwrap();
}

#[test]
fn check_record_finds_a_flipped_byte_anywhere_in_a_big_record() {
    let dir = tempfile::tempdir().unwrap();
    let (path, big) = package(dir.path());
    let clean = std::fs::read(&path).unwrap();
    let data_start = find(&clean, &big[..64]);
    // First byte, one in each thread's part, the last byte.
    for at in [0, BIG / 3, BIG / 2 + 1, BIG - 1] {
        let mut bytes = clean.clone();
        bytes[data_start + at] ^= 0x40;
        let damaged = dir.path().join(format!("damaged-{at}.pt"));
        std::fs::write(&damaged, &bytes).unwrap();
        let reader = PackageReader::open(&damaged).unwrap();
        let in_place = reader.check_record(".data/0.storage").unwrap_err();
        let mut stream = reader.open_record_verified(".data/0.storage").unwrap();
        let streamed = std::io::copy(&mut stream, &mut std::io::sink()).unwrap_err();
        match in_place {
            ArchiveError::CrcMismatch { ref record, .. } => assert_eq!(record, ".data/0.storage"),
            other => panic!("byte {at}: {other}"),
        }
        assert_eq!(in_place.to_string(), streamed.to_string(), "byte {at}");
        assert!(reader.verify().is_err());
    }
}

#[test]
fn copy_record_copies_every_byte_with_a_correct_crc() {
    let dir = tempfile::tempdir().unwrap();
    let (path, big) = package(dir.path());
    let reader = PackageReader::open(&path).unwrap();
    let out = dir.path().join("copy.pt");
    let mut writer = PackageWriter::create(&out, WriteOptions::default()).unwrap();
    for name in [".data/0.storage", "res/small.txt", "res/empty.bin"] {
        writer.copy_record(name, &reader, name).unwrap();
    }
    writer.finish().unwrap();
    let copy = PackageReader::open_with(&out, ReadOptions::default().with_crc_checks()).unwrap();
    copy.verify().unwrap();
    assert_eq!(&copy.read(".data/0.storage").unwrap()[..], &big[..]);
    assert_eq!(&copy.read("res/small.txt").unwrap()[..], b"small");
    assert!(copy.read("res/empty.bin").unwrap().is_empty());
}

#[test]
fn extract_writes_every_record_as_it_reads() {
    let dir = tempfile::tempdir().unwrap();
    let (path, big) = package(dir.path());
    let reader = PackageReader::open(&path).unwrap();
    let folder = tpkg_archive::extract(&reader, &dir.path().join("out")).unwrap();
    assert_eq!(std::fs::read(folder.join(".data/0.storage")).unwrap(), big);
    assert_eq!(
        std::fs::read(folder.join("res/small.txt")).unwrap(),
        b"small"
    );
    assert!(
        std::fs::read(folder.join("res/empty.bin"))
            .unwrap()
            .is_empty()
    );
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
        .unwrap()
}
