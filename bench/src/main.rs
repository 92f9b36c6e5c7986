//! `tpkg-bench BENCHMARK INPUT REPETITIONS`: runs one tpkg operation on
//! `INPUT` several times and prints `{"seconds": [...], "peak_rss_bytes": n}`
//! (and the working memory, for large-data benchmarks).
//! `tpkg-bench chart REPORT.json OUT.png` draws the report.
//! `tpkg-bench split FILE REPETITIONS` splits the time of an owned load of
//! any PyTorch file into phases and reference copies (`split.rs`).
//! `cargo xtask bench` runs it beside the PyTorch/CPython baseline of the
//! same operation (`bench/baseline.py`) and writes the report.

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};

/// mimalloc: parsing Python sources allocates many small syntax-tree nodes;
/// glibc's malloc spent about 10% of `tpkg pack` in malloc/free.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod chart;
mod split;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [command, report, out] = args.as_slice()
        && command == "chart"
    {
        return chart::draw(Path::new(report), Path::new(out));
    }
    let [benchmark, input, repetitions] = args.as_slice() else {
        bail!(
            "usage: tpkg-bench BENCHMARK INPUT REPETITIONS | chart REPORT OUT | split FILE REPETITIONS"
        );
    };
    let repetitions: usize = repetitions.parse().context("REPETITIONS")?;
    let input = Path::new(input);
    if benchmark == "split" {
        return split::run(input, repetitions);
    }
    let mut seconds = Vec::with_capacity(repetitions);
    let mut memory = Memory::default();
    match benchmark.as_str() {
        "pickle_decode" => bench_pickle_decode(input, repetitions, &mut seconds)?,
        "glob_match" => bench_glob_match(input, repetitions, &mut seconds)?,
        "scan_imports" => bench_scan_imports(input, repetitions, &mut seconds)?,
        "pack_networkx" | "pack_sympy" => bench_pack_library(input, repetitions, &mut seconds)?,
        "convert_safetensors" | "convert_safetensors_nosync" => {
            bench_convert_safetensors(benchmark, input, repetitions, &mut seconds, &mut memory)?
        }
        "load_copy" | "load_small" => {
            bench_load_copy(input, repetitions, &mut seconds, &mut memory)?
        }
        "load_mmap" => bench_load_mmap(input, repetitions, &mut seconds, &mut memory)?,
        "torchsave_zip_load_copy" | "torchsave_legacy_load_copy" => {
            bench_torchsave_load_copy(input, repetitions, &mut seconds, &mut memory)?
        }
        "torchsave_zip_load_mmap" | "torchsave_legacy_load_mmap" => {
            bench_torchsave_load_mmap(input, repetitions, &mut seconds, &mut memory)?
        }
        "write_package" | "write_package_nosync" | "write_small" => {
            bench_write_package(benchmark, input, repetitions, &mut seconds, &mut memory)?
        }
        other => bail!("unknown benchmark {other:?}"),
    }
    let mut report = serde_json::json!({
        "seconds": seconds,
        "peak_rss_bytes": status_bytes("VmHWM:"),
    });
    if memory.measured {
        report["working_bytes"] = memory.worst_working.into();
        report["largest_storage_bytes"] = if benchmark.starts_with("torchsave_") {
            largest_storage_of_file(input)?
        } else {
            largest_storage(input)?
        }
        .into();
    }
    println!("{report}");
    Ok(())
}

/// Starts a write from a quiet disk: removes the previous output and waits
/// for the kernel to write back every dirty page (untimed), so no repetition
/// pays for the one before it. The baselines do the same.
fn settle_disk(out: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(out) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error.into()),
        _ => {}
    }
    let status = std::process::Command::new("sync").status()?;
    anyhow::ensure!(status.success(), "sync failed: {status}");
    Ok(())
}

/// The memory an operation works in, beyond its input and its result.
///
/// Before each repetition the kernel's peak-RSS mark is reset to the
/// current resident set (`/proc/self/clear_refs`); after it, the new peak
/// minus what was resident before (the input, when the benchmark holds
/// it) minus the bytes the operation returns (owned copies) is what it
/// needed on the way. "Loading and writing stay near the largest single
/// tensor" means this stays near the largest storage, not the archive.
#[derive(Default)]
struct Memory {
    before: u64,
    worst_working: u64,
    measured: bool,
}

impl Memory {
    fn start(&mut self) -> Instant {
        self.before = status_bytes("VmRSS:");
        // "5" resets VmHWM to VmRSS (Linux 4.0+); if refused the peak
        // only over-states the working memory.
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        Instant::now()
    }

    fn stop(&mut self, result_bytes: u64) {
        let added = status_bytes("VmHWM:").saturating_sub(self.before);
        self.worst_working = self.worst_working.max(added.saturating_sub(result_bytes));
        self.measured = true;
    }
}

/// The largest storage of the input's state dict, in bytes.
fn largest_storage(input: &Path) -> anyhow::Result<u64> {
    let reader = tpkg::archive::PackageReader::open(input)?;
    let tensors = tpkg::tensors::PackageTensors::load(&reader, "model/state_dict.pkl")?;
    let mut largest = 0;
    for index in 0..tensors.len() {
        largest = largest.max(tensors.view(index)?.storage_bytes().len() as u64);
    }
    Ok(largest)
}

/// The largest storage of any PyTorch file's main object, in bytes.
fn largest_storage_of_file(input: &Path) -> anyhow::Result<u64> {
    let file = tpkg::formats::PyTorchFile::open(input)?;
    let tensors = file.tensors(None)?;
    let mut largest = 0;
    for index in 0..tensors.len() {
        largest = largest.max(tensors.view(index)?.storage_bytes().len() as u64);
    }
    Ok(largest)
}

/// Reads one byte of every 4 KiB page of `bytes` and its last byte (what
/// the baselines' `touch_pages` reads), so mapped data is really faulted in.
fn touch_pages(bytes: &[u8]) -> u64 {
    let pages: u64 = bytes.iter().step_by(4096).map(|&b| u64::from(b)).sum();
    pages + bytes.last().map_or(0, |&b| u64::from(b))
}

/// A `/proc/self/status` memory line (`VmHWM:`, `VmRSS:`) in bytes, or 0.
fn status_bytes(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(field))
                .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Decode a pickle held in memory (as CPython's pickle.loads does).
fn bench_pickle_decode(
    input: &Path,
    repetitions: usize,
    seconds: &mut Vec<f64>,
) -> anyhow::Result<()> {
    let data = std::fs::read(input)?;
    for _ in 0..repetitions {
        let start = Instant::now();
        let graph = tpkg::pickle::decode(black_box(&data))?;
        seconds.push(start.elapsed().as_secs_f64());
        black_box(graph);
    }
    Ok(())
}

/// Match module names against exporter-style patterns.
fn bench_glob_match(
    input: &Path,
    repetitions: usize,
    seconds: &mut Vec<f64>,
) -> anyhow::Result<()> {
    let spec: serde_json::Value = serde_json::from_slice(&std::fs::read(input)?)?;
    let strings = |key: &str| -> Vec<String> {
        spec[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    let (patterns, names) = (strings("patterns"), strings("names"));
    let group = tpkg::glob::GlobGroup::new(
        tpkg::glob::Patterns::List(patterns),
        tpkg::glob::Patterns::none(),
        tpkg::glob::Separator::Dot,
    )?;
    for _ in 0..repetitions {
        let start = Instant::now();
        let matched = names.iter().filter(|n| group.matches(black_box(n))).count();
        seconds.push(start.elapsed().as_secs_f64());
        black_box(matched);
    }
    Ok(())
}

/// Scan the imports of every .py file of site-packages.
fn bench_scan_imports(
    input: &Path,
    repetitions: usize,
    seconds: &mut Vec<f64>,
) -> anyhow::Result<()> {
    let files: Vec<(String, String)> = serde_json::from_slice(&std::fs::read(input)?)?;
    for _ in 0..repetitions {
        let start = Instant::now();
        let mut references = 0;
        for (file, package) in &files {
            let Ok(source) = std::fs::read_to_string(file) else {
                continue;
            };
            if let Ok(imports) = tpkg::pysource::scan_imports(&source, package) {
                references += imports.references.len();
            }
        }
        seconds.push(start.elapsed().as_secs_f64());
        black_box(references);
    }
    Ok(())
}

/// Package a whole library as `tpkg pack` does, from the
/// interpreter's sys.path (asking it included).
fn bench_pack_library(
    input: &Path,
    repetitions: usize,
    seconds: &mut Vec<f64>,
) -> anyhow::Result<()> {
    let spec: serde_json::Value = serde_json::from_slice(&std::fs::read(input)?)?;
    let top = spec["top"].as_str().unwrap_or_default();
    let python = std::path::PathBuf::from(spec["python"].as_str().unwrap_or_default());
    let out = format!("{}.tpkg-out.pt", input.display());
    for _ in 0..repetitions {
        let start = Instant::now();
        let finder = tpkg::pysource::ModuleFinder::from_python(&python)?;
        let mut options = tpkg::archive::WriteOptions::default();
        if let Some(release) = finder.python_release() {
            options.python_version = release.to_owned();
        }
        let mut exporter = tpkg::exporter::PackageExporter::create_with(&out, finder, options)?;
        exporter.intern(format!("{top}.**"))?;
        exporter.extern_modules("**")?;
        exporter.save_module(top)?;
        exporter.close()?;
        seconds.push(start.elapsed().as_secs_f64());
    }
    std::fs::remove_file(&out)?;
    Ok(())
}

/// Open the package and write its tensors as a safetensors file.
fn bench_convert_safetensors(
    benchmark: &str,
    input: &Path,
    repetitions: usize,
    seconds: &mut Vec<f64>,
    memory: &mut Memory,
) -> anyhow::Result<()> {
    let out = input.with_extension("tpkg-out.safetensors");
    let options =
        tpkg::convert::ConvertOptions::default().with_durable(benchmark == "convert_safetensors");
    for _ in 0..repetitions {
        settle_disk(&out)?;
        let start = memory.start();
        let reader = tpkg::archive::PackageReader::open(input)?;
        let tensors = tpkg::tensors::PackageTensors::load(&reader, "model/state_dict.pkl")?;
        tpkg::convert::to_safetensors_with(&tensors, &out, options)?;
        seconds.push(start.elapsed().as_secs_f64());
        memory.stop(0);
    }
    std::fs::remove_file(&out)?;
    Ok(())
}

/// Open a state-dict package and copy every storage into memory it
/// owns (what loading into owned tensors costs; views would share).
fn bench_load_copy(
    input: &Path,
    repetitions: usize,
    seconds: &mut Vec<f64>,
    memory: &mut Memory,
) -> anyhow::Result<()> {
    for _ in 0..repetitions {
        let start = memory.start();
        let reader = tpkg::archive::PackageReader::open(input)?;
        let tensors = tpkg::tensors::PackageTensors::load(&reader, "model/state_dict.pkl")?;
        let owned = tensors.read_storages()?;
        seconds.push(start.elapsed().as_secs_f64());
        memory.stop(owned.values().map(|bytes| bytes.len() as u64).sum());
        black_box(owned);
    }
    Ok(())
}

/// Open it and make checked zero-copy views over the memory map.
fn bench_load_mmap(
    input: &Path,
    repetitions: usize,
    seconds: &mut Vec<f64>,
    memory: &mut Memory,
) -> anyhow::Result<()> {
    for _ in 0..repetitions {
        let start = memory.start();
        let reader = tpkg::archive::PackageReader::open(input)?;
        let tensors = tpkg::tensors::PackageTensors::load(&reader, "model/state_dict.pkl")?;
        let views: Vec<_> = (0..tensors.len())
            .map(|i| tensors.view(i))
            .collect::<Result<_, _>>()?;
        seconds.push(start.elapsed().as_secs_f64());
        memory.stop(0);
        black_box(views);
    }
    Ok(())
}

/// A torch.save file (zip or legacy, told apart by content) through
/// the one public entry point: every storage copied into memory
/// this process owns, as load_copy does for a package; then one byte
/// of every page of the copies read, as the baselines read theirs.
fn bench_torchsave_load_copy(
    input: &Path,
    repetitions: usize,
    seconds: &mut Vec<f64>,
    memory: &mut Memory,
) -> anyhow::Result<()> {
    for _ in 0..repetitions {
        let start = memory.start();
        let file = tpkg::formats::PyTorchFile::open(input)?;
        let tensors = file.tensors(None)?;
        let owned = tensors.read_storages()?;
        black_box(owned.values().map(|bytes| touch_pages(bytes)).sum::<u64>());
        seconds.push(start.elapsed().as_secs_f64());
        memory.stop(owned.values().map(|bytes| bytes.len() as u64).sum());
        black_box(owned);
    }
    Ok(())
}

/// The same file as checked zero-copy views over its memory map,
/// then one byte of every page of every storage read, so the data
/// really comes in (as torch.load(mmap=True) + a pass over it).
fn bench_torchsave_load_mmap(
    input: &Path,
    repetitions: usize,
    seconds: &mut Vec<f64>,
    memory: &mut Memory,
) -> anyhow::Result<()> {
    for _ in 0..repetitions {
        let start = memory.start();
        let file = tpkg::formats::PyTorchFile::open(input)?;
        let tensors = file.tensors(None)?;
        let views: Vec<_> = (0..tensors.len())
            .map(|i| tensors.view(i))
            .collect::<Result<_, _>>()?;
        let mut seen = std::collections::HashSet::new();
        let touched: u64 = views
            .iter()
            .filter(|view| seen.insert(&view.spec().storage.key))
            .map(|view| touch_pages(view.storage_bytes()))
            .sum();
        seconds.push(start.elapsed().as_secs_f64());
        memory.stop(0);
        black_box((touched, views));
    }
    Ok(())
}

/// Write the package's tensors (1 GiB) and pickle as a new package.
fn bench_write_package(
    benchmark: &str,
    input: &Path,
    repetitions: usize,
    seconds: &mut Vec<f64>,
    memory: &mut Memory,
) -> anyhow::Result<()> {
    let mut options = tpkg::archive::WriteOptions::default();
    options.durable = benchmark != "write_package_nosync";
    let reader = tpkg::archive::PackageReader::open(input)?;
    let tensors = tpkg::tensors::PackageTensors::load(&reader, "model/state_dict.pkl")?;
    let pickle = reader.read("model/state_dict.pkl")?;
    let mut storages: Vec<(String, &[u8])> = Vec::new();
    for index in 0..tensors.len() {
        let view = tensors.view(index)?;
        let key = &view.spec().storage.key;
        if !storages.iter().any(|(k, _)| k == key) {
            storages.push((key.clone(), view.storage_bytes()));
        }
    }
    // Page the input in once, as the baselines' inputs are.
    black_box(
        storages
            .iter()
            .map(|(_, b)| b.iter().step_by(4096).map(|&x| u64::from(x)).sum::<u64>())
            .sum::<u64>(),
    );
    let out = input.with_extension("tpkg-out.pt");
    for _ in 0..repetitions {
        settle_disk(&out)?;
        let start = memory.start();
        let mut writer = tpkg::archive::PackageWriter::create(&out, options.clone())?;
        for (key, bytes) in &storages {
            writer.write_record(&tpkg::tensors::storage_record(key), bytes)?;
        }
        writer.write_record("model/state_dict.pkl", &pickle)?;
        writer.write_extern_modules(&["collections", "torch._utils", "torch"])?;
        writer.finish()?;
        seconds.push(start.elapsed().as_secs_f64());
        memory.stop(0);
    }
    std::fs::remove_file(&out)?;
    Ok(())
}
