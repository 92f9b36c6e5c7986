//! Any bytes given to the package reader produce a value or a typed error:
//! no panic, no out-of-bounds read, no unbounded allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tpkg_archive::{PackageMetadata, PackageReader, ReadOptions};

fuzz_target!(|data: &[u8]| {
    // Keep each run cheap; the limits themselves are under test too.
    let options = ReadOptions::default().with_max_record_size(1 << 24);
    let Ok(reader) = PackageReader::from_bytes_with(data.to_vec(), options) else {
        return;
    };
    let _ = PackageMetadata::read(&reader);
    let _ = reader.verify();
    for record in reader.records() {
        if let Ok(Some(slice)) = reader.stored_slice(&record.name) {
            assert_eq!(slice.len() as u64, record.size);
        }
        if let Ok(bytes) = reader.read(&record.name) {
            assert_eq!(bytes.len() as u64, record.size);
            // Ranged reads agree with whole reads, and refuse to run past
            // the end.
            let (start, len) = (record.size / 3, record.size / 2);
            if let Ok(range) = reader.read_range(&record.name, start, len) {
                assert_eq!(range[..], bytes[start as usize..(start + len) as usize]);
            }
            assert!(reader.read_range(&record.name, start, record.size).is_err() || start == 0);
        }
    }
});
