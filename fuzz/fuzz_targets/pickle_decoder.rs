//! Any bytes given to the pickle decoder produce a value graph or a typed
//! error: no panic, no hang, memory bounded by the input. A decoded graph
//! renders (or reports a limit), and re-encodes to a pickle that decodes to
//! the same value image.
//!
//! Cost per input byte (ARCHITECTURE.md, "Bounds"): the graph's size, the
//! tensor listing and the rendered outputs stay within a constant factor of
//! the input's length; a finding here is a walk or a decoder path that is
//! not linear.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tpkg::pickle::{decode, encode, scan_globals};
use tpkg::show::{image, pretty};
use tpkg::tensors::find_tensors;
use tpkg::tensors::module::Budget;

fuzz_target!(|data: &[u8]| {
    let _ = scan_globals(data);
    let Ok(graph) = decode(data) else {
        return;
    };
    // Every value comes from an opcode (INST and OBJ add two); every
    // reference from a stack slot some opcode filled.
    let len = data.len() as u64;
    assert!(
        graph.len() as u64 <= 3 * len,
        "{} values from {len} bytes",
        graph.len()
    );
    let weight = Budget::weight(&graph);
    assert!(weight <= 8 * len, "weight {weight} from {len} bytes");
    // Every walk's work, hence its output, is bounded by the budget.
    let limit = Budget::for_graph(&graph).limit();
    if let Ok(tensors) = find_tensors(&graph) {
        assert!(tensors.len() as u64 <= limit, "{} tensors", tensors.len());
    }
    let text = pretty(&graph, 100);
    assert!(
        text.len() as u64 <= 64 * limit,
        "pretty wrote {} bytes",
        text.len()
    );
    let Ok(original) = image(&graph) else {
        return;
    };
    let image_len = original.to_string().len() as u64;
    assert!(image_len <= 128 * limit, "image of {image_len} bytes");
    for protocol in [3, 4] {
        let Ok(bytes) = encode(&graph, protocol) else {
            continue;
        };
        let again = decode(&bytes).expect("tpkg's own pickles decode");
        assert_eq!(image(&again).expect("renders as before"), original);
    }
});
