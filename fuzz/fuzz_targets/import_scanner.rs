//! Any text given to the import scanner gives references or a typed error:
//! no panic, no hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tpkg::pysource::scan_imports;

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    for package in ["", "pkg", "a.b.c"] {
        let _ = scan_imports(source, package);
    }
});
