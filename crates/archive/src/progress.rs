//! Progress hooks for long operations (verify, extract, repack, convert).
//!
//! A library never draws anything: a caller that wants a progress bar
//! passes a [`Progress`] (a borrowed closure) in the operation's options,
//! and the operation calls it between units of work (a record, a tensor),
//! never inside them, with the bytes done so far. The default hook does
//! nothing and costs a branch per unit.
//!
//! ```
//! use std::sync::Mutex;
//! use tpkg_archive::{Progress, ProgressEvent};
//!
//! let seen = Mutex::new(Vec::new());
//! let hook = |event: ProgressEvent| seen.lock().unwrap().push(event.done);
//! let progress = Progress::new(&hook);
//! let counter = progress.counter(10);
//! counter.add(4);
//! counter.add(6);
//! assert_eq!(*seen.lock().unwrap(), [0, 4, 10]);
//! ```

use std::sync::Mutex;

/// How far an operation has got: `done` of `total` bytes (the sum of the
/// sizes of the records or tensors it works through).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProgressEvent {
    /// Bytes done so far; never decreases, and ends at `total` when the
    /// operation succeeds.
    pub done: u64,
    /// Bytes the operation works through.
    pub total: u64,
}

/// The hook itself: any function of a [`ProgressEvent`], shareable across
/// threads (some operations work on several cores).
pub type ProgressFn<'a> = dyn Fn(ProgressEvent) + Sync + 'a;

/// A progress hook as options carry it: none by default (reports are
/// dropped), or a borrowed [`ProgressFn`]. Two hooks are equal when they
/// are the same function.
///
/// ```
/// use tpkg_archive::{Progress, ProgressEvent};
///
/// let hook = |event: ProgressEvent| assert!(event.done <= event.total);
/// assert!(Progress::new(&hook).is_active());
/// assert!(!Progress::default().is_active());
/// ```
#[derive(Clone, Copy, Default)]
pub struct Progress<'a> {
    hook: Option<&'a ProgressFn<'a>>,
}

impl<'a> Progress<'a> {
    /// Reports to `hook`.
    pub fn new(hook: &'a ProgressFn<'a>) -> Self {
        Progress { hook: Some(hook) }
    }

    /// Whether a hook is set.
    pub fn is_active(&self) -> bool {
        self.hook.is_some()
    }

    /// Calls the hook, if any, with `done` of `total`.
    #[inline]
    pub fn report(&self, done: u64, total: u64) {
        if let Some(hook) = self.hook {
            hook(ProgressEvent { done, total });
        }
    }

    /// A running count towards `total` that reports every step (and, at
    /// once, `0` of `total`, so a bar knows its length before the first
    /// unit is done). Steps may come from several threads; the hook sees
    /// them one at a time, in increasing order.
    pub fn counter(self, total: u64) -> ProgressCounter<'a> {
        self.report(0, total);
        ProgressCounter {
            progress: self,
            total,
            done: Mutex::new(0),
        }
    }
}

impl std::fmt::Debug for Progress<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_active() {
            "Progress(hook)"
        } else {
            "Progress(none)"
        })
    }
}

impl PartialEq for Progress<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self.hook, other.hook) {
            (None, None) => true,
            (Some(a), Some(b)) => std::ptr::addr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for Progress<'_> {}

/// Bytes done towards a total, reported through a [`Progress`] hook at
/// every [`add`](Self::add). From [`Progress::counter`].
#[derive(Debug)]
pub struct ProgressCounter<'a> {
    progress: Progress<'a>,
    total: u64,
    done: Mutex<u64>,
}

impl ProgressCounter<'_> {
    /// `bytes` more are done: reports the new count (capped at the total).
    /// Without a hook this is a branch.
    pub fn add(&self, bytes: u64) {
        if !self.progress.is_active() {
            return;
        }
        // A poisoned count is still a count.
        let mut done = self
            .done
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *done = done.saturating_add(bytes).min(self.total);
        self.progress.report(*done, self.total);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counter_reports_increasing_counts_capped_at_the_total_from_any_thread() {
        let seen = Mutex::new(Vec::new());
        let hook = |event: ProgressEvent| seen.lock().unwrap().push((event.done, event.total));
        let counter = Progress::new(&hook).counter(1000);
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..50 {
                        counter.add(5);
                    }
                });
            }
        });
        counter.add(1);
        let seen = seen.into_inner().unwrap();
        assert_eq!(seen.len(), 202);
        assert_eq!(seen[0], (0, 1000));
        assert!(seen.windows(2).all(|pair| pair[0].0 <= pair[1].0));
        assert_eq!(seen[200], (1000, 1000));
        assert_eq!(seen[201], (1000, 1000), "capped at the total");
    }

    #[test]
    fn hooks_compare_by_identity() {
        let a = |_: ProgressEvent| {};
        let b = |_: ProgressEvent| {};
        assert_eq!(Progress::default(), Progress::default());
        assert_eq!(Progress::new(&a), Progress::new(&a));
        assert_ne!(Progress::new(&a), Progress::default());
        assert_eq!(format!("{:?}", Progress::new(&b)), "Progress(hook)");
    }
}
