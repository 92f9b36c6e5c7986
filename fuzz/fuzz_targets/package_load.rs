//! The whole load path on any bytes: open as a package, then everything a
//! user can ask of it — metadata, every record, every pickle with its
//! tensors, the importer's views, verify, audit (container included), diff
//! against itself, TorchScript discovery. Typed errors and findings only:
//! no panic, no hang, no unbounded allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tpkg::archive::{PackageReader, ReadOptions};

fuzz_target!(|data: &[u8]| {
    let options = ReadOptions::default().with_max_record_size(1 << 24);
    // The container audit never needs a valid package.
    let _ = tpkg::audit::container_findings(data);
    let Ok(reader) = PackageReader::from_bytes_with(data.to_vec(), options) else {
        return;
    };
    let _ = tpkg::verify::verify(&reader);
    let _ = tpkg::audit::audit(&reader, reader.zip_bytes(), &Default::default());
    let _ = tpkg::diff::diff(&reader, &reader);
    for record in reader.records() {
        if let Ok(tensors) = tpkg::tensors::PackageTensors::load(&reader, &record.name) {
            // Cost per input byte (ARCHITECTURE.md, "Bounds"): the value
            // image stays within the graph's budget.
            let limit = tpkg::tensors::module::Budget::for_graph(tensors.graph()).limit();
            for index in 0..tensors.len() {
                if let Ok(view) = tensors.view(index) {
                    let _ = view.contiguous_bytes();
                }
            }
            if let Ok(image) = tpkg::show::image(tensors.graph()) {
                let len = image.to_string().len() as u64;
                assert!(len <= 128 * limit, "image of {len} bytes");
            }
        }
        let _ = tpkg::torchscript::script_modules(&reader, &record.name);
    }
    if let Ok(importer) = tpkg::importer::PackageImporter::from_reader(reader) {
        for module in importer.interned_modules() {
            let _ = importer.get_source(&module);
        }
        let _ = importer.mocked_modules();
        let _ = importer.file_structure("**", ());
    }
});
