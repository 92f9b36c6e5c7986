//! Progress bars: drawn on standard error when it is a terminal (here a
//! pseudo-terminal from `openpty`), never when it is piped, and not for a
//! command that finishes within the delay (`TPKG_PROGRESS_DELAY_MS=0`
//! lets a small input draw one). Standard output is the same either way.

#![cfg(unix)]

use std::fs::File;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data")
}

/// A pseudo-terminal 100 columns wide: (controller, terminal).
fn pty() -> (OwnedFd, OwnedFd) {
    let (mut controller, mut terminal) = (-1, -1);
    let size = libc::winsize {
        ws_row: 24,
        ws_col: 100,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two descriptors, which we then own; the
    // name and termios pointers may be null.
    let status = unsafe {
        libc::openpty(
            &mut controller,
            &mut terminal,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(status, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors are open and owned by nobody else.
    unsafe {
        (
            OwnedFd::from_raw_fd(controller),
            OwnedFd::from_raw_fd(terminal),
        )
    }
}

/// What one run printed.
struct Run {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Runs `tpkg args` in a fresh folder holding nothing (outputs are named
/// relative to it, so standard output is the same from run to run), with
/// standard error on a terminal or piped.
fn run(args: &[&str], on_terminal: bool, env: &[(&str, &str)]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_tpkg"));
    command
        .args(args)
        .current_dir(dir.path())
        .env_remove("TPKG_NO_PROGRESS")
        .env_remove("TPKG_PROGRESS_DELAY_MS")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    if !on_terminal {
        let output = command.stderr(Stdio::piped()).output().unwrap();
        return Run {
            stdout: output.stdout,
            stderr: output.stderr,
        };
    }
    let (controller, terminal) = pty();
    command.stderr(Stdio::from(terminal));
    let child = command.spawn().unwrap();
    // Our copy of the terminal end goes with `command`: the controller
    // then reads to the end when the child exits.
    drop(command);
    let reader = std::thread::spawn(move || {
        let mut file = File::from(controller);
        let mut bytes = Vec::new();
        let mut buffer = [0u8; 4096];
        // Linux reports EIO once every terminal end is closed.
        while let Ok(read @ 1..) = file.read(&mut buffer) {
            bytes.extend_from_slice(&buffer[..read]);
        }
        bytes
    });
    let output = child.wait_with_output().unwrap();
    Run {
        stdout: output.stdout,
        stderr: reader.join().unwrap(),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Standard output without `audit`'s timing (`... (0.05 s)`).
fn untimed(bytes: &[u8]) -> String {
    text(bytes)
        .lines()
        .map(|line| match line.rsplit_once(" (") {
            Some((head, time)) if time.ends_with(" s)") => head,
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_long_command_draws_a_bar_on_a_terminal_only_and_prints_the_same() {
    let corpus = data().join("corpus/torch-2.13.0");
    let state_dict = corpus.join("tiny_state_dict.pt");
    let package = corpus.join("mocked.pt");
    let (state_dict, package, corpus) = (
        state_dict.to_str().unwrap(),
        package.to_str().unwrap(),
        corpus.to_str().unwrap(),
    );
    let commands: [(&[&str], &str); 7] = [
        (&["verify", state_dict], "verifying ["),
        (&["tensors", state_dict], "hashing ["),
        (
            &[
                "convert",
                "--to",
                "safetensors",
                state_dict,
                "out.safetensors",
            ],
            "converting [",
        ),
        (
            &["convert", "--to", "pt", state_dict, "out.pt"],
            "converting [",
        ),
        (&["extract", package, "out"], "extracting ["),
        (&["repack", package, "out.pt"], "repacking ["),
        (&["audit", corpus], "auditing ["),
    ];
    let now = [("TPKG_PROGRESS_DELAY_MS", "0")];
    for (args, bar) in commands {
        let piped = run(args, false, &now);
        assert!(
            piped.stderr.is_empty(),
            "tpkg {args:?} piped: {}",
            text(&piped.stderr)
        );
        let drawn = run(args, true, &now);
        assert!(
            text(&drawn.stderr).contains(bar),
            "tpkg {args:?} on a terminal drew no {bar:?}: {:?}",
            text(&drawn.stderr)
        );
        assert!(
            untimed(&drawn.stdout) == untimed(&piped.stdout),
            "tpkg {args:?}: standard output differs with a bar:\n{}\n---\n{}",
            text(&drawn.stdout),
            text(&piped.stdout)
        );
    }
}

#[test]
fn no_bar_for_a_command_faster_than_the_delay_or_with_tpkg_no_progress() {
    let state_dict = data().join("corpus/torch-2.13.0/tiny_state_dict.pt");
    let args = ["verify", state_dict.to_str().unwrap()];
    let quick = run(&args, true, &[]);
    assert!(quick.stderr.is_empty(), "{:?}", text(&quick.stderr));
    let off = run(
        &args,
        true,
        &[("TPKG_PROGRESS_DELAY_MS", "0"), ("TPKG_NO_PROGRESS", "1")],
    );
    assert!(off.stderr.is_empty(), "{:?}", text(&off.stderr));
    assert!(quick.stdout == off.stdout && !quick.stdout.is_empty());
}
