//! Ranged reads (`read_range_into`) and copies into files (`copy_range_to`)
//! give exactly the bytes of `read`, whatever holds the package: a memory
//! map (copies that release its pages, kernel copies), a file read into
//! memory, bytes, or the unzipped folder.

use std::io::{Read, Seek, SeekFrom};

use proptest::prelude::*;
use tpkg_archive::{
    ArchiveError, AtomicFile, Durability, PackageReader, PackageWriter, ReadOptions, WriteOptions,
};

const RECORD: &str = ".data/0.storage";

/// A package holding one 3 MiB record of varied bytes (beyond the 1 MiB
/// write buffer, so copies cross buffered and kernel paths), opened in
/// every form the reader supports.
struct Forms {
    _dir: tempfile::TempDir,
    content: Vec<u8>,
    readers: Vec<(&'static str, PackageReader)>,
}

fn forms() -> Forms {
    let dir = tempfile::tempdir().unwrap();
    let content: Vec<u8> = (0..3u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let path = dir.path().join("model.pt");
    let mut writer = PackageWriter::create(&path, WriteOptions::default()).unwrap();
    writer.write_record(RECORD, &content).unwrap();
    writer.write_record("notes.txt", b"hello").unwrap();
    writer.finish().unwrap();
    let mapped = PackageReader::open(&path).unwrap();
    let folder = tpkg_archive::extract(&mapped, &dir.path().join("unzipped")).unwrap();
    let unmapped = ReadOptions::default().without_mmap();
    let readers = vec![
        ("memory map", mapped),
        (
            "file read into memory",
            PackageReader::open_with(&path, unmapped).unwrap(),
        ),
        (
            "bytes",
            PackageReader::from_bytes(std::fs::read(&path).unwrap()).unwrap(),
        ),
        ("folder", PackageReader::open(&folder).unwrap()),
    ];
    Forms {
        _dir: dir,
        content,
        readers,
    }
}

fn copied(reader: &PackageReader, offset: u64, len: u64) -> Vec<u8> {
    let out_dir = tempfile::tempdir().unwrap();
    let mut out = AtomicFile::create(out_dir.path().join("out.bin"), Durability::NoFsync).unwrap();
    use std::io::Write;
    out.write_all(b"prefix").unwrap();
    reader
        .copy_range_to(RECORD, offset, len, out.as_file().unwrap())
        .unwrap();
    out.write_all(b"suffix").unwrap();
    let target = out.commit().unwrap();
    let mut file = std::fs::File::open(target).unwrap();
    file.seek(SeekFrom::Start(0)).unwrap();
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).unwrap();
    assert!(bytes.starts_with(b"prefix") && bytes.ends_with(b"suffix"));
    bytes[6..bytes.len() - 6].to_vec()
}

#[test]
fn whole_records_read_and_copy_as_read_gives_them() {
    let forms = forms();
    for (form, reader) in &forms.readers {
        let len = forms.content.len();
        let mut owned = vec![0u8; len];
        reader.read_range_into(RECORD, 0, &mut owned).unwrap();
        assert!(owned == forms.content, "{form}: read_range_into");
        assert!(
            copied(reader, 0, len as u64) == forms.content,
            "{form}: copy_range_to"
        );
        assert_eq!(
            &reader.read(RECORD).unwrap()[..],
            &forms.content[..],
            "{form}: read"
        );
    }
}

#[test]
fn ranges_past_the_end_are_refused_and_name_the_record() {
    let forms = forms();
    let size = forms.content.len() as u64;
    for (form, reader) in &forms.readers {
        let mut two = [0u8; 2];
        let error = reader
            .read_range_into(RECORD, size - 1, &mut two)
            .unwrap_err();
        assert!(
            matches!(&error, ArchiveError::RangeOutOfBounds { record, start, end, size: s, .. }
                if record == RECORD && *start == size - 1 && *end == size + 1 && *s == size),
            "{form}: {error:?}"
        );
        assert!(error.to_string().contains(RECORD), "{form}: {error}");
        let file = tempfile::tempfile().unwrap();
        assert!(matches!(
            reader.copy_range_to(RECORD, u64::MAX, 2, &file),
            Err(ArchiveError::RangeOutOfBounds { .. })
        ));
        assert!(matches!(
            reader.read_range_into("missing", 0, &mut two),
            Err(ArchiveError::RecordNotFound { .. })
        ));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn any_range_reads_and_copies_the_same_bytes(start in 0usize..3 << 20, len in 0usize..1 << 21) {
        // Built once per case: cheap next to the 3 MiB of checks.
        let forms = forms();
        let start = start.min(forms.content.len());
        let end = (start + len).min(forms.content.len());
        let expected = &forms.content[start..end];
        for (form, reader) in &forms.readers {
            let mut owned = vec![0u8; end - start];
            reader.read_range_into(RECORD, start as u64, &mut owned).unwrap();
            prop_assert!(owned == expected, "{}: read_range_into {}..{}", form, start, end);
            let copy = copied(reader, start as u64, (end - start) as u64);
            prop_assert!(copy == expected, "{}: copy_range_to {}..{}", form, start, end);
        }
    }
}

#[test]
fn a_file_that_is_not_durable_is_still_replaced_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("model.pt");
    std::fs::write(&target, b"old").unwrap();
    let options = WriteOptions::default().without_fsync();
    let mut writer = PackageWriter::create(&target, options.clone()).unwrap();
    writer.write_record("a.txt", b"new").unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), b"old");
    writer.finish().unwrap();
    let reader = PackageReader::open(&target).unwrap();
    assert_eq!(&reader.read("a.txt").unwrap()[..], b"new");

    let mut dropped = AtomicFile::create(&target, Durability::NoFsync).unwrap();
    std::io::Write::write_all(&mut dropped, b"never committed").unwrap();
    drop(dropped);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "the temporary file is gone"
    );
    assert!(PackageReader::open(&target).is_ok());
}
