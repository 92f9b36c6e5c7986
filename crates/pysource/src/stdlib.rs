//! Which modules belong to the standard library, without asking Python.

use crate::scan::PythonVersion;
use crate::stdlib_names::{FIRST_MINOR, LAST_MINOR, STDLIB_MODULES};

/// The table's bit for `version` (versions outside 3.8 to 3.14 use the
/// nearest table).
fn version_bit(version: PythonVersion) -> u8 {
    let minor = if version.major < 3 {
        FIRST_MINOR
    } else if version.major > 3 {
        LAST_MINOR
    } else {
        version.minor.clamp(FIRST_MINOR, LAST_MINOR)
    };
    1 << (minor - FIRST_MINOR)
}

fn lookup(module: &str, version: PythonVersion) -> bool {
    STDLIB_MODULES
        .binary_search_by(|(name, _)| (*name).cmp(module))
        .is_ok_and(|index| STDLIB_MODULES[index].1 & version_bit(version) != 0)
}

/// Whether `module` is part of the standard library of `version`, by its
/// top-level name: PyTorch's `torch.package._stdlib.is_stdlib_module`,
/// which decides what the exporter externs implicitly.
///
/// ```
/// use tpkg_pysource::{PythonVersion, is_stdlib_module};
/// let py311 = PythonVersion { major: 3, minor: 11 };
/// let py313 = PythonVersion { major: 3, minor: 13 };
/// assert!(is_stdlib_module("os.path", py311));
/// assert!(is_stdlib_module("telnetlib", py311));
/// assert!(!is_stdlib_module("telnetlib", py313)); // removed in 3.13
/// assert!(!is_stdlib_module("numpy", py311));
/// ```
pub fn is_stdlib_module(module: &str, version: PythonVersion) -> bool {
    lookup(module.split('.').next().unwrap_or(module), version)
}

/// Whether `module` (dotted) is a module of the standard library of
/// `version`: `collections.abc` is, `collections.OrderedDict` is not.
pub fn is_stdlib_submodule(module: &str, version: PythonVersion) -> bool {
    lookup(module, version)
}

/// The top-level module names of `version`'s standard library, sorted.
pub fn stdlib_module_names(version: PythonVersion) -> impl Iterator<Item = &'static str> {
    let bit = version_bit(version);
    STDLIB_MODULES
        .iter()
        .filter(move |(name, mask)| mask & bit != 0 && !name.contains('.'))
        .map(|(name, _)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_for_binary_search() {
        assert!(STDLIB_MODULES.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn versions_table() {
        let v = |minor| PythonVersion { major: 3, minor };
        let cases = [
            ("asyncore", 11, true),
            ("asyncore", 12, false),
            ("tomllib", 10, false),
            ("tomllib", 11, true),
            ("zoneinfo", 8, false),
            ("zoneinfo", 9, true),
            ("collections.abc", 8, true),
            ("collections.OrderedDict", 11, false),
            ("sys", 7, true),
            ("sys", 20, true),
        ];
        for (module, minor, expected) in cases {
            let found = if module.contains('.') {
                is_stdlib_submodule(module, v(minor))
            } else {
                is_stdlib_module(module, v(minor))
            };
            assert_eq!(found, expected, "{module} in 3.{minor}");
        }
    }
}
