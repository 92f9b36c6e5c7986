//! Writing is atomic: until `finish` succeeds the target keeps its old
//! content, whatever happens to the writer.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};

use tpkg_archive::{PackageReader, PackageWriter, WriteOptions};

const OLD: &[u8] = b"the previous file, which must survive";

fn folder_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn a_failed_write_leaves_the_old_file_and_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("model.pt");
    std::fs::write(&target, OLD).unwrap();

    let mut writer = PackageWriter::create(&target, WriteOptions::default()).unwrap();
    writer.write_record("a.txt", b"new").unwrap();
    // Declared 100 bytes, the reader has 3: the write fails midway.
    assert!(writer.write_record_from("b.bin", &b"abc"[..], 100).is_err());
    assert!(writer.finish().is_err());

    assert_eq!(std::fs::read(&target).unwrap(), OLD);
    assert_eq!(folder_entries(dir.path()), ["model.pt"]);
}

#[test]
fn a_dropped_or_panicking_writer_leaves_the_old_file_and_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("model.pt");
    std::fs::write(&target, OLD).unwrap();

    let mut writer = PackageWriter::create(&target, WriteOptions::default()).unwrap();
    writer.write_record("a.txt", b"new").unwrap();
    drop(writer);

    let panicked = std::panic::catch_unwind(|| {
        let mut writer = PackageWriter::create(&target, WriteOptions::default()).unwrap();
        writer.write_record("a.txt", b"new").unwrap();
        panic!("the caller crashed while writing");
    });
    assert!(panicked.is_err());

    assert_eq!(std::fs::read(&target).unwrap(), OLD);
    assert_eq!(folder_entries(dir.path()), ["model.pt"]);
}

#[test]
fn a_finished_write_replaces_the_file_and_keeps_its_permissions() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("model.pt");
    std::fs::write(&target, OLD).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o640)).unwrap();
    }
    let mut writer = PackageWriter::create(&target, WriteOptions::default()).unwrap();
    writer.write_record("a.txt", b"new").unwrap();
    assert_eq!(writer.finish().unwrap(), target);
    assert_eq!(
        &PackageReader::open(&target).unwrap().read("a.txt").unwrap()[..],
        b"new"
    );
    assert_eq!(folder_entries(dir.path()), ["model.pt"]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&target).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
    }
}

/// A reader that never ends: the child process writes "forever" until killed.
struct Endless;

impl Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        std::thread::sleep(std::time::Duration::from_millis(5));
        let n = buf.len().min(4096);
        buf[..n].fill(0xAB);
        Ok(n)
    }
}

const CHILD_TARGET: &str = "TPKG_TEST_KILLED_WRITER_TARGET";
const CHILD_MARKER: &str = "child: writing now";

/// Runs itself as a child process that is SIGKILLed in the middle of a write.
#[test]
fn a_killed_writer_leaves_the_old_file_intact() {
    if let Some(target) = std::env::var_os(CHILD_TARGET) {
        let mut writer = PackageWriter::create(&target, WriteOptions::default()).unwrap();
        writer.write_record("a.txt", b"new").unwrap();
        println!("{CHILD_MARKER}");
        let _ = writer.write_record_from(".data/0.storage", Endless, 1 << 40);
        unreachable!("the parent kills this process before the write ends");
    }

    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("model.pt");
    std::fs::write(&target, OLD).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "a_killed_writer_leaves_the_old_file_intact",
            "--exact",
            "--nocapture",
        ])
        .env(CHILD_TARGET, &target)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let started = BufReader::new(stdout)
        .lines()
        .any(|line| line.is_ok_and(|line| line.contains(CHILD_MARKER)));
    assert!(started, "the child never started writing");
    std::thread::sleep(std::time::Duration::from_millis(50));
    child.kill().unwrap();
    child.wait().unwrap();

    assert_eq!(std::fs::read(&target).unwrap(), OLD);
    // SIGKILL gives no chance to clean up: at most one recognisable
    // temporary file is left, never a damaged target.
    let entries = folder_entries(dir.path());
    assert!(entries.contains(&"model.pt".to_owned()));
    for entry in entries.iter().filter(|e| *e != "model.pt") {
        assert!(
            entry.starts_with(".tpkg-") && entry.ends_with(".tmp"),
            "{entry}"
        );
    }
}
