//! Finding modules on a search path the way CPython's path finder does,
//! and PyTorch's rule for turning scanned references into dependencies.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use crate::scan::{PythonVersion, ScanError, package_of, scan_imports_for};
use crate::stdlib::is_stdlib_submodule;

/// Where a module was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// A `.py` module, or a package's `__init__.py`.
    Source {
        /// The file.
        file: PathBuf,
        /// Whether it is a package (`__init__.py`).
        is_package: bool,
    },
    /// A namespace package: folders without `__init__.py`.
    Namespace {
        /// Its portions, in search-path order.
        dirs: Vec<PathBuf>,
    },
    /// A compiled extension module (cannot be interned).
    Extension {
        /// The shared library.
        file: PathBuf,
    },
    /// A module without source: built into the interpreter, bytecode only,
    /// or known by name ([`ModuleFinder::with_known_modules`]).
    Builtin,
    /// A standard-library module known by name only, from the embedded
    /// tables (no interpreter was asked, so its source is not at hand).
    Stdlib,
}

/// A module search path (like `sys.path`) with the interpreter's built-in
/// module names and extension suffixes.
#[derive(Debug, Clone)]
pub struct ModuleFinder {
    path: Vec<PathBuf>,
    builtins: HashSet<String>,
    extension_suffixes: Vec<String>,
    version: PythonVersion,
    release: Option<String>,
    known: HashSet<String>,
    listings: Listings,
    /// Whether the embedded standard-library tables stand in for an
    /// interpreter's `sys.path`.
    stdlib_by_name: bool,
}

/// The interpreter could not describe itself.
#[derive(Debug, thiserror::Error)]
#[error("asking {python} for sys.path failed: {reason}")]
pub struct PythonProbeError {
    /// The interpreter.
    pub python: String,
    /// What went wrong.
    pub reason: String,
}

/// Extension suffixes of CPython 3.8+ on Linux when no interpreter is asked.
const DEFAULT_EXTENSION_SUFFIXES: &[&str] =
    &[".cpython-311-x86_64-linux-gnu.so", ".abi3.so", ".so"];

impl Default for ModuleFinder {
    /// No search path, no builtins; the standard library by name.
    fn default() -> Self {
        ModuleFinder::new(Vec::new(), Vec::<String>::new())
    }
}

impl ModuleFinder {
    /// A finder over `path`, knowing `builtins` (e.g. `sys`, `_io`), for
    /// the newest Python: modules of the standard library are known from
    /// embedded tables ([`Found::Stdlib`]) unless `path` holds them.
    ///
    /// ```
    /// use tpkg_pysource::{Found, ModuleFinder};
    /// let finder = ModuleFinder::new(vec![], ["sys"]);
    /// assert!(finder.exists("sys"));
    /// assert_eq!(finder.find("json.decoder"), Some(Found::Stdlib));
    /// assert!(!finder.exists("numpy"));
    /// ```
    pub fn new<S: Into<String>>(path: Vec<PathBuf>, builtins: impl IntoIterator<Item = S>) -> Self {
        ModuleFinder {
            path,
            builtins: builtins.into_iter().map(Into::into).collect(),
            extension_suffixes: DEFAULT_EXTENSION_SUFFIXES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            version: PythonVersion::LATEST,
            release: None,
            known: HashSet::new(),
            listings: Listings::default(),
            stdlib_by_name: true,
        }
    }

    /// The same finder for another Python version (syntax accepted when
    /// scanning, standard-library tables).
    pub fn with_python_version(mut self, version: PythonVersion) -> Self {
        self.version = version;
        self
    }

    /// The same finder, also knowing `modules` exist without source (the
    /// extern modules of a package being repackaged, which the loading
    /// side provides): they resolve as [`Found::Builtin`] when the search
    /// path does not have them.
    pub fn with_known_modules<S: Into<String>>(
        mut self,
        modules: impl IntoIterator<Item = S>,
    ) -> Self {
        self.known.extend(modules.into_iter().map(Into::into));
        self
    }

    /// The Python version scanned for.
    pub fn python_version(&self) -> PythonVersion {
        self.version
    }

    /// The interpreter's `platform.python_version()` (what a package's
    /// `.data/python_version` records), when one was asked.
    pub fn python_release(&self) -> Option<&str> {
        self.release.as_deref()
    }

    /// Asks `python` once for `sys.path`, its built-in modules, extension
    /// suffixes and version.
    pub fn from_python(python: &Path) -> Result<Self, PythonProbeError> {
        // NUL between fields, \x01 between list items: no json import,
        // which would double the interpreter's start-up time.
        const PROBE: &str = "import sys, importlib.machinery as m\n\
            sys.stdout.write('\\0'.join([sys.version.split()[0], '%d.%d' % sys.version_info[:2], \
            '\\1'.join(sys.path), '\\1'.join(sorted(sys.builtin_module_names)), \
            '\\1'.join(m.EXTENSION_SUFFIXES)]))";
        let failed = |reason: String| PythonProbeError {
            python: python.display().to_string(),
            reason,
        };
        let output = Command::new(python)
            .args(["-c", PROBE])
            .output()
            .map_err(|e| failed(e.to_string()))?;
        if !output.status.success() {
            return Err(failed(String::from_utf8_lossy(&output.stderr).into_owned()));
        }
        let text = String::from_utf8(output.stdout).map_err(|e| failed(e.to_string()))?;
        let (path, builtins, suffixes, (major, minor), release) =
            parse_probe(&text).ok_or_else(|| failed(format!("unexpected answer {text:?}")))?;
        Ok(ModuleFinder {
            path: path
                .into_iter()
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
                .collect(),
            builtins: builtins.into_iter().collect(),
            extension_suffixes: suffixes,
            version: PythonVersion { major, minor },
            release: Some(release),
            known: HashSet::new(),
            listings: Listings::default(),
            stdlib_by_name: false,
        })
    }

    /// The same finder over another search path.
    pub fn with_path(mut self, path: Vec<PathBuf>) -> Self {
        self.path = path;
        self
    }

    /// The search path.
    pub fn path(&self) -> &[PathBuf] {
        &self.path
    }

    /// Finds `module` (dotted) as CPython's path finder would: a package
    /// folder with `__init__` before modules of the same name, extension
    /// modules before `.py`, namespace portions only when nothing else
    /// matches; submodules in their package's folders.
    pub fn find(&self, module: &str) -> Option<Found> {
        let parts: Vec<&str> = module.split('.').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return None;
        }
        if parts.len() == 1 && self.builtins.contains(module) {
            return Some(Found::Builtin);
        }
        let on_path = self.find_on_path(&parts);
        if on_path.is_some() {
            return on_path;
        }
        if self.stdlib_by_name && is_stdlib_submodule(module, self.version) {
            return Some(Found::Stdlib);
        }
        self.known.contains(module).then_some(Found::Builtin)
    }

    fn find_on_path(&self, parts: &[&str]) -> Option<Found> {
        let mut dirs = self.path.clone();
        let mut found = None;
        for (index, part) in parts.iter().enumerate() {
            let here = self.search(part, &dirs)?;
            if index + 1 < parts.len() {
                dirs = match &here {
                    Found::Source {
                        file,
                        is_package: true,
                    } => vec![file.parent()?.to_path_buf()],
                    Found::Namespace { dirs } => dirs.clone(),
                    _ => return None,
                };
            }
            found = Some(here);
        }
        found
    }

    /// Every module under the package `top` (itself included), by walking
    /// its folders: `.py` files and packages, sorted by name.
    pub fn walk_package(&self, top: &str) -> Vec<String> {
        let mut out = Vec::new();
        let start = match self.find(top) {
            Some(Found::Source {
                file,
                is_package: true,
            }) => file
                .parent()
                .map(|p| vec![p.to_path_buf()])
                .unwrap_or_default(),
            Some(Found::Namespace { dirs }) => dirs,
            Some(_) => return vec![top.to_owned()],
            None => return out,
        };
        out.push(top.to_owned());
        let mut stack: Vec<(PathBuf, String)> =
            start.into_iter().map(|d| (d, top.to_owned())).collect();
        while let Some((dir, prefix)) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                    continue;
                };
                if path.is_dir() {
                    if !name.contains('.') && !name.contains('-') && name != "__pycache__" {
                        out.push(format!("{prefix}.{name}"));
                        stack.push((path.clone(), format!("{prefix}.{name}")));
                    }
                } else if let Some(stem) = name.strip_suffix(".py")
                    && stem != "__init__"
                    && !stem.contains('.')
                {
                    out.push(format!("{prefix}.{stem}"));
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// Whether `module` can be found. `os.path` counts when `os` does (and
    /// `typing.io`/`typing.re` when `typing` does): the standard library
    /// puts them into `sys.modules` when imported (there is no
    /// `os/path.py`), and PyTorch's exporter, which imports to check, sees
    /// them.
    pub fn exists(&self, module: &str) -> bool {
        // Submodules the standard library injects into `sys.modules` at
        // import time (`typing.io`/`typing.re` until Python 3.12).
        match module {
            "os.path" => return self.exists("os"),
            // A file until 3.13; from 3.14 `collections` injects it.
            "collections.abc" => return self.exists("collections"),
            "typing.io" | "typing.re" => return self.exists("typing"),
            _ => {}
        }
        self.find(module).is_some()
    }

    fn search(&self, name: &str, dirs: &[PathBuf]) -> Option<Found> {
        let mut portions = Vec::new();
        for dir in dirs {
            let listing = self.listings.get(dir);
            let base_is_dir = listing.get(name) == Some(&true);
            if base_is_dir {
                let base = dir.join(name);
                let inner = self.listings.get(&base);
                for suffix in self.extension_suffixes.iter().map(String::as_str) {
                    let init = format!("__init__{suffix}");
                    if inner.get(&init) == Some(&false) {
                        return Some(Found::Extension {
                            file: base.join(init),
                        });
                    }
                }
                if inner.get("__init__.py") == Some(&false) {
                    return Some(Found::Source {
                        file: base.join("__init__.py"),
                        is_package: true,
                    });
                }
                if inner.get("__init__.pyc") == Some(&false) {
                    return Some(Found::Builtin);
                }
            }
            for suffix in &self.extension_suffixes {
                let file = format!("{name}{suffix}");
                if listing.get(&file) == Some(&false) {
                    return Some(Found::Extension {
                        file: dir.join(file),
                    });
                }
            }
            let source = format!("{name}.py");
            if listing.get(&source) == Some(&false) {
                return Some(Found::Source {
                    file: dir.join(source),
                    is_package: false,
                });
            }
            if listing.get(&format!("{name}.pyc")) == Some(&false) {
                return Some(Found::Builtin);
            }
            if base_is_dir {
                portions.push(dir.join(name));
            }
        }
        (!portions.is_empty()).then_some(Found::Namespace { dirs: portions })
    }

    /// The dependencies PyTorch's exporter adds for `source` of `module`
    /// (`PackageExporter._get_dependencies`): for `from pack import x`,
    /// `pack.x` if that is a module, else `pack`; references that resolve to
    /// nothing are dropped (and counted in [`Dependencies::dropped`]).
    ///
    /// ```
    /// let finder = tpkg_pysource::ModuleFinder::new(vec![], ["sys"]);
    /// let deps = finder.dependencies("import sys\nimport not_there\n", "m", false).unwrap();
    /// assert_eq!(deps.modules, ["sys"]);
    /// assert_eq!(deps.dropped, ["not_there"]);
    /// ```
    pub fn dependencies(
        &self,
        source: &str,
        module: &str,
        is_package: bool,
    ) -> Result<Dependencies, ScanError> {
        let imports = scan_imports_for(source, package_of(module, is_package), self.version)?;
        let mut out = Dependencies::default();
        let mut seen = HashSet::new();
        for (dep_module, attribute) in imports.references {
            if let Some(attribute) = attribute {
                let submodule = format!("{dep_module}.{attribute}");
                if self.exists(&submodule) {
                    if seen.insert(submodule.clone()) {
                        out.modules.push(submodule);
                    }
                    continue;
                }
            }
            if self.exists(&dep_module) {
                if seen.insert(dep_module.clone()) {
                    out.modules.push(dep_module);
                }
            } else if !out.dropped.contains(&dep_module) {
                out.dropped.push(dep_module);
            }
        }
        Ok(out)
    }
}

/// What [`ModuleFinder::dependencies`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dependencies {
    /// Modules the exporter would depend on, in PyTorch's order.
    pub modules: Vec<String>,
    /// Referenced modules that resolve to nothing (PyTorch drops them silently).
    pub dropped: Vec<String>,
}

/// Directory contents read once per folder, as CPython's `FileFinder`
/// caches them: name → is a folder (symlinks followed). Resolving a large
/// package asks about the same folders hundreds of thousands of times.
#[derive(Debug, Default)]
struct Listings(Mutex<HashMap<PathBuf, Arc<HashMap<String, bool>>>>);

impl Clone for Listings {
    /// A fresh, empty cache: a clone may be used after files change.
    fn clone(&self) -> Self {
        Listings::default()
    }
}

impl Listings {
    fn get(&self, dir: &Path) -> Arc<HashMap<String, bool>> {
        let mut cache = match self.0.lock() {
            Ok(cache) => cache,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(listing) = cache.get(dir) {
            return Arc::clone(listing);
        }
        let mut listing = HashMap::new();
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                let Ok(name) = entry.file_name().into_string() else {
                    continue;
                };
                let is_dir = match entry.file_type() {
                    Ok(kind) if kind.is_symlink() => entry.path().is_dir(),
                    Ok(kind) => kind.is_dir(),
                    Err(_) => continue,
                };
                listing.insert(name, is_dir);
            }
        }
        let listing = Arc::new(listing);
        cache.insert(dir.to_owned(), Arc::clone(&listing));
        listing
    }
}

/// What the probe prints: search path, builtins, suffixes, version.
type Probe = (Vec<String>, Vec<String>, Vec<String>, (u8, u8), String);

/// Parses `release NUL major.minor NUL path NUL builtins NUL suffixes`,
/// lists joined by `\x01`.
fn parse_probe(text: &str) -> Option<Probe> {
    let fields: Vec<&str> = text.split('\0').collect();
    let [release, version, path, builtins, suffixes] = fields.as_slice() else {
        return None;
    };
    let (major, minor) = version.split_once('.')?;
    let list = |field: &str| -> Vec<String> {
        field
            .split('\u{1}')
            .filter(|item| !item.is_empty())
            .map(str::to_owned)
            .collect()
    };
    Some((
        list(path),
        list(builtins),
        list(suffixes),
        (major.parse().ok()?, minor.parse().ok()?),
        (*release).to_owned(),
    ))
}
