//! `tpkg-bench split FILE REPETITIONS`: where the time of loading a
//! PyTorch file into owned memory goes (perf's kernel view is not
//! available everywhere; these are timing splits).
//!
//! Prints the median of each phase of the owned load (`open`, `tensors`,
//! `read_storages`, `touch`, `drop`), and of reference operations on the
//! same bytes that separate the costs of a copy out of the page cache:
//!
//! - `fresh_memory`: allocating as many bytes as the storages hold and
//!   writing one byte per page (what a loader pays for memory it owns,
//!   before copying anything);
//! - `map_touch`: one byte per page of the storages through the map (the
//!   page faults of the source);
//! - `copy_warm_1_thread`, `copy_warm_threads`: copying every storage from
//!   the map into buffers already faulted in, on one thread and on one
//!   thread per core (the copy itself, memory bandwidth);
//! - `copy_fresh_threads`: the same into new buffers (`to_vec`, what the
//!   legacy path does, no pages released);
//! - `read_warm`: `read(2)` of the whole file into a buffer already
//!   faulted in, 1 MiB at a time (the kernel's copy, as `cat` does it but
//!   into owned memory);
//! - `read_cat`: `read(2)` of the whole file through one 128 KiB buffer
//!   (`cat` in process).

use std::hint::black_box;
use std::io::Read;
use std::path::Path;
use std::time::Instant;

use serde_json::json;

const PAGE: usize = 4096;

pub fn run(input: &Path, repetitions: usize) -> anyhow::Result<()> {
    let mut phases: Vec<(&str, Vec<f64>)> = Vec::new();
    let mut record = |name: &'static str, seconds: f64| match phases
        .iter_mut()
        .find(|(known, _)| *known == name)
    {
        Some((_, all)) => all.push(seconds),
        None => phases.push((name, vec![seconds])),
    };
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    for _ in 0..repetitions {
        // The owned load, phase by phase.
        let start = Instant::now();
        let file = tpkg::formats::PyTorchFile::open(input)?;
        record("open", start.elapsed().as_secs_f64());
        let start = Instant::now();
        let tensors = file.tensors(None)?;
        record("tensors", start.elapsed().as_secs_f64());
        let start = Instant::now();
        let owned = tensors.read_storages()?;
        record("read_storages", start.elapsed().as_secs_f64());
        let start = Instant::now();
        black_box(owned.values().map(|bytes| touch(bytes)).sum::<u64>());
        record("touch", start.elapsed().as_secs_f64());
        let start = Instant::now();
        drop(owned);
        record("drop", start.elapsed().as_secs_f64());

        // References on the same storages.
        let mut keys = std::collections::HashSet::new();
        let storages: Vec<&[u8]> = (0..tensors.len())
            .map(|index| tensors.view(index))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .filter(|view| keys.insert(view.spec().storage.key.clone()))
            .map(|view| view.storage_bytes())
            .collect();
        let start = Instant::now();
        let mut buffers: Vec<Vec<u8>> = storages.iter().map(|s| fresh(s.len())).collect();
        record("fresh_memory", start.elapsed().as_secs_f64());
        let start = Instant::now();
        black_box(storages.iter().map(|bytes| touch(bytes)).sum::<u64>());
        record("map_touch", start.elapsed().as_secs_f64());
        let start = Instant::now();
        for (buffer, bytes) in buffers.iter_mut().zip(&storages) {
            buffer.copy_from_slice(bytes);
        }
        record("copy_warm_1_thread", start.elapsed().as_secs_f64());
        let start = Instant::now();
        std::thread::scope(|scope| {
            let mut pairs: Vec<(&mut Vec<u8>, &&[u8])> =
                buffers.iter_mut().zip(&storages).collect();
            let share = pairs.len().div_ceil(threads).max(1);
            while !pairs.is_empty() {
                let rest = pairs.split_off(share.min(pairs.len()));
                let mine = std::mem::replace(&mut pairs, rest);
                scope.spawn(move || {
                    for (buffer, bytes) in mine {
                        buffer.copy_from_slice(bytes);
                    }
                });
            }
        });
        record("copy_warm_threads", start.elapsed().as_secs_f64());
        let start = Instant::now();
        let copies: Vec<Vec<u8>> = std::thread::scope(|scope| {
            let share = storages.len().div_ceil(threads).max(1);
            let workers: Vec<_> = storages
                .chunks(share)
                .map(|mine| {
                    scope.spawn(move || mine.iter().map(|bytes| bytes.to_vec()).collect::<Vec<_>>())
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|worker| worker.join().unwrap_or_default())
                .collect()
        });
        record("copy_fresh_threads", start.elapsed().as_secs_f64());
        drop(copies);
        drop(buffers);
        drop(tensors);
        drop(file);

        let length = usize::try_from(std::fs::metadata(input)?.len())?;
        let mut whole = fresh(length);
        let start = Instant::now();
        let mut reader = std::fs::File::open(input)?;
        let mut at = 0;
        while at < length {
            let end = (at + (1 << 20)).min(length);
            let n = reader.read(&mut whole[at..end])?;
            if n == 0 {
                break;
            }
            at += n;
        }
        record("read_warm", start.elapsed().as_secs_f64());
        drop(whole);
        let start = Instant::now();
        let mut reader = std::fs::File::open(input)?;
        let mut buffer = vec![0u8; 128 << 10];
        while reader.read(&mut buffer)? != 0 {}
        record("read_cat", start.elapsed().as_secs_f64());
    }
    let medians: serde_json::Map<String, serde_json::Value> = phases
        .into_iter()
        .map(|(name, mut seconds)| {
            seconds.sort_by(f64::total_cmp);
            (name.to_owned(), json!(seconds[seconds.len() / 2]))
        })
        .collect();
    println!("{}", serde_json::Value::Object(medians));
    Ok(())
}

/// `len` new bytes, each page faulted in (a large zeroed allocation is
/// fresh memory from the system, so the writes are its first touches).
fn fresh(len: usize) -> Vec<u8> {
    let mut buffer = vec![0u8; len];
    for at in (0..len).step_by(PAGE) {
        buffer[at] = 1;
    }
    buffer
}

/// One byte per page, and the last.
fn touch(bytes: &[u8]) -> u64 {
    let pages: u64 = bytes.iter().step_by(PAGE).map(|&b| u64::from(b)).sum();
    pages + bytes.last().map_or(0, |&b| u64::from(b))
}
