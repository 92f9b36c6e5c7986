//! Damaged and malicious containers give typed errors that name the record
//! and offset; nothing panics, nothing escapes, nothing is trusted.

mod common;

use std::io::Write;

use tpkg_archive::{
    ArchiveError, MinizError, NameProblem, PackageReader, ReadOptions, ZipStructure,
};
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

/// [`stored`] with the version record PyTorch's reader requires, last.
fn package(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut all = entries.to_vec();
    all.push(("pkg/.data/version", b"6\n"));
    stored(&all)
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
                ArchiveError::ZipRefused { .. } | ArchiveError::NotAZip { .. }
            ),
            "{keep}: {text}"
        );
        assert!(text.contains("central directory"), "{keep}: {text}");
    }
}

#[test]
fn a_flipped_data_byte_reads_as_pytorch_reads_it_and_fails_verification() {
    let mut bytes = corpus_zip();
    let reader = open(bytes.clone()).unwrap();
    let record = reader.record("pkg/sub.py").unwrap().clone();
    let at = record.data_offset.unwrap() as usize + 3;
    bytes[at] ^= 0xFF;
    let reader = open(bytes.clone()).unwrap();
    // PyTorch does not check CRC-32s: these are the bytes it loads.
    let read = reader.read("pkg/sub.py").unwrap();
    assert_eq!(read[3], bytes[at]);
    let mut verified = reader.open_record_verified("pkg/sub.py").unwrap();
    let streamed = std::io::copy(&mut verified, &mut std::io::sink()).unwrap_err();
    for error in [
        *streamed
            .into_inner()
            .unwrap()
            .downcast::<ArchiveError>()
            .unwrap(),
        reader.verify().unwrap_err(),
    ] {
        assert!(matches!(error, ArchiveError::CrcMismatch { .. }), "{error}");
        assert!(error.to_string().contains("\"pkg/sub.py\""), "{error}");
    }
    // Asked for, reads check CRC-32s too.
    let checking = ReadOptions::default().with_crc_checks();
    let reader = PackageReader::from_bytes_with(bytes, checking).unwrap();
    let error = reader.read("pkg/sub.py").unwrap_err();
    assert!(matches!(error, ArchiveError::CrcMismatch { .. }), "{error}");
    assert!(reader.read("pkg/__init__.py").is_ok());
}

#[test]
fn unsafe_names_read_as_pytorch_lists_them_and_never_extract() {
    for name in [
        "pkg/../../evil.sh",
        "pkg/..\\..\\evil",
        "pkg/./x",
        "pkg//x",
        "pkg//etc/cron.d/evil",
    ] {
        let bytes = package(&[("pkg/ok.txt", b"fine"), (name, b"payload")]);
        let reader = open(bytes).unwrap();
        let record = &name["pkg/".len()..];
        assert_eq!(reader.records()[1].name, record);
        assert_eq!(&reader.read(record).unwrap()[..], b"payload");
        let out = tempfile::tempdir().unwrap();
        let error = tpkg_archive::extract(&reader, out.path()).unwrap_err();
        assert!(
            matches!(error, ArchiveError::BadName { .. }),
            "{name}: {error}"
        );
        assert!(!out.path().join("pkg").exists(), "{name}");
        assert!(!out.path().join("evil.sh").exists(), "{name}");
    }
}

#[test]
fn a_first_entry_outside_any_folder_is_refused_with_its_offset() {
    let bytes = package(&[("toplevel.txt", b"x"), ("pkg/ok.txt", b"fine")]);
    let offset = central_headers(&bytes)[0] as u64;
    match open(bytes).unwrap_err() {
        ArchiveError::BadName {
            name,
            offset: found_offset,
            problem,
            ..
        } => {
            assert_eq!(name, "toplevel.txt");
            assert_eq!(problem, NameProblem::NoPackageFolder);
            assert_eq!(found_offset, Some(offset));
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn records_outside_the_package_folder_are_refused() {
    let error = open(package(&[("pkg/a.txt", b"1"), ("other/b.txt", b"2")])).unwrap_err();
    assert!(
        matches!(error, ArchiveError::OutsidePrefix { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("\"other/b.txt\""), "{error}");
}

#[test]
fn a_package_without_a_version_record_is_refused() {
    let error = open(stored(&[("pkg/a.txt", b"1")])).unwrap_err();
    assert!(matches!(error, ArchiveError::BadMetadata { .. }), "{error}");
    for (version, opens) in [
        ("6\n", true),
        ("11", false),
        ("0", false),
        ("x", false),
        (" +3z", true),
    ] {
        let bytes = stored(&[("pkg/a.txt", b"1"), ("pkg/version", version.as_bytes())]);
        assert_eq!(open(bytes).is_ok(), opens, "{version:?}");
    }
}

#[test]
fn duplicate_names_read_the_entry_pytorch_finds() {
    // The zip crate will not write duplicates, so rename "pkg/b" to "pkg/a"
    // in both headers. miniz's sorted index finds the second entry, and
    // PyTorch reads "second" for both listed names.
    let mut bytes = package(&[("pkg/a", b"first"), ("pkg/b", b"second")]);
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
    let reader = open(bytes).unwrap();
    let names: Vec<&str> = reader.records().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["a", "a", ".data/version"]);
    assert_eq!(&reader.read("a").unwrap()[..], b"second");
    // Lookups ignore ASCII case, as miniz's do.
    assert_eq!(&reader.read("A").unwrap()[..], b"second");
    assert!(reader.has_record(".DATA/Version"));
}

#[test]
fn entries_reaching_past_the_end_of_the_file_are_refused() {
    let mut bytes = package(&[("pkg/a.txt", b"12345"), ("pkg/b.txt", b"67890")]);
    let second = central_headers(&bytes)[1];
    // Claim a 1 MB record in a file of a few hundred bytes.
    put_u32(&mut bytes, second + 20, 1_000_000);
    put_u32(&mut bytes, second + 24, 1_000_000);
    let error = open(bytes).unwrap_err();
    assert!(
        matches!(
            error,
            ArchiveError::ZipRefused {
                error: MinizError::InvalidHeaderOrCorrupted,
                structure: ZipStructure::CentralHeader { index: 1 },
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn a_damaged_local_header_fails_when_its_record_is_read() {
    let mut bytes = package(&[("pkg/a.txt", b"12345"), ("pkg/b.txt", b"67890")]);
    let local = bytes
        .windows(4)
        .enumerate()
        .filter(|(_, w)| *w == b"PK\x03\x04")
        .nth(1)
        .unwrap()
        .0;
    bytes[local + 1] ^= 0x01;
    let reader = open(bytes).unwrap();
    assert_eq!(&reader.read("a.txt").unwrap()[..], b"12345");
    let error = reader.read("b.txt").unwrap_err();
    assert!(
        matches!(
            error,
            ArchiveError::ZipRefused {
                structure: ZipStructure::LocalHeader { index: 1 },
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("b.txt"), "{error}");
}

#[test]
fn sizes_and_counts_beyond_limits_are_refused() {
    let bytes = package(&[("pkg/a.txt", &[0u8; 100]), ("pkg/b.txt", b"x")]);
    let small_records = ReadOptions::default().with_max_record_size(99);
    let reader = PackageReader::from_bytes_with(bytes.clone(), small_records).unwrap();
    let error = reader.read("a.txt").unwrap_err();
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
    assert!(reader.read("b.txt").is_ok());

    let few_records = ReadOptions::default().with_max_records(1);
    let error = PackageReader::from_bytes_with(bytes, few_records).unwrap_err();
    assert!(
        matches!(error, ArchiveError::LimitExceeded { value: 3, .. }),
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
fn deflated_records_read_to_their_declared_size_as_pytorch_does() {
    let text = "x = 1\n".repeat(100);
    let original = zip_with(
        &[("pkg/a.py", text.as_bytes()), ("pkg/.data/version", b"6\n")],
        zip::CompressionMethod::Deflated,
    );
    let declare = |declared: usize| {
        let mut bytes = original.clone();
        let central = central_headers(&bytes)[0];
        put_u32(&mut bytes, central + 24, declared as u32);
        open(bytes).unwrap()
    };
    // Declared shorter: PyTorch stops there; verification complains.
    let reader = declare(text.len() - 10);
    assert_eq!(
        &reader.read("a.py").unwrap()[..],
        &text.as_bytes()[..text.len() - 10]
    );
    let error = reader.verify().unwrap_err();
    assert!(
        matches!(error, ArchiveError::SizeMismatch { at_least: true, .. }),
        "{error}"
    );
    // Declared longer: the stream ends early, which PyTorch refuses.
    let reader = declare(text.len() + 10);
    let error = reader.read("a.py").unwrap_err();
    assert!(
        matches!(error, ArchiveError::SizeMismatch { declared, .. } if declared == text.len() as u64 + 10),
        "{error}"
    );
}

#[test]
fn a_deflate_bomb_header_is_refused_before_allocating() {
    let original = zip_with(
        &[("pkg/a.py", b"tiny"), ("pkg/.data/version", b"6\n")],
        zip::CompressionMethod::Deflated,
    );
    let mut bytes = original.clone();
    let central = central_headers(&bytes)[0];
    put_u32(&mut bytes, central + 24, u32::MAX - 1);
    let reader = open(bytes).unwrap();
    let error = reader.read("a.py").unwrap_err();
    assert!(matches!(error, ArchiveError::CorruptZip { .. }), "{error}");
}

#[test]
fn other_compression_methods_are_refused_when_read() {
    let mut bytes = package(&[("pkg/a.txt", b"hello")]);
    let central = central_headers(&bytes)[0];
    bytes[central + 10] = 12; // bzip2
    bytes[8] = 12; // the local header agrees
    let reader = open(bytes).unwrap();
    let error = reader.read("a.txt").unwrap_err();
    assert!(
        matches!(
            error,
            ArchiveError::ZipRefused {
                error: MinizError::UnsupportedMethod,
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("a.txt"), "{error}");
}

#[test]
fn folder_entries_from_rezipping_tools_are_listed_as_pytorch_lists_them() {
    let bytes = stored(&[
        ("pkg/", b""),
        ("pkg/.data/", b""),
        ("pkg/.data/version", b"6\n"),
    ]);
    let reader = open(bytes).unwrap();
    assert_eq!(reader.prefix(), "pkg");
    let names: Vec<&str> = reader.records().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["", ".data/", ".data/version"]);
    assert_eq!(&reader.read(".data/").unwrap()[..], b"");
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

#[test]
fn bytes_after_the_archive_hide_its_end_record_as_miniz_scans() {
    let mut writer =
        tpkg_archive::PackageWriter::in_memory(tpkg_archive::WriteOptions::default()).unwrap();
    writer.write_record("a.txt", b"hello").unwrap();
    let archive = writer.finish().unwrap();
    let with_tail = |tail: usize| {
        let mut bytes = archive.clone();
        bytes.extend((0..tail).map(|i| (i % 251) as u8 | 0x80));
        bytes
    };
    // A short tail: the first 4 KiB window from the end holds the record.
    assert_eq!(
        &open(with_tail(1000)).unwrap().read("a.txt").unwrap()[..],
        b"hello"
    );
    // A longer one: the next window would start below 0, miniz's unsigned
    // step wraps, and PyTorch gives up (checked against PyTorch by the
    // container differential).
    let error = open(with_tail(6000)).unwrap_err();
    assert!(
        matches!(
            error,
            ArchiveError::ZipRefused {
                error: MinizError::FailedFindingCentralDir,
                ..
            }
        ),
        "{error}"
    );
}
