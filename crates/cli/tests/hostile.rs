//! Issue 10: every `tpkg` command against the hostile corpus
//! (`tests/data/hostile`, written by its `make.py`): each answers with a
//! clean error (exit 2 for unreadable input, 1 for findings or bad data) or
//! a finding, never a panic, within seconds and a bounded amount of memory.
//! Zip packages and raw pickles, and (naming their `format`) legacy
//! `torch.save` streams and tars, `.pt2` archives and TorchScript files.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/hostile")
}

struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    seconds: f64,
    /// The child's own peak resident set in bytes (Linux; 0 elsewhere).
    peak_rss: u64,
}

/// Waits for `child` without blocking: its exit status and its own peak
/// resident set, once it has exited.
#[cfg(target_os = "linux")]
fn try_wait_with_rss(child: &mut std::process::Child) -> Option<(std::process::ExitStatus, u64)> {
    use std::os::unix::process::ExitStatusExt;
    let mut status = 0;
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: wait4 on our own child's pid fills `status` and `usage`.
    let reaped = unsafe {
        libc::wait4(
            child.id() as libc::pid_t,
            &mut status,
            libc::WNOHANG,
            usage.as_mut_ptr(),
        )
    };
    if reaped <= 0 {
        return None;
    }
    // SAFETY: filled by wait4 for the reaped child.
    let usage = unsafe { usage.assume_init() };
    Some((
        std::process::ExitStatus::from_raw(status),
        u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024,
    ))
}

#[cfg(not(target_os = "linux"))]
fn try_wait_with_rss(child: &mut std::process::Child) -> Option<(std::process::ExitStatus, u64)> {
    child.try_wait().unwrap().map(|status| (status, 0))
}

/// Runs `tpkg args`, killing it after 20 seconds.
fn run(args: &[&str]) -> Ran {
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tpkg"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut out_pipe, mut err_pipe) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    // Keep the first MiB of each stream and drain the rest: a command may
    // rightly print a gigabyte (`cat` of a bomb), and holding it here would
    // count against every later child (fork copies this process's pages).
    fn capture(mut pipe: impl std::io::Read) -> String {
        let mut kept = Vec::new();
        let _ = std::io::Read::read_to_end(&mut (&mut pipe).take(1 << 20), &mut kept);
        let _ = std::io::copy(&mut pipe, &mut std::io::sink());
        String::from_utf8_lossy(&kept).into_owned()
    }
    let out_thread = std::thread::spawn(move || capture(&mut out_pipe));
    let err_thread = std::thread::spawn(move || capture(&mut err_pipe));
    let (status, peak_rss) = loop {
        if let Some((status, rss)) = try_wait_with_rss(&mut child) {
            break (Some(status), rss);
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            break (None, 0);
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    Ran {
        code: status.and_then(|s| s.code()),
        stdout: out_thread.join().unwrap(),
        stderr: err_thread.join().unwrap(),
        seconds: start.elapsed().as_secs_f64(),
        peak_rss,
    }
}

/// What one command may cost on one hostile input of `bytes` bytes, in
/// this test's debug build (ARCHITECTURE.md, "Bounds", gives the release
/// numbers): a base for starting up and the work any input may do
/// (budgets of 65,536 steps, 4 kB of copies), plus a share per input byte.
/// Memory counts from what `tpkg --version` holds (libtorch's initialisers
/// take about 100 MB when a workspace build links it). Generous against a
/// loaded machine; an exponential or quadratic walk blows through it on
/// these kilobyte inputs.
fn cost_bound(bytes: u64) -> (f64, u64) {
    static IDLE_RSS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let idle = *IDLE_RSS.get_or_init(|| run(&["--version"]).peak_rss);
    let mib = bytes as f64 / f64::from(1 << 20);
    let seconds = 5.0 + 10.0 * mib;
    let memory = idle + (64 << 20) + 64 * bytes;
    (seconds, memory)
}

/// Holds one command's time and memory to [`cost_bound`] of the input.
fn within_cost(file: &str, command: &str, bytes: u64, ran: &Ran) {
    let (seconds, memory) = cost_bound(bytes);
    assert!(
        ran.seconds < seconds,
        "{file} ({bytes} bytes): `{command}` took {:.2}s, more than {seconds:.1}s",
        ran.seconds
    );
    assert!(
        ran.peak_rss < memory,
        "{file} ({bytes} bytes): `{command}` peaked at {} MB, more than {} MB",
        ran.peak_rss >> 20,
        memory >> 20
    );
}

/// Largest resident set of any finished child, in bytes.
fn children_peak_rss() -> u64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr());
        usage.assume_init()
    };
    u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024
}

fn well_behaved(file: &str, command: &str, ran: &Ran) {
    assert!(
        matches!(ran.code, Some(0..=2)),
        "{file}: `{command}` exited {:?} after {:.1}s\n{}",
        ran.code,
        ran.seconds,
        ran.stderr
    );
    assert!(
        !ran.stderr.contains("panicked"),
        "{file}: `{command}` panicked:\n{}",
        ran.stderr
    );
    // A guard against runaway work (quadratic blow-ups, endless loops),
    // not a speed test: debug builds on a loaded 2-core machine take a few
    // seconds on the deepest inputs, so the bound is generous.
    assert!(
        ran.seconds < 60.0,
        "{file}: `{command}` took {:.1}s",
        ran.seconds
    );
}

#[test]
fn every_command_answers_every_hostile_input_cleanly() {
    let root = corpus();
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(root.join("manifest.json")).unwrap()).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for (file, expect) in manifest.as_object().unwrap() {
        let path = root.join(file);
        let p = path.to_str().unwrap();
        let bytes = std::fs::metadata(&path).unwrap().len();

        // audit: the exit status and the finding the manifest names.
        let audit = run(&["audit", p, "--json"]);
        well_behaved(file, "audit", &audit);
        within_cost(file, "audit", bytes, &audit);
        assert_eq!(
            audit.code,
            expect["audit"].as_i64().map(|c| c as i32),
            "{file}: audit\n{}\n{}",
            audit.stdout,
            audit.stderr
        );
        if let Some(finding) = expect["finding"].as_array() {
            let report: Value = serde_json::from_str(&audit.stdout).unwrap();
            // [level, kind, subject or record, optional text in the reason]
            let found = report["findings"].as_array().unwrap().iter().any(|f| {
                f["level"] == finding[0]
                    && f["kind"] == finding[1]
                    && (f["subject"] == finding[2] || f["record"] == finding[2])
                    && finding.get(3).is_none_or(|text| {
                        f["reason"]
                            .as_str()
                            .is_some_and(|r| r.contains(text.as_str().unwrap()))
                    })
            });
            assert!(found, "{file}: no finding {finding:?} in {}", audit.stdout);
        }
        if let Some(text) = expect["open_error"].as_str() {
            assert!(audit.stderr.contains(text), "{file}: {}", audit.stderr);
        }
        // What the file reads as (formats are told by content): entries of
        // the other formats name it, and their tensors are the main
        // object's (no record named).
        let format = expect["format"].as_str();
        if let Some(format) = format {
            let inspect = run(&["inspect", "--json", p]);
            well_behaved(file, "inspect --json", &inspect);
            let report: Value = serde_json::from_str(&inspect.stdout)
                .unwrap_or_else(|_| panic!("{file}: inspect\n{}", inspect.stderr));
            assert_eq!(report["format"], format, "{file}: inspect");
        }

        // Every other command: a clean answer, whatever it is.
        let out = scratch.path().join(format!("{file}.out"));
        let extract_dir = scratch.path().join(format!("{file}.dir"));
        std::fs::create_dir_all(&extract_dir).unwrap();
        let o = out.to_str().unwrap();
        let d = extract_dir.to_str().unwrap();
        let commands: Vec<Vec<&str>> = vec![
            vec!["inspect", p],
            vec!["inspect", "--json", p],
            vec!["tree", p],
            vec!["show", p, "x/p.pkl"],
            vec!["show", "--json", p, "x/t.pkl"],
            vec!["show", "--json", p, "x/p.pkl"],
            vec!["show", p],
            vec!["tensors", p, "x/t.pkl"],
            vec!["tensors", "--json", p],
            vec!["convert", p, "x/t.pkl", "--to", "pt", o],
            vec!["convert", p, "x/t.pkl", "--to", "safetensors", o],
            vec!["convert", p, "--to", "safetensors", o],
            vec!["convert", p, "x/p.pkl", "--to", "torchscript", o],
            vec!["verify", p],
            vec!["diff", p, p],
            vec!["cat", p, "x/p.pkl"],
            vec!["extract", p, d],
            vec!["repack", p, o],
            vec!["graph", p],
            vec!["graph", p, "--format", "svg"],
        ];
        for args in &commands {
            let ran = run(args);
            well_behaved(file, &args.join(" "), &ran);
            if std::env::var_os("TPKG_HOSTILE_COSTS").is_some() {
                eprintln!(
                    "cost {file} {bytes} {:.3} {} {}",
                    ran.seconds,
                    ran.peak_rss >> 10,
                    args.join(" ")
                );
            }
            within_cost(file, &args.join(" "), bytes, &ran);
            let peak = children_peak_rss();
            assert!(
                peak < 400 << 20,
                "{file}: `{}` (or an earlier command) used {} MB",
                args.join(" "),
                peak >> 20
            );
        }
        if let Some(text) = expect["tensors_error"].as_str() {
            let ran = match format {
                None => run(&["tensors", p, "x/t.pkl"]),
                Some(_) => run(&["tensors", p]),
            };
            assert_eq!(ran.code, Some(1), "{file}: tensors\n{}", ran.stdout);
            assert!(ran.stderr.contains(text), "{file}: {}", ran.stderr);
        }
        // verify: 1 (problems found) wherever tensors fail, unless the
        // manifest says otherwise.
        let verify_code = expect["verify"]
            .as_i64()
            .or(expect["tensors_error"].is_string().then_some(1));
        if let Some(code) = verify_code {
            let verified = run(&["verify", p]);
            assert_eq!(
                verified.code,
                Some(code as i32),
                "{file}: verify\n{}{}",
                verified.stdout,
                verified.stderr
            );
        }
        checked += 1;
    }
    assert!(checked >= 40, "{checked}");
    let peak = children_peak_rss();
    assert!(peak < 400 << 20, "a command used {} MB", peak >> 20);
}

/// Issue 10: every PyTorch-written package of the corpus (both versions,
/// zip and folder form) audits with no unsafe finding and no container
/// anomaly, so `tpkg audit` exits 0.
#[test]
fn clean_corpus_packages_audit_as_safe() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/corpus");
    let mut audited = 0;
    for version in ["torch-2.13.0", "torch-2.0.1"] {
        for entry in std::fs::read_dir(root.join(version)).unwrap() {
            let path = entry.unwrap().path();
            let package = if path.extension().is_some_and(|e| e == "pt") {
                path
            } else if path.is_dir() {
                // The folder form: DIR/<prefix>.
                match std::fs::read_dir(&path).unwrap().next() {
                    Some(inner) => inner.unwrap().path(),
                    None => continue,
                }
            } else {
                continue;
            };
            let ran = run(&["audit", package.to_str().unwrap(), "--json"]);
            assert_eq!(
                ran.code,
                Some(0),
                "{}: {}{}",
                package.display(),
                ran.stdout,
                ran.stderr
            );
            let report: Value = serde_json::from_str(&ran.stdout).unwrap();
            let unsafe_or_container: Vec<&Value> = report["findings"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| f["level"] == "unsafe" || f["kind"] == "container")
                .collect();
            assert!(
                unsafe_or_container.is_empty(),
                "{}: {unsafe_or_container:?}",
                package.display()
            );
            audited += 1;
        }
    }
    assert!(audited >= 14, "{audited}");
}
