//! torch.package's module-name mangling.
//!
//! Every `PackageImporter` gives the modules it loads a unique parent,
//! `<torch_package_N>`, so that two packages (or a package and the host) can
//! hold different modules of the same name at once: `resnet.model` loaded by
//! the first importer is `<torch_package_0>.resnet.model`. When a loaded
//! object is saved again, the exporter demangles the name back.
//!
//! The angle brackets make a mangled name impossible to import as a normal
//! module, so it can never collide with real code.
//!
//! ```
//! use tpkg_mangling::{demangle, is_mangled, Mangler};
//!
//! let mangler = Mangler::new();
//! let mangled = mangler.mangle("resnet.model").unwrap();
//! assert!(is_mangled(&mangled));
//! assert_eq!(mangler.demangle(&mangled), "resnet.model");
//! assert_eq!(demangle(&mangled), "resnet.model");
//! ```
//!
//! Semantics follow PyTorch's `torch/package/_mangling.py`.
//! One deliberate difference: PyTorch's `is_mangled` uses the regex `\d`,
//! which also accepts non-ASCII decimal digits; tpkg accepts ASCII digits
//! only. No mangler ever produces other digits.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

const PREFIX_START: &str = "<torch_package_";

/// The process-wide counter behind mangle parents; one value per
/// [`Mangler`], like PyTorch's module-global `_mangle_index`.
static NEXT_INDEX: AtomicU64 = AtomicU64::new(0);

/// Mangling an empty name is refused (PyTorch raises `AssertionError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmptyNameError;

impl fmt::Display for EmptyNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cannot mangle an empty module name")
    }
}

impl std::error::Error for EmptyNameError {}

/// A mangle parent `<torch_package_N>`, unique in this process.
///
/// Creating one takes the next index from a process-wide atomic counter, so
/// manglers made on different threads never share a parent.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mangler {
    index: u64,
    parent: String,
}

impl Mangler {
    /// A mangler with the next unused index.
    ///
    /// ```
    /// let (a, b) = (tpkg_mangling::Mangler::new(), tpkg_mangling::Mangler::new());
    /// assert_ne!(a.parent_name(), b.parent_name());
    /// ```
    pub fn new() -> Self {
        Self::with_index(NEXT_INDEX.fetch_add(1, Ordering::Relaxed))
    }

    /// A mangler for a given index, e.g. to recreate the names a Python
    /// process used. Does not advance the process-wide counter.
    ///
    /// ```
    /// let mangler = tpkg_mangling::Mangler::with_index(7);
    /// assert_eq!(mangler.parent_name(), "<torch_package_7>");
    /// ```
    pub fn with_index(index: u64) -> Self {
        Mangler {
            index,
            parent: format!("{PREFIX_START}{index}>"),
        }
    }

    /// This mangler's index `N`.
    ///
    /// ```
    /// assert_eq!(tpkg_mangling::Mangler::with_index(3).index(), 3);
    /// ```
    pub fn index(&self) -> u64 {
        self.index
    }

    /// The mangle parent, `<torch_package_N>` (PyTorch's `PackageImporter.id()`).
    ///
    /// ```
    /// assert_eq!(tpkg_mangling::Mangler::with_index(0).parent_name(), "<torch_package_0>");
    /// ```
    pub fn parent_name(&self) -> &str {
        &self.parent
    }

    /// `<torch_package_N>.name`. The same name always mangles the same way.
    ///
    /// ```
    /// let mangler = tpkg_mangling::Mangler::with_index(0);
    /// assert_eq!(mangler.mangle("a.b").unwrap(), "<torch_package_0>.a.b");
    /// assert!(mangler.mangle("").is_err());
    /// ```
    pub fn mangle(&self, name: &str) -> Result<String, EmptyNameError> {
        if name.is_empty() {
            return Err(EmptyNameError);
        }
        Ok(format!("{}.{name}", self.parent))
    }

    /// Strips this mangler's parent; names mangled by other manglers (and
    /// unmangled names) pass through unchanged.
    ///
    /// ```
    /// use tpkg_mangling::Mangler;
    /// let (a, b) = (Mangler::with_index(0), Mangler::with_index(1));
    /// let name = a.mangle("x.y").unwrap();
    /// assert_eq!(a.demangle(&name), "x.y");
    /// assert_eq!(b.demangle(&name), name);
    /// ```
    pub fn demangle<'a>(&self, mangled: &'a str) -> &'a str {
        mangled
            .strip_prefix(self.parent.as_str())
            .and_then(|rest| rest.strip_prefix('.'))
            .unwrap_or(mangled)
    }
}

impl Default for Mangler {
    fn default() -> Self {
        Self::new()
    }
}

/// Length of the `<torch_package_N>` at the start of `name`, if any.
fn mangle_prefix_len(name: &str) -> Option<usize> {
    let rest = name.strip_prefix(PREFIX_START)?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || rest.as_bytes().get(digits) != Some(&b'>') {
        return None;
    }
    Some(PREFIX_START.len() + digits + 1)
}

/// Whether `name` starts with a mangle parent `<torch_package_N>`.
///
/// ```
/// use tpkg_mangling::is_mangled;
/// assert!(is_mangled("<torch_package_0>.foo"));
/// assert!(is_mangled("<torch_package_12>"));
/// assert!(!is_mangled("foo.<torch_package_0>"));
/// assert!(!is_mangled("<torch_package_>.foo"));
/// ```
pub fn is_mangled(name: &str) -> bool {
    mangle_prefix_len(name).is_some()
}

/// Removes the mangle parent of any mangler. Like PyTorch, a bare parent
/// demangles to `""`, and everything up to the first `.` counts as the parent
/// once the name is mangled.
///
/// ```
/// use tpkg_mangling::demangle;
/// assert_eq!(demangle("<torch_package_3>.a.b"), "a.b");
/// assert_eq!(demangle("<torch_package_0>"), "");
/// assert_eq!(demangle("not.mangled"), "not.mangled");
/// ```
pub fn demangle(name: &str) -> &str {
    if !is_mangled(name) {
        return name;
    }
    // PyTorch: `name.partition(".")` — the first dot anywhere.
    name.split_once('.').map_or("", |(_, rest)| rest)
}

/// The mangle parent of a mangled name (everything before the first `.`),
/// or the name itself when it is not mangled, so that
/// `mangle_prefix(m) + "." + demangle(m) == m`.
///
/// ```
/// use tpkg_mangling::mangle_prefix;
/// assert_eq!(mangle_prefix("<torch_package_0>.a.b"), "<torch_package_0>");
/// assert_eq!(mangle_prefix("a.b"), "a.b");
/// ```
pub fn mangle_prefix(name: &str) -> &str {
    if !is_mangled(name) {
        return name;
    }
    name.split_once('.').map_or(name, |(prefix, _)| prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_recognition_table() {
        let cases = [
            ("<torch_package_0>", true),
            ("<torch_package_0>.a", true),
            ("<torch_package_123>.a.b", true),
            ("<torch_package_0>x", true), // PyTorch: re.match, not fullmatch
            ("<torch_package_>.a", false),
            ("<torch_package_x>.a", false),
            ("<torch_package_1", false),
            ("torch_package_1>.a", false),
            (" <torch_package_1>.a", false),
            ("a.<torch_package_1>", false),
            ("", false),
        ];
        for (name, expected) in cases {
            assert_eq!(is_mangled(name), expected, "{name:?}");
        }
    }
}
