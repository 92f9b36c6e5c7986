//! Damaged and malicious containers give typed errors that name the record
//! and offset; nothing panics, nothing escapes, nothing is trusted.

mod common;

use std::io::Write;

use tpkg_archive::{ArchiveError, NameProblem, PackageReader, ReadOptions};
use zip::write::SimpleFileOptions;

/// A zip with the given (name, content) entries, written by the `zip` crate
/// so that names PyTorch would never write can be tested.
fn zip_with(entries: &[(&str, &[u8])], method: zip::CompressionMethod) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, content) in entries {
        writer
            .start_file(
                *name,
                SimpleFileOptions::default().compression_method(method),
            )
            .unwrap();
        writer.write_all(content).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

fn stored(entries: &[(&str, &[u8])]) -> Vec<u8> {
    zip_with(entries, zip::CompressionMethod::Stored)
}

fn open(bytes: Vec<u8>) -> Result<PackageReader, ArchiveError> {
    PackageReader::from_bytes(bytes)
}

/// Offsets of every central directory header.
fn central_headers(bytes: &[u8]) -> Vec<usize> {
    bytes
        .windows(4)
        .enumerate()
        .filter(|(_, w)| *w == b"PK\x01\x02")
        .map(|(i, _)| i)
        .collect()
}

fn put_u32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

fn corpus_zip() -> Vec<u8> {
    std::fs::read(common::corpus_root().join("torch-2.13.0/sources_and_resources.pt")).unwrap()
}

#[test]
fn inputs_that_are_not_zips() {
    for (what, bytes) in [
        ("empty", Vec::new()),
        ("text", b"definitely not a zip archive".to_vec()),
        ("pickle", vec![0x80, 0x03, b'N', b'.']),
    ] {
        let error = open(bytes).unwrap_err();
        assert!(
            matches!(error, ArchiveError::NotAZip { .. }),
            "{what}: {error}"
        );
    }
}

#[test]
fn truncated_archives() {
    let whole = corpus_zip();
    for keep in [30, whole.len() / 2, whole.len() - 30] {
        let error = open(whole[..keep].to_vec()).unwrap_err();
        let text = error.to_string();
        assert!(
            matches!(
                error,
                ArchiveError::NotAZip { .. } | ArchiveError::CorruptZip { .. }
            ),
            "{keep}: {text}"
        );
        if keep < whole.len() - 22 {
            assert!(text.contains("truncated"), "{keep}: {text}");
        }
    }
}

#[test]
fn a_flipped_data_byte_is_a_crc_error_naming_the_record() {
    let mut bytes = corpus_zip();
    let reader = open(bytes.clone()).unwrap();
    let record = reader.record("pkg/sub.py").unwrap().clone();
    bytes[record.data_offset.unwrap() as usize + 3] ^= 0xFF;
    let reader = open(bytes).unwrap();
    for error in [
        reader.read("pkg/sub.py").unwrap_err(),
        reader.verify().unwrap_err(),
    ] {
        assert!(matches!(error, ArchiveError::CrcMismatch { .. }), "{error}");
        assert!(error.to_string().contains("\"pkg/sub.py\""), "{error}");
    }
    // Zero-copy access does not check; it is bounds-safe all the same.
    assert_eq!(
        reader.stored_slice("pkg/sub.py").unwrap().unwrap().len() as u64,
        record.size
    );
    // Other records are unaffected.
    assert!(reader.read("pkg/__init__.py").is_ok());
}

#[test]
fn unsafe_names_are_refused_with_their_offset() {
    let cases: &[(&str, NameProblem)] = &[
        ("pkg/../../evil.sh", NameProblem::ParentDirectory),
        ("/etc/cron.d/evil", NameProblem::Absolute),
        ("pkg/..\\..\\evil", NameProblem::Backslash),
        ("pkg/./x", NameProblem::CurrentDirectory),
        ("pkg//x", NameProblem::EmptyComponent),
        ("C:/pkg/x", NameProblem::DriveLetter),
        ("toplevel.txt", NameProblem::NoPackageFolder),
    ];
    for (name, problem) in cases {
        let bytes = stored(&[("pkg/ok.txt", b"fine"), (name, b"payload")]);
        let offset = central_headers(&bytes)[1] as u64;
        match open(bytes).unwrap_err() {
            ArchiveError::BadName {
                name: found,
                offset: found_offset,
                problem: found_problem,
                ..
            } => {
                assert_eq!(found, *name);
                assert_eq!(found_problem, *problem, "{name}");
                assert_eq!(found_offset, Some(offset), "{name}");
            }
            other => panic!("{name}: unexpected {other}"),
        }
    }
}

#[test]
fn records_outside_the_package_folder_are_refused() {
    let error = open(stored(&[("pkg/a.txt", b"1"), ("other/b.txt", b"2")])).unwrap_err();
    assert!(
        matches!(error, ArchiveError::OutsidePrefix { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("\"other/b.txt\""), "{error}");
}

#[test]
fn duplicate_records_are_refused() {
    // The zip crate will not write duplicates, so rename "pkg/b" to "pkg/a"
    // in both headers.
    let mut bytes = stored(&[("pkg/a", b"first"), ("pkg/b", b"second")]);
    let positions: Vec<usize> = bytes
        .windows(5)
        .enumerate()
        .filter(|(_, w)| *w == b"pkg/b")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(positions.len(), 2);
    for at in positions {
        bytes[at + 4] = b'a';
    }
    let error = open(bytes).unwrap_err();
    assert!(
        matches!(error, ArchiveError::DuplicateRecord { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("\"a\""), "{error}");
}

#[test]
fn entries_reaching_past_the_end_of_the_file_are_refused() {
    let mut bytes = stored(&[("pkg/a.txt", b"12345"), ("pkg/b.txt", b"67890")]);
    let second = central_headers(&bytes)[1];
    // Claim a 1 MB record in a file of a few hundred bytes.
    put_u32(&mut bytes, second + 20, 1_000_000);
    put_u32(&mut bytes, second + 24, 1_000_000);
    let error = open(bytes).unwrap_err();
    assert!(
        matches!(
            error,
            ArchiveError::Truncated { .. } | ArchiveError::CorruptZip { .. }
        ),
        "{error}"
    );
}

#[test]
fn sizes_and_counts_beyond_limits_are_refused() {
    let bytes = stored(&[("pkg/a.txt", &[0u8; 100]), ("pkg/b.txt", b"x")]);
    let small_records = ReadOptions {
        max_record_size: 99,
        ..ReadOptions::default()
    };
    let error = PackageReader::from_bytes_with(bytes.clone(), small_records).unwrap_err();
    assert!(
        matches!(
            error,
            ArchiveError::LimitExceeded {
                value: 100,
                limit: 99,
                ..
            }
        ),
        "{error}"
    );

    let few_records = ReadOptions {
        max_records: 1,
        ..ReadOptions::default()
    };
    let error = PackageReader::from_bytes_with(bytes, few_records).unwrap_err();
    assert!(
        matches!(error, ArchiveError::LimitExceeded { value: 2, .. }),
        "{error}"
    );
}

#[test]
fn deflated_records_from_other_zip_tools_are_read() {
    let text = "def load():\n    return 1\n".repeat(50);
    let bytes = zip_with(
        &[
            ("pkg/model/__init__.py", text.as_bytes()),
            ("pkg/.data/version", b"6\n"),
        ],
        zip::CompressionMethod::Deflated,
    );
    let reader = open(bytes).unwrap();
    let record = reader.record("model/__init__.py").unwrap();
    assert_eq!(record.compression, tpkg_archive::Compression::Deflated);
    assert!(record.compressed_size < record.size);
    assert_eq!(
        &reader.read("model/__init__.py").unwrap()[..],
        text.as_bytes()
    );
    assert_eq!(reader.stored_slice("model/__init__.py").unwrap(), None);
    reader.verify().unwrap();
}

#[test]
fn deflated_records_must_inflate_to_their_declared_size() {
    let text = "x = 1\n".repeat(100);
    let original = zip_with(
        &[("pkg/a.py", text.as_bytes())],
        zip::CompressionMethod::Deflated,
    );
    for declared in [text.len() as u32 - 10, text.len() as u32 + 10] {
        let mut bytes = original.clone();
        let central = central_headers(&bytes)[0];
        put_u32(&mut bytes, central + 24, declared);
        let reader = open(bytes).unwrap();
        let error = reader.read("a.py").unwrap_err();
        assert!(
            matches!(error, ArchiveError::SizeMismatch { declared: d, .. } if d == u64::from(declared)),
            "{declared}: {error}"
        );
    }
}

#[test]
fn a_deflate_bomb_header_is_refused_before_allocating() {
    let original = zip_with(&[("pkg/a.py", b"tiny")], zip::CompressionMethod::Deflated);
    let mut bytes = original.clone();
    let central = central_headers(&bytes)[0];
    put_u32(&mut bytes, central + 24, u32::MAX);
    let error = open(bytes).unwrap_err();
    assert!(matches!(error, ArchiveError::CorruptZip { .. }), "{error}");
}

#[test]
fn other_compression_methods_are_named() {
    let mut bytes = stored(&[("pkg/a.txt", b"hello")]);
    let central = central_headers(&bytes)[0];
    bytes[central + 10] = 12; // bzip2
    bytes[8] = 12; // the local header agrees
    let error = open(bytes).unwrap_err();
    assert!(
        matches!(
            error,
            ArchiveError::UnsupportedCompression { .. } | ArchiveError::CorruptZip { .. }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("a.txt"), "{error}");
}

#[test]
fn folder_entries_from_rezipping_tools_are_skipped() {
    let bytes = stored(&[
        ("pkg/", b""),
        ("pkg/.data/", b""),
        ("pkg/.data/version", b"6\n"),
    ]);
    let reader = open(bytes).unwrap();
    assert_eq!(reader.prefix(), "pkg");
    let names: Vec<&str> = reader.records().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, [".data/version"]);
}

#[cfg(unix)]
#[test]
fn symlinks_in_a_package_folder_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let package = dir.path().join("pkg");
    std::fs::create_dir_all(package.join(".data")).unwrap();
    std::fs::write(package.join(".data/version"), "6\n").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", package.join("leak.txt")).unwrap();
    let error = PackageReader::open(&package).unwrap_err();
    assert!(
        matches!(error, ArchiveError::UnsupportedEntry { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("leak.txt"), "{error}");
}
