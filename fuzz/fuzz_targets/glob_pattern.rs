//! Any pattern text compiles or gives a `GlobError`; matching never panics;
//! and the fast strategies of a `GlobGroup` (literal set, prefix set) agree
//! with the general segment matcher of the same pattern.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tpkg_glob::{GlobGroup, Pattern, Patterns, Separator};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // "pattern\0name\0name..."
    let mut parts = text.split('\0');
    let pattern = parts.next().unwrap_or_default();
    let names: Vec<&str> = parts.collect();
    for separator in [Separator::Dot, Separator::Slash] {
        let group = GlobGroup::new(pattern, Patterns::none(), separator);
        let single = Pattern::new(pattern, separator);
        assert_eq!(group.is_ok(), single.is_ok());
        if let (Ok(group), Ok(single)) = (group, single) {
            for name in &names {
                assert_eq!(group.matches(name), single.matches(name), "{pattern:?} {name:?}");
            }
        }
    }
});
