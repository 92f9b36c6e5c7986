//! Progress bars on standard error for the commands that can run long
//! (`verify`, `extract`, `repack`, `convert`, `tensors`, `audit` of
//! several files).
//!
//! The libraries only call a hook ([`tpkg::archive::Progress`]) between
//! records or tensors; drawing is this module's business. A bar is drawn
//! only when standard error is a terminal and `TPKG_NO_PROGRESS` is unset
//! or empty; otherwise nothing is created and the output is byte for byte
//! what it is without bars. A bar stays hidden for its first second, so a
//! command that finishes sooner never flickers one
//! (`TPKG_PROGRESS_DELAY_MS` changes the delay; tests set it to 0). Bars
//! have no colour, so `NO_COLOR` has nothing to turn off.

use std::io::IsTerminal;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tpkg::archive::{Progress, ProgressEvent};

/// How long a bar stays hidden by default.
const DEFAULT_DELAY: Duration = Duration::from_secs(1);

/// How often a visible bar is redrawn between reports (for its rate, ETA
/// and elapsed time while one large record is worked on).
const TICK: Duration = Duration::from_millis(200);

/// A bar on standard error, revealed after the delay; cleared when
/// finished or dropped (an error path included).
pub struct Bar {
    bar: ProgressBar,
    /// Dropped to tell the reveal thread the work is done.
    stop: Option<Sender<()>>,
    reveal: Option<JoinHandle<()>>,
}

/// What a bar counts.
enum Unit {
    /// Bytes, with a rate and an ETA.
    Bytes,
    /// Files, with the time elapsed.
    Files,
}

impl Bar {
    /// A bar counting bytes, labelled `message` ("verifying"), or `None`
    /// when no bar may be drawn.
    pub fn bytes(message: &'static str) -> Option<Bar> {
        Bar::new(Unit::Bytes, message, 0)
    }

    /// A bar counting `len` files, or `None` when no bar may be drawn.
    pub fn files(message: &'static str, len: u64) -> Option<Bar> {
        Bar::new(Unit::Files, message, len)
    }

    fn new(unit: Unit, message: &'static str, len: u64) -> Option<Bar> {
        if !enabled() {
            return None;
        }
        let template = match unit {
            Unit::Bytes => "{msg} [{wide_bar}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            Unit::Files => "{msg} [{wide_bar}] {pos}/{len} files {elapsed}",
        };
        let style = ProgressStyle::with_template(template)
            .map(|style| style.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden())
            .with_style(style)
            .with_message(message);
        let delay = delay();
        if delay.is_zero() {
            show(&bar);
            return Some(Bar {
                bar,
                stop: None,
                reveal: None,
            });
        }
        let (stop, stopped) = mpsc::channel::<()>();
        let hidden = bar.clone();
        let reveal = std::thread::spawn(move || {
            if let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(delay) {
                show(&hidden);
            }
        });
        Some(Bar {
            bar,
            stop: Some(stop),
            reveal: Some(reveal),
        })
    }

    /// `done` of `total` (bytes or files).
    pub fn set(&self, done: u64, total: u64) {
        if self.bar.length() != Some(total) {
            self.bar.set_length(total);
        }
        self.bar.set_position(done);
    }

    /// Clears the bar (also done on drop).
    pub fn finish(self) {}
}

impl Drop for Bar {
    fn drop(&mut self) {
        // Disconnects the channel: the reveal thread returns at once.
        self.stop = None;
        if let Some(reveal) = self.reveal.take() {
            let _ = reveal.join();
        }
        self.bar.finish_and_clear();
    }
}

/// Runs `work` with a hook drawing a bytes bar labelled `message` (a
/// no-op hook when no bar may be drawn), and clears the bar after.
pub fn with_bytes<R>(message: &'static str, work: impl FnOnce(Progress<'_>) -> R) -> R {
    let Some(bar) = Bar::bytes(message) else {
        return work(Progress::default());
    };
    let hook = |event: ProgressEvent| bar.set(event.done, event.total);
    let result = work(Progress::new(&hook));
    bar.finish();
    result
}

fn show(bar: &ProgressBar) {
    bar.set_draw_target(ProgressDrawTarget::stderr());
    bar.enable_steady_tick(TICK);
}

/// Whether bars may be drawn: standard error is a terminal and
/// `TPKG_NO_PROGRESS` is unset or empty.
fn enabled() -> bool {
    std::io::stderr().is_terminal()
        && std::env::var_os("TPKG_NO_PROGRESS").is_none_or(|value| value.is_empty())
}

/// `TPKG_PROGRESS_DELAY_MS`, or one second.
fn delay() -> Duration {
    std::env::var("TPKG_PROGRESS_DELAY_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map_or(DEFAULT_DELAY, Duration::from_millis)
}
