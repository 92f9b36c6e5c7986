//! Why tpkg parses zip directories itself: the `zip` crate rejects archives
//! PyTorch writes.
//!
//! `data/qWyYazkHMACldCsTQWaUpo.pt` was written by torch 2.13's
//! `torch._C.PyTorchFileWriter` (two records of zeros, 15 and 19 bytes,
//! then PyTorch's bookkeeping records). PyTorch's `PyTorchFileReader` and
//! Python's `zipfile` read it; `zip` 9.4.1 to 9.8.2 refuse it with "Invalid
//! Central Directory header", as they refuse about 3 in 100 of the random
//! archives PyTorch writes (issue 16; ARCHITECTURE.md, "crates/archive").

use std::path::Path;

use tpkg_archive::PackageReader;

fn fixture() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/qWyYazkHMACldCsTQWaUpo.pt")
}

#[test]
fn the_zip_crate_rejects_an_archive_pytorch_writes() {
    let bytes = std::fs::read(fixture()).unwrap();
    // If this starts passing, the zip crate fixed its reader: it could then
    // serve again as a second opinion in tests.
    let error = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap_err();
    assert!(error.to_string().contains("Central Directory"), "{error}");
}

#[test]
fn tpkg_reads_it_as_pytorch_does() {
    let reader = PackageReader::open(fixture()).unwrap();
    assert_eq!(reader.prefix(), "qWyYazkHMACldCsTQWaUpo");
    let listed: Vec<(&str, u64)> = reader
        .records()
        .iter()
        .map(|record| (record.name.as_str(), record.size))
        .collect();
    // What `PyTorchFileReader.get_all_records()` and `get_record` give.
    assert_eq!(
        listed,
        [
            ("zucounp", 15),
            ("fatqxzaayl", 19),
            ("version", 2),
            ("byteorder", 6),
            (".data/serialization_id", 40),
        ]
    );
    assert_eq!(&reader.read("zucounp").unwrap()[..], &[0u8; 15]);
    assert_eq!(&reader.read("version").unwrap()[..], b"3\n");
    reader.verify().unwrap();
}
