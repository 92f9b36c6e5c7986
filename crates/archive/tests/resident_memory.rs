//! Copying records out of a memory-mapped package leaves no mapped pages
//! behind: a process that loads, converts or verifies a large archive
//! holds what it made, not the archive. (Alone in its file, so that even
//! under `cargo test`'s threads the process's memory is this test's.)

use tpkg_archive::{ArchiveError, PackageReader, PackageWriter, WriteOptions};

const RECORD: &str = ".data/0.storage";

/// Resident file-backed memory of this process (`RssFile`), in bytes.
#[cfg(target_os = "linux")]
fn resident_file_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("RssFile:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

#[cfg(target_os = "linux")]
#[test]
fn copying_records_out_leaves_no_mapped_pages_behind() {
    const SIZE: usize = 48 << 20;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.pt");
    let mut writer = PackageWriter::create(&path, WriteOptions::default()).unwrap();
    writer.write_record(RECORD, &vec![7u8; SIZE]).unwrap();
    writer.finish().unwrap();
    let reader = PackageReader::open(&path).unwrap();
    let grown = |before: u64| resident_file_bytes().saturating_sub(before);

    // Touching the zero-copy slice maps the record in (the measure works)...
    let before = resident_file_bytes();
    let slice = reader.stored_slice(RECORD).unwrap().unwrap();
    let sum: u64 = slice.iter().step_by(4096).map(|&b| u64::from(b)).sum();
    assert_eq!(sum, 7 * (SIZE as u64 / 4096));
    assert!(
        grown(before) >= (SIZE as u64) * 3 / 4,
        "touched: {}",
        grown(before)
    );
    // ...and `release` drops those pages; the slice still reads the same.
    reader.release(RECORD).unwrap();
    assert!(grown(before) < 8 << 20, "released: {}", grown(before));
    assert!(slice.iter().step_by(4096).all(|&b| b == 7));
    reader.release(RECORD).unwrap();

    // Copies and streams release what they have read.
    let before = resident_file_bytes();
    let owned = reader.read_range(RECORD, 0, SIZE as u64).unwrap();
    assert!(owned.iter().all(|&b| b == 7));
    assert!(grown(before) < 8 << 20, "read_range: {}", grown(before));
    let mut streamed = 0u64;
    let mut record = reader.open_record(RECORD).unwrap();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = std::io::Read::read(&mut record, &mut buffer).unwrap();
        if n == 0 {
            break;
        }
        streamed += n as u64;
    }
    assert_eq!(streamed, SIZE as u64);
    assert!(grown(before) < 16 << 20, "open_record: {}", grown(before));

    // Checking a record hashes it in place and releases it behind.
    let before = resident_file_bytes();
    reader.check_record(RECORD).unwrap();
    assert!(grown(before) < 16 << 20, "check_record: {}", grown(before));

    // Copying a record into another package writes it from the map,
    // released behind.
    let before = resident_file_bytes();
    let mut copy =
        PackageWriter::create(dir.path().join("copy.pt"), WriteOptions::default()).unwrap();
    copy.copy_record(RECORD, &reader, RECORD).unwrap();
    assert!(grown(before) < 24 << 20, "copy_record: {}", grown(before));
    copy.finish().unwrap();
    assert!(matches!(
        reader.release("missing"),
        Err(ArchiveError::RecordNotFound { .. })
    ));
}
