//! Property: however a real package is damaged, reading it returns values or
//! typed errors, never a panic, and never reads out of bounds.

mod common;

use proptest::prelude::*;
use tpkg_archive::{PackageMetadata, PackageReader};

fn corpus_bytes() -> Vec<Vec<u8>> {
    common::corpus_packages()
        .iter()
        .filter(|package| package.torch == "torch-2.13.0")
        .map(|package| std::fs::read(&package.path).unwrap())
        .collect()
}

/// Exercises everything a reader offers; only errors may come out.
fn read_everything(bytes: Vec<u8>) {
    let Ok(reader) = PackageReader::from_bytes(bytes) else {
        return;
    };
    let _ = PackageMetadata::read(&reader);
    let _ = reader.verify();
    for record in reader.records().to_vec() {
        if let Ok(Some(slice)) = reader.stored_slice(&record.name) {
            assert_eq!(slice.len() as u64, record.size);
        }
        if let Ok(data) = reader.read(&record.name) {
            assert_eq!(data.len() as u64, record.size);
        }
    }
}

#[derive(Debug, Clone)]
enum Damage {
    FlipBytes(Vec<(usize, u8)>),
    Truncate(usize),
    Overwrite { at: usize, with: Vec<u8> },
    Insert { at: usize, with: Vec<u8> },
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        prop::collection::vec((any::<usize>(), 1u8..=255), 1..8).prop_map(Damage::FlipBytes),
        any::<usize>().prop_map(Damage::Truncate),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..64))
            .prop_map(|(at, with)| Damage::Overwrite { at, with }),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..64))
            .prop_map(|(at, with)| Damage::Insert { at, with }),
    ]
}

fn apply(mut bytes: Vec<u8>, damage: &Damage) -> Vec<u8> {
    let len = bytes.len();
    match damage {
        Damage::FlipBytes(flips) => {
            for (at, mask) in flips {
                bytes[at % len] ^= mask;
            }
        }
        Damage::Truncate(at) => bytes.truncate(at % len),
        Damage::Overwrite { at, with } => {
            let at = at % len;
            let end = (at + with.len()).min(len);
            bytes[at..end].copy_from_slice(&with[..end - at]);
        }
        Damage::Insert { at, with } => {
            let at = at % len;
            bytes.splice(at..at, with.iter().copied());
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn damaged_corpus_packages_never_panic(which in any::<prop::sample::Index>(), damage in damage()) {
        let packages = corpus_bytes();
        let original = packages[which.index(packages.len())].clone();
        read_everything(apply(original, &damage));
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        read_everything(bytes);
    }

    /// Central-directory damage specifically: the part parsers disagree on.
    #[test]
    fn damaged_central_directories_never_panic(
        which in any::<prop::sample::Index>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..6),
    ) {
        let packages = corpus_bytes();
        let mut bytes = packages[which.index(packages.len())].clone();
        let start = bytes.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
        let tail = bytes.len() - start;
        for (index, mask) in flips {
            bytes[start + index.index(tail)] ^= mask;
        }
        read_everything(bytes);
    }
}
