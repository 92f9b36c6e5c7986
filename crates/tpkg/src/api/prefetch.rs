//! Scanning modules ahead of the exporter's walk, on the other cores.
//!
//! The exporter walks the dependency graph depth first, in PyTorch's order,
//! and that order decides the package's records, so the walk itself stays
//! on one thread. What it spends its time on — reading a module's source
//! and parsing it for imports — is a pure function of the module, though.
//! When the walk learns a module's dependencies, it hands the ones it will
//! intern to these workers, which scan them while the walk descends into
//! the first. The walk then takes finished scans, waits for running ones,
//! and takes back queued ones to scan itself, so it never idles behind a
//! queue.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use tpkg_pysource::{ModuleFinder, ScanError};

/// A module's source and the dependencies PyTorch's exporter would add.
pub(crate) struct Scanned {
    /// The source, or why it could not be read.
    pub source: Result<String, String>,
    /// Its dependencies (only if the source was read).
    pub deps: Option<Result<Vec<String>, ScanError>>,
}

/// Reads and scans one module.
pub(crate) fn scan(finder: &ModuleFinder, module: &str, file: &Path, is_package: bool) -> Scanned {
    match crate::exporter::read_source(file) {
        Ok(source) => {
            let deps = finder
                .dependencies(&source, module, is_package)
                .map(|d| d.modules);
            Scanned {
                source: Ok(source),
                deps: Some(deps),
            }
        }
        Err(error) => Scanned {
            source: Err(error.to_string()),
            deps: None,
        },
    }
}

enum Slot {
    Queued {
        file: PathBuf,
        is_package: bool,
    },
    Running,
    Done(Scanned),
    /// Taken back by the walk before a worker started it.
    Withdrawn,
}

#[derive(Default)]
struct Shared {
    slots: Mutex<HashMap<String, Slot>>,
    finished: Condvar,
}

impl Shared {
    fn slots(&self) -> MutexGuard<'_, HashMap<String, Slot>> {
        match self.slots.lock() {
            Ok(slots) => slots,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

struct Job {
    module: String,
    file: PathBuf,
    is_package: bool,
}

/// Worker threads scanning modules the walk will need.
pub(crate) struct Prefetcher {
    jobs: Option<Sender<Job>>,
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    finder: Arc<ModuleFinder>,
}

impl Prefetcher {
    /// One worker per core beyond the first (at most three); `None` on a
    /// single core, where prefetching cannot help.
    pub(crate) fn start(finder: Arc<ModuleFinder>) -> Option<Self> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = cores.saturating_sub(1).min(3);
        if threads == 0 {
            return None;
        }
        let (jobs, receiver) = channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        let shared = Arc::new(Shared::default());
        let mut workers = Vec::new();
        for index in 0..threads {
            let (worker_finder, receiver, shared) = (
                Arc::clone(&finder),
                Arc::clone(&receiver),
                Arc::clone(&shared),
            );
            let spawned = std::thread::Builder::new()
                .name(format!("tpkg-scan-{index}"))
                .spawn(move || work(&worker_finder, &receiver, &shared));
            match spawned {
                Ok(worker) => workers.push(worker),
                Err(_) => break,
            }
        }
        (!workers.is_empty()).then_some(Prefetcher {
            jobs: Some(jobs),
            shared,
            workers,
            finder,
        })
    }

    /// Asks for `module` to be scanned (once).
    pub(crate) fn submit(&self, module: &str, file: PathBuf, is_package: bool) {
        let mut slots = self.shared.slots();
        if slots.contains_key(module) {
            return;
        }
        slots.insert(
            module.to_owned(),
            Slot::Queued {
                file: file.clone(),
                is_package,
            },
        );
        drop(slots);
        if let Some(jobs) = &self.jobs {
            let job = Job {
                module: module.to_owned(),
                file,
                is_package,
            };
            if jobs.send(job).is_err() {
                self.shared.slots().remove(module);
            }
        }
    }

    /// The scan of `module` if a worker has it. A queued job is withdrawn
    /// (`None`: the caller scans it now). While a worker runs it, the caller
    /// scans other queued modules instead of idling, and waits only when
    /// none is left.
    pub(crate) fn take(&self, module: &str) -> Option<Scanned> {
        let mut slots = self.shared.slots();
        loop {
            match slots.remove(module) {
                None => return None,
                Some(Slot::Done(scanned)) => return Some(scanned),
                Some(Slot::Queued { .. } | Slot::Withdrawn) => {
                    slots.insert(module.to_owned(), Slot::Withdrawn);
                    return None;
                }
                Some(Slot::Running) => {
                    slots.insert(module.to_owned(), Slot::Running);
                    let other = slots.iter().find_map(|(name, slot)| match slot {
                        Slot::Queued { file, is_package } => {
                            Some((name.clone(), file.clone(), *is_package))
                        }
                        _ => None,
                    });
                    match other {
                        Some((name, file, is_package)) => {
                            slots.insert(name.clone(), Slot::Running);
                            drop(slots);
                            let scanned = scan(&self.finder, &name, &file, is_package);
                            slots = self.shared.slots();
                            slots.insert(name, Slot::Done(scanned));
                        }
                        None => {
                            slots = match self.shared.finished.wait(slots) {
                                Ok(slots) => slots,
                                Err(poisoned) => poisoned.into_inner(),
                            };
                        }
                    }
                }
            }
        }
    }
}

fn work(finder: &ModuleFinder, receiver: &Mutex<Receiver<Job>>, shared: &Shared) {
    loop {
        let job = match receiver.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else {
            return;
        };
        {
            let mut slots = shared.slots();
            match slots.get(&job.module) {
                Some(Slot::Queued { .. }) => {
                    slots.insert(job.module.clone(), Slot::Running);
                }
                _ => continue,
            }
        }
        // A panic must not leave the walk waiting forever: the slot is
        // withdrawn and the walk scans the module itself.
        let scanned = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            scan(finder, &job.module, &job.file, job.is_package)
        }));
        let slot = match scanned {
            Ok(scanned) => Slot::Done(scanned),
            Err(_) => Slot::Withdrawn,
        };
        shared.slots().insert(job.module, slot);
        shared.finished.notify_all();
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        // Closing the channel ends the workers' loops.
        self.jobs.take();
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}
