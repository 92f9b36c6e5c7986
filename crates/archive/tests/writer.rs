//! What `PackageWriter` promises: PyTorch's layout, determinism, streaming,
//! and clear refusals.

use std::io::Read;

use tpkg_archive::{
    ArchiveError, PackageMetadata, PackageReader, PackageWriter, WriteOptions, metadata,
};

fn sample(writer_options: WriteOptions) -> Vec<u8> {
    let mut writer = PackageWriter::in_memory(writer_options).unwrap();
    writer
        .write_record("pkg/__init__.py", b"from . import sub\n")
        .unwrap();
    writer.write_record("pkg/sub.py", b"X = 42\n").unwrap();
    writer
        .write_record("assets/blob.bin", &[0u8, 1, 2, 255])
        .unwrap();
    writer
        .write_record(".data/0.storage", &[7u8; 1000])
        .unwrap();
    writer.write_extern_modules(&["math", "json"]).unwrap();
    writer.finish().unwrap()
}

#[test]
fn records_round_trip_with_pytorch_bookkeeping() {
    let reader = PackageReader::from_bytes(sample(WriteOptions::default())).unwrap();
    assert_eq!(reader.prefix(), "archive");
    let names: Vec<&str> = reader.records().iter().map(|r| r.name.as_str()).collect();
    // PyTorch's order: records as saved, then the bookkeeping ones.
    assert_eq!(
        names,
        [
            "pkg/__init__.py",
            "pkg/sub.py",
            "assets/blob.bin",
            ".data/0.storage",
            ".data/extern_modules",
            ".data/python_version",
            ".data/version",
            "byteorder",
            ".data/serialization_id",
        ]
    );
    assert_eq!(&reader.read("pkg/sub.py").unwrap()[..], b"X = 42\n");
    assert_eq!(
        &reader.read(".data/extern_modules").unwrap()[..],
        b"math\njson\n"
    );
    assert_eq!(&reader.read(".data/version").unwrap()[..], b"6\n");
    assert_eq!(&reader.read("byteorder").unwrap()[..], b"little");
    let metadata = PackageMetadata::read(&reader).unwrap();
    assert_eq!(metadata.python_version.as_deref(), Some("3.11.7"));
    reader.verify().unwrap();
}

#[test]
fn every_record_is_stored_and_64_byte_aligned() {
    let bytes = sample(WriteOptions::default());
    let reader = PackageReader::from_bytes(bytes.clone()).unwrap();
    for record in reader.records() {
        let offset = record.data_offset.unwrap();
        assert_eq!(offset % 64, 0, "{}", record.name);
        assert_eq!(record.compressed_size, record.size);
        // The padding lives in an extra field with PyTorch's id "FB".
        let header = bytes[..offset as usize]
            .windows(4)
            .rposition(|w| w == b"PK\x03\x04")
            .unwrap();
        let name_len = u16::from_le_bytes([bytes[header + 26], bytes[header + 27]]) as usize;
        let extra_len = u16::from_le_bytes([bytes[header + 28], bytes[header + 29]]) as usize;
        if extra_len > 0 {
            let extra = &bytes[header + 30 + name_len..];
            assert_eq!(&extra[..2], b"FB", "{}", record.name);
        }
    }
}

#[test]
fn identical_input_gives_identical_bytes() {
    assert_eq!(
        sample(WriteOptions::default()),
        sample(WriteOptions::default())
    );
    // Files too: same name in two folders, byte for byte.
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let written: Vec<Vec<u8>> = dirs
        .iter()
        .map(|dir| {
            let path = dir.path().join("same.pt");
            let mut writer = PackageWriter::create(&path, WriteOptions::default()).unwrap();
            writer.write_record("a/b.txt", b"content").unwrap();
            writer.finish().unwrap();
            std::fs::read(path).unwrap()
        })
        .collect();
    assert_eq!(written[0], written[1]);
}

#[test]
fn serialization_id_follows_content_unless_set() {
    let id = |bytes: Vec<u8>| {
        let reader = PackageReader::from_bytes(bytes).unwrap();
        PackageMetadata::read(&reader)
            .unwrap()
            .serialization_id
            .unwrap()
    };
    let derived = id(sample(WriteOptions::default()));
    assert_eq!(derived.len(), 40);
    let mut other = PackageWriter::in_memory(WriteOptions::default()).unwrap();
    other.write_record("x.txt", b"different").unwrap();
    assert_ne!(id(other.finish().unwrap()), derived);

    let chosen = "1234567890123456789012345678901234567890".to_owned();
    let options = WriteOptions::default().with_serialization_id(chosen.clone());
    assert_eq!(id(sample(options)), chosen);
}

#[test]
fn package_without_externs_writes_a_lone_newline_read_as_one_empty_name() {
    let writer = PackageWriter::in_memory(WriteOptions::default()).unwrap();
    let reader = PackageReader::from_bytes(writer.finish().unwrap()).unwrap();
    assert_eq!(&reader.read(".data/extern_modules").unwrap()[..], b"\n");
    // PyTorch's importer reads this as [''] (`str.splitlines()` of one newline).
    let metadata = PackageMetadata::read(&reader).unwrap();
    assert_eq!(metadata.extern_modules, Some(vec![String::new()]));
}

#[test]
fn the_package_folder_is_the_file_stem_or_the_given_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("my.model.pt");
    PackageWriter::create(&path, WriteOptions::default())
        .unwrap()
        .finish()
        .unwrap();
    assert_eq!(PackageReader::open(&path).unwrap().prefix(), "my.model");

    let options = WriteOptions::default().with_prefix("custom");
    let bytes = PackageWriter::in_memory(options).unwrap().finish().unwrap();
    assert_eq!(PackageReader::from_bytes(bytes).unwrap().prefix(), "custom");

    let bad = WriteOptions::default().with_prefix("a/b");
    assert!(matches!(
        PackageWriter::in_memory(bad).unwrap_err(),
        ArchiveError::BadPrefix { .. }
    ));
}

#[test]
fn streamed_records_are_copied_exactly() {
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut writer = PackageWriter::in_memory(WriteOptions::default()).unwrap();
    writer
        .write_record_from(".data/0.storage", &data[..], data.len() as u64)
        .unwrap();
    let reader = PackageReader::from_bytes(writer.finish().unwrap()).unwrap();
    assert_eq!(&reader.read(".data/0.storage").unwrap()[..], &data[..]);
    let mut streamed = Vec::new();
    reader
        .open_record(".data/0.storage")
        .unwrap()
        .read_to_end(&mut streamed)
        .unwrap();
    assert_eq!(streamed, data);
}

#[test]
fn a_reader_shorter_or_longer_than_declared_is_refused() {
    for (declared, given) in [(10u64, 9usize), (10, 11)] {
        let mut writer = PackageWriter::in_memory(WriteOptions::default()).unwrap();
        let error = writer
            .write_record_from("x.bin", &vec![1u8; given][..], declared)
            .unwrap_err();
        assert!(
            matches!(error, ArchiveError::LengthMismatch { declared: d, .. } if d == declared),
            "{error}"
        );
        // The half-written archive cannot be finished by accident.
        assert!(writer.write_record("y.txt", b"").is_err());
        assert!(writer.finish().is_err());
    }
}

#[test]
fn refusals_name_the_record() {
    let mut writer = PackageWriter::in_memory(WriteOptions::default()).unwrap();
    writer.write_record("a.txt", b"1").unwrap();
    type IsExpected = fn(&ArchiveError) -> bool;
    let cases: Vec<(&str, IsExpected)> = vec![
        ("a.txt", |e| {
            matches!(e, ArchiveError::DuplicateWrite { .. })
        }),
        ("../evil", |e| matches!(e, ArchiveError::BadName { .. })),
        ("/abs", |e| matches!(e, ArchiveError::BadName { .. })),
        ("a\\b", |e| matches!(e, ArchiveError::BadName { .. })),
        ("", |e| matches!(e, ArchiveError::BadName { .. })),
        (metadata::VERSION, |e| {
            matches!(e, ArchiveError::ReservedRecord { .. })
        }),
        (metadata::BYTEORDER, |e| {
            matches!(e, ArchiveError::ReservedRecord { .. })
        }),
        (metadata::EXTERN_MODULES, |e| {
            matches!(e, ArchiveError::ReservedRecord { .. })
        }),
        (metadata::SERIALIZATION_ID, |e| {
            matches!(e, ArchiveError::ReservedRecord { .. })
        }),
    ];
    for (name, is_expected) in cases {
        let error = writer.write_record(name, b"x").unwrap_err();
        assert!(is_expected(&error), "{name:?}: {error}");
        assert!(error.to_string().contains(&format!("{name:?}")), "{error}");
    }
    // Refusals before any byte is written leave the writer usable.
    writer.write_record("b.txt", b"2").unwrap();
    writer.finish().unwrap();
}

#[test]
fn more_than_65535_records_switch_to_zip64() {
    let mut writer = PackageWriter::in_memory(WriteOptions::default()).unwrap();
    for i in 0..70_000 {
        writer.write_record(&format!("r/{i}"), b"").unwrap();
    }
    let reader = PackageReader::from_bytes(writer.finish().unwrap()).unwrap();
    assert_eq!(reader.records().len(), 70_005);
    assert!(reader.has_record("r/69999"));
}

/// A record past 4 GiB needs zip64 sizes and offsets; streamed, so the test
/// never holds it in memory.
#[test]
fn a_record_larger_than_4_gib_is_written_with_zip64() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.pt");
    let len = (4u64 << 30) + 100;
    let mut writer = PackageWriter::create(&path, WriteOptions::default()).unwrap();
    writer.write_record("small.txt", b"before").unwrap();
    writer
        .write_record_from(".data/0.storage", std::io::repeat(0x5A).take(len), len)
        .unwrap();
    writer.write_record("after.txt", b"after").unwrap();
    writer.finish().unwrap();

    let reader = PackageReader::open(&path).unwrap();
    let record = reader.record(".data/0.storage").unwrap();
    assert_eq!(record.size, len);
    assert_eq!(record.data_offset.unwrap() % 64, 0);
    let slice = reader.stored_slice(".data/0.storage").unwrap().unwrap();
    assert_eq!(slice.len() as u64, len);
    assert!(slice[slice.len() - 10..].iter().all(|&b| b == 0x5A));
    // Records after the 4 GiB mark need zip64 offsets.
    assert_eq!(&reader.read("after.txt").unwrap()[..], b"after");
    assert!(reader.record("after.txt").unwrap().data_offset.unwrap() > u64::from(u32::MAX));
}
