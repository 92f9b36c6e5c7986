//! Any bytes given to the pickle decoder produce a value graph or a typed
//! error: no panic, no hang, memory bounded by the input. A decoded graph
//! renders (or reports a limit), and re-encodes to a pickle that decodes to
//! the same value image.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tpkg::pickle::{decode, encode, scan_globals};
use tpkg::show::{image, pretty};

fuzz_target!(|data: &[u8]| {
    let _ = scan_globals(data);
    let Ok(graph) = decode(data) else {
        return;
    };
    let _ = pretty(&graph, 100);
    let Ok(original) = image(&graph) else {
        return;
    };
    for protocol in [3, 4] {
        let Ok(bytes) = encode(&graph, protocol) else {
            continue;
        };
        let again = decode(&bytes).expect("tpkg's own pickles decode");
        assert_eq!(image(&again).expect("renders as before"), original);
    }
});
