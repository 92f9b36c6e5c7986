//! torch.package glob patterns.
//!
//! `PackageExporter.intern/extern/mock/deny` and `file_structure` select
//! modules and files with `GlobGroup`s: include patterns, exclude patterns,
//! and a separator (`.` for module names, `/` for paths). A candidate
//! matches if it matches any include pattern and no exclude pattern.
//!
//! Within a pattern, segments are separated by the separator and are one of:
//! - literal text, matched exactly (`torch`, `model.pkl`: a `.` or `+` is
//!   just a character);
//! - text with `*` wildcards, each matching any run of non-separator
//!   characters, possibly empty (`torch*`, `a*.htm*` with `/`);
//! - `**` alone, matching zero or more whole, non-empty segments
//!   (`torch.**` matches `torch`, `torch.nn`, `torch.nn.functional`).
//!
//! `**` mixed into a longer segment is an error. `**` alone does not match
//! the empty string.
//!
//! ```
//! use tpkg_glob::{GlobGroup, Separator};
//!
//! let group = GlobGroup::new("torch.**", "torch.**.foo", Separator::Dot).unwrap();
//! assert!(group.matches("torch"));
//! assert!(group.matches("torch.nn.functional"));
//! assert!(!group.matches("torch.nn.foo"));
//! assert!(!group.matches("torchvision"));
//! assert_eq!(group.to_string(), "GlobGroup(include=torch.**, exclude=torch.**.foo)");
//! ```
//!
//! # How it is fast
//!
//! Patterns are parsed once (a pest grammar, `src/pattern.pest`) and sorted,
//! like ripgrep's `globset`, into strategies: literal patterns go into a hash
//! set, `literal.**` prefixes into another (a candidate checks each of its
//! ancestors), and only the rest are matched segment by segment. Matching
//! never allocates for literal and prefix patterns and never fails.
//!
//! Semantics are PyTorch's `torch/package/glob_group.py`;
//! the tests compare with PyTorch's own `GlobGroup` on generated inputs.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod matcher;
mod parse;
mod patterns;

pub use matcher::Pattern;
pub use parse::GlobError;
pub use patterns::Patterns;

use std::collections::HashSet;
use std::fmt;

use matcher::Strategy;

/// The character that separates segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Separator {
    /// `.`, for module names (the default, as in PyTorch).
    #[default]
    Dot,
    /// `/`, for paths inside a package (`file_structure`).
    Slash,
}

impl Separator {
    /// The separator character.
    ///
    /// ```
    /// assert_eq!(tpkg_glob::Separator::Slash.as_char(), '/');
    /// ```
    pub fn as_char(self) -> char {
        match self {
            Separator::Dot => '.',
            Separator::Slash => '/',
        }
    }
}

/// Compiled include and exclude patterns, matched together.
///
/// Build once, match many times; matching cannot fail.
#[derive(Debug, Clone)]
pub struct GlobGroup {
    include: PatternSet,
    exclude: PatternSet,
    description: String,
}

impl GlobGroup {
    /// Compiles `include` and `exclude` (a single pattern, or a list) for
    /// the given separator.
    ///
    /// ```
    /// use tpkg_glob::{GlobGroup, Patterns, Separator};
    ///
    /// let group = GlobGroup::new(["foo", "bar.**"], ["bar.baz", "bar.qux"], Separator::Dot).unwrap();
    /// assert!(group.matches("bar.other"));
    /// assert!(!group.matches("bar.baz"));
    ///
    /// let error = GlobGroup::new("a.**b", Patterns::none(), Separator::Dot).unwrap_err();
    /// assert_eq!(error.position(), 2);
    /// ```
    pub fn new(
        include: impl Into<Patterns>,
        exclude: impl Into<Patterns>,
        separator: Separator,
    ) -> Result<Self, GlobError> {
        let include = include.into();
        let exclude = exclude.into();
        let description = format!(
            "GlobGroup(include={}, exclude={})",
            include.python_str(),
            exclude.python_str()
        );
        Ok(GlobGroup {
            include: PatternSet::compile(include.iter(), separator)?,
            exclude: PatternSet::compile(exclude.iter(), separator)?,
            description,
        })
    }

    /// Module-name patterns (`.` separator) with no exclusions.
    ///
    /// ```
    /// let group = tpkg_glob::GlobGroup::modules("torch.*").unwrap();
    /// assert!(group.matches("torch.nn") && !group.matches("torch.nn.functional"));
    /// ```
    pub fn modules(include: impl Into<Patterns>) -> Result<Self, GlobError> {
        Self::new(include, Patterns::none(), Separator::Dot)
    }

    /// Whether `candidate` matches an include pattern and no exclude pattern.
    ///
    /// ```
    /// let group = tpkg_glob::GlobGroup::modules("**").unwrap();
    /// assert!(group.matches("anything.really"));
    /// assert!(!group.matches(""));
    /// ```
    pub fn matches(&self, candidate: &str) -> bool {
        self.include.matches(candidate) && !self.exclude.matches(candidate)
    }
}

/// PyTorch's `str(GlobGroup)`: `GlobGroup(include=..., exclude=...)`, with
/// each side printed as Python prints what was given (a string as is, a list
/// as `['a', 'b']`, the default exclude as `()`). This text appears in
/// `EmptyMatchError` messages.
impl fmt::Display for GlobGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.description)
    }
}

/// Patterns sorted into matching strategies.
#[derive(Debug, Clone)]
struct PatternSet {
    separator: char,
    literals: HashSet<String>,
    prefixes: HashSet<String>,
    general: Vec<Pattern>,
}

impl PatternSet {
    fn compile<'a>(
        patterns: impl Iterator<Item = &'a str>,
        separator: Separator,
    ) -> Result<Self, GlobError> {
        let mut set = PatternSet {
            separator: separator.as_char(),
            literals: HashSet::new(),
            prefixes: HashSet::new(),
            general: Vec::new(),
        };
        for text in patterns {
            let pattern = Pattern::new(text, separator)?;
            match pattern.strategy() {
                Strategy::Literal(literal) => {
                    set.literals.insert(literal);
                }
                Strategy::Prefix(prefix) => {
                    set.prefixes.insert(prefix);
                }
                Strategy::General => set.general.push(pattern),
            }
        }
        Ok(set)
    }

    fn matches(&self, candidate: &str) -> bool {
        if self.literals.contains(candidate) {
            return true;
        }
        if !self.prefixes.is_empty() && self.matches_prefix(candidate) {
            return true;
        }
        if self.general.is_empty() {
            return false;
        }
        // Split once for all general patterns, on the stack when short.
        let mut stack = [""; 32];
        match matcher::split_into(candidate, self.separator, &mut stack) {
            Some(count) => {
                let parts = &stack[..count];
                self.general
                    .iter()
                    .any(|pattern| pattern.matches_parts(parts))
            }
            None => {
                let parts: Vec<&str> = candidate.split(self.separator).collect();
                self.general
                    .iter()
                    .any(|pattern| pattern.matches_parts(&parts))
            }
        }
    }

    /// `prefix.**` matches `prefix` itself and `prefix` followed by whole,
    /// non-empty segments. Check each ancestor of the candidate, from the
    /// longest, while the part after it has no empty segment.
    fn matches_prefix(&self, candidate: &str) -> bool {
        let separator = self.separator;
        if self.prefixes.contains(candidate) {
            return true;
        }
        let bytes = candidate.as_bytes();
        let sep = separator as u8; // both separators are ASCII
        let mut end = candidate.len();
        // Walk separators right to left; `end` is where the clean tail starts.
        for (index, &byte) in bytes.iter().enumerate().rev() {
            if byte != sep {
                continue;
            }
            // The segment after this separator is candidate[index+1..end].
            if index + 1 == end {
                return false; // empty segment: no ancestor further left can match
            }
            if self.prefixes.contains(&candidate[..index]) {
                return true;
            }
            end = index;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_strategy_requires_clean_tails() {
        let group = GlobGroup::modules("a.**").unwrap();
        for (name, expected) in [
            ("a", true),
            ("a.b", true),
            ("a.b.c", true),
            ("a.", false),
            ("a..b", false),
            ("a.b.", false),
            ("ab", false),
            ("b.a", false),
        ] {
            assert_eq!(group.matches(name), expected, "{name:?}");
        }
    }
}
