//! Any bytes given to the readers of files that are not zips (legacy
//! `torch.save` streams and tars, pickle files) and of `.pt2` archives
//! produce a value or a typed error: no panic, no out-of-bounds read, no
//! unbounded allocation; and audit always answers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tpkg::archive::PackageReader;
use tpkg::audit::{AuditPolicy, audit_stream};
use tpkg::legacy::LegacyFile;

fuzz_target!(|data: &[u8]| {
    let _ = audit_stream(data, &AuditPolicy::default());
    if let Ok(file) = LegacyFile::from_bytes(data.to_vec()) {
        if let Ok(tensors) = file.tensors() {
            for (_, view) in &tensors {
                // Every view stays inside its storage.
                let _ = view.contiguous_bytes();
            }
        }
    }
    if let Ok(reader) = PackageReader::from_bytes(data.to_vec()) {
        if let Ok(tensors) = tpkg::pt2::pt2_tensors(&reader) {
            for index in 0..tensors.len() {
                let _ = tensors.view(index).map(|view| view.contiguous_bytes().len());
            }
        }
    }
});
