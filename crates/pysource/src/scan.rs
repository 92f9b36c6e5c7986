//! The import scanner: PyTorch's `find_file_dependencies`, over ruff's
//! Python syntax tree instead of CPython's `ast`.
//!
//! PyTorch's `_ExtractModuleReferences` is an `ast.NodeVisitor`: it visits
//! every node depth first in the order of each node type's `_fields`, and
//! records references at `Import`, `ImportFrom` and `__import__(...)` calls.
//! Its `visit_Call` does not recurse, so nothing inside a call is seen. The
//! walker below reproduces that order exactly, because the exporter's
//! dependency order (and so a package's record order) follows it. It walks
//! with an explicit stack, so deep nesting cannot overflow the walk.

use std::collections::HashSet;

use ruff_python_ast::{self as ast, Expr, ModModule, Stmt};
use ruff_python_parser::{Mode, ParseOptions, Parsed};
use ruff_text_size::{Ranged, TextSize};

use crate::visit::{
    Visit, each_call, expr_children, int_literal, push_stmts, stmt_children, string_literal,
};

/// One module reference: `(module, attribute)` as PyTorch's scanner yields
/// it — `import a.b` gives `("a.b", None)`, `from a import b` gives
/// `("a", Some("b"))`.
pub type Reference = (String, Option<String>);

/// A Python language version, which decides what syntax parses.
///
/// PyTorch's scanner parses with the interpreter it runs in, so a module
/// using Python 3.12 syntax fails to scan under Python 3.11. Scanning for
/// the version of the interpreter that will load the package gives the
/// same answer; [`PythonVersion::LATEST`] accepts all syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PythonVersion {
    /// Major version (3).
    pub major: u8,
    /// Minor version.
    pub minor: u8,
}

impl PythonVersion {
    /// The newest syntax the parser knows.
    pub const LATEST: PythonVersion = PythonVersion {
        major: ast::PythonVersion::latest().major,
        minor: ast::PythonVersion::latest().minor,
    };
}

impl std::fmt::Display for PythonVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// A call that imports a module by name at run time, which PyTorch's
/// scanner does not see (`importlib.import_module("x")`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamicImport {
    /// The module name, if it is a string literal.
    pub module: Option<String>,
    /// 1-based line.
    pub line: usize,
}

/// What a scan found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Imports {
    /// References in PyTorch's order (first occurrence), de-duplicated.
    pub references: Vec<Reference>,
    /// Dynamic imports PyTorch does not see (reported separately).
    pub dynamic: Vec<DynamicImport>,
}

/// Why a source cannot be scanned (PyTorch reports these as
/// `DEPENDENCY_RESOLUTION_FAILED`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    /// The source does not parse (for the Python version scanned for).
    #[error("invalid syntax at line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        column: usize,
        /// The parser's description.
        message: String,
    },
    /// A `from ... import` goes above the top-level package.
    #[error("attempted relative import beyond top-level package (line {line})")]
    BeyondTopLevel {
        /// 1-based line.
        line: usize,
    },
    /// The source is too large to parse with bounded memory.
    #[error("source of {size} bytes is larger than the {limit}-byte limit for scanning")]
    TooLarge {
        /// Its size in bytes.
        size: usize,
        /// The limit, [`MAX_SOURCE_BYTES`].
        limit: usize,
    },
}

/// The largest source [`scan_imports`] accepts (64 MiB; the largest module
/// in a torch + torchvision + sympy install is 1.4 MB).
pub const MAX_SOURCE_BYTES: usize = 64 << 20;

/// The package a module's relative imports resolve against, as PyTorch's
/// exporter computes it: the module itself for a package, else the name
/// without its last part — and for a top-level module (PyTorch's quirk) the
/// module itself.
///
/// ```
/// use tpkg_pysource::package_of;
/// assert_eq!(package_of("a.b.c", false), "a.b");
/// assert_eq!(package_of("a.b", true), "a.b");
/// assert_eq!(package_of("top", false), "top");
/// ```
pub fn package_of(module: &str, is_package: bool) -> &str {
    if is_package {
        module
    } else {
        module
            .rsplit_once('.')
            .map_or(module, |(package, _)| package)
    }
}

/// PyTorch's `_resolve_name`: `name` relative to `package` at `level` dots.
fn resolve_relative(name: Option<&str>, package: &str, level: usize) -> Option<String> {
    let bits: Vec<&str> = package.rsplitn(level, '.').collect();
    if bits.len() < level {
        return None;
    }
    let base = bits.last().copied().unwrap_or(package);
    Some(match name {
        Some(name) if !name.is_empty() => format!("{base}.{name}"),
        _ => base.to_owned(),
    })
}

/// Scans `source` of a module whose package is `package` (the module itself
/// for a package, the name without its last part otherwise — and for a
/// top-level module, PyTorch's quirk, the module itself), accepting the
/// newest Python syntax.
///
/// ```
/// use tpkg_pysource::scan_imports;
/// let source = "import os.path\nfrom . import sibling\nfrom .sub import thing as t\n";
/// let imports = scan_imports(source, "pkg").unwrap();
/// assert_eq!(imports.references, vec![
///     ("os.path".to_owned(), None),
///     ("pkg".to_owned(), Some("sibling".to_owned())),
///     ("pkg.sub".to_owned(), Some("thing".to_owned())),
/// ]);
/// ```
pub fn scan_imports(source: &str, package: &str) -> Result<Imports, ScanError> {
    scan_imports_for(source, package, PythonVersion::LATEST)
}

/// [`scan_imports`] for the syntax of one Python version: what that
/// version's `ast.parse` rejects is a [`ScanError::Syntax`].
///
/// ```
/// use tpkg_pysource::{PythonVersion, ScanError, scan_imports_for};
/// let source = "type Vector = list[float]\n"; // Python 3.12
/// let py311 = PythonVersion { major: 3, minor: 11 };
/// assert!(matches!(scan_imports_for(source, "m", py311), Err(ScanError::Syntax { .. })));
/// ```
pub fn scan_imports_for(
    source: &str,
    package: &str,
    version: PythonVersion,
) -> Result<Imports, ScanError> {
    with_parse_stack(source, || parse_and_scan(source, package, version))
}

/// Stack bytes per source byte the parser and drop may need (measured: about
/// 60 per nesting level of `- - - 1`, the deepest-nesting construct per byte).
const STACK_PER_BYTE: usize = 160;
const STACK_BASE: usize = 256 << 10;

/// Parses `source` as a module for `version`, syntax errors as
/// [`ScanError::Syntax`]. Callers run it on a stack big enough for the
/// source (see [`with_parse_stack`]).
pub(crate) fn parse_module_checked(
    source: &str,
    version: PythonVersion,
) -> Result<Parsed<ModModule>, ScanError> {
    if source.len() > MAX_SOURCE_BYTES {
        return Err(ScanError::TooLarge {
            size: source.len(),
            limit: MAX_SOURCE_BYTES,
        });
    }
    let options = ParseOptions::from(Mode::Module).with_target_version(ast::PythonVersion {
        major: version.major,
        minor: version.minor,
    });
    let parsed = ruff_python_parser::parse_unchecked(source, options);
    if let Some(error) = parsed.errors().first() {
        return Err(syntax_error(
            source,
            error.location.start(),
            error.error.to_string(),
        ));
    }
    if let Some(error) = parsed.unsupported_syntax_errors().first() {
        return Err(syntax_error(source, error.range.start(), error.to_string()));
    }
    parsed
        .try_into_module()
        .ok_or_else(|| syntax_error(source, TextSize::new(0), "not a module".into()))
}

/// Runs `work` on a stack deep enough for parsing `source`: ruff's parser
/// recurses once per nesting level, and a syntax tree drops recursively; a
/// level takes at least one byte of source, so `STACK_PER_BYTE` bytes of
/// stack per source byte always suffice. Most threads have that already; a
/// deeply nested or huge source gets a new stack.
pub(crate) fn with_parse_stack<T>(source: &str, work: impl FnOnce() -> T) -> T {
    let needed = source.len().saturating_mul(STACK_PER_BYTE) + STACK_BASE;
    stacker::maybe_grow(needed, needed, work)
}

fn parse_and_scan(
    source: &str,
    package: &str,
    version: PythonVersion,
) -> Result<Imports, ScanError> {
    let module = parse_module_checked(source, version)?;
    let mut scanner = Scanner {
        source,
        package,
        imports: Imports::default(),
        seen: HashSet::new(),
    };
    scanner.walk(&module.syntax().body)?;
    Ok(scanner.imports)
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(source: &str, offset: TextSize) -> (usize, usize) {
    let offset = usize::from(offset).min(source.len());
    let before = source.get(..offset).unwrap_or(source);
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

fn syntax_error(source: &str, offset: TextSize, message: String) -> ScanError {
    let (line, column) = line_column(source, offset);
    ScanError::Syntax {
        line,
        column,
        message,
    }
}

struct Scanner<'s> {
    source: &'s str,
    package: &'s str,
    imports: Imports,
    seen: HashSet<Reference>,
}

impl<'s> Scanner<'s> {
    fn add(&mut self, module: String, attribute: Option<String>) {
        let reference = (module, attribute);
        if !self.seen.contains(&reference) {
            self.seen.insert(reference.clone());
            self.imports.references.push(reference);
        }
    }

    fn line(&self, node: &impl Ranged) -> usize {
        line_column(self.source, node.start()).0
    }

    /// Depth first, in the order CPython's `ast.NodeVisitor` visits.
    fn walk(&mut self, body: &[Stmt]) -> Result<(), ScanError> {
        let mut stack: Vec<Visit<'_>> = Vec::with_capacity(64);
        let mut children: Vec<Visit<'_>> = Vec::with_capacity(16);
        push_stmts(&mut stack, body);
        while let Some(visit) = stack.pop() {
            match visit {
                Visit::Stmt(Stmt::Import(import)) => {
                    for alias in &import.names {
                        self.add(alias.name.id.to_string(), None);
                    }
                }
                Visit::Stmt(Stmt::ImportFrom(import)) => self.import_from(import)?,
                Visit::Stmt(stmt) => stmt_children(stmt, &mut children),
                Visit::Expr(Expr::Call(call)) => {
                    self.dunder_import(call);
                    // PyTorch's visit_Call does not recurse; dynamic imports
                    // (which PyTorch does not see at all) are still collected
                    // from inside.
                    self.collect_dynamic_imports(call);
                }
                Visit::Expr(expr) => expr_children(expr, &mut children),
            }
            stack.extend(children.drain(..).rev());
        }
        Ok(())
    }

    fn import_from(&mut self, import: &ast::StmtImportFrom) -> Result<(), ScanError> {
        let name = import.module.as_ref().map(|m| m.id.as_str());
        let level = import.level as usize;
        let module = if level > 0 {
            resolve_relative(name, self.package, level).ok_or_else(|| {
                ScanError::BeyondTopLevel {
                    line: self.line(import),
                }
            })?
        } else {
            name.unwrap_or_default().to_owned()
        };
        for alias in &import.names {
            if alias.name.id.as_str() == "*" {
                self.add(module.clone(), None);
            } else {
                self.add(module.clone(), Some(alias.name.id.to_string()));
            }
        }
        Ok(())
    }

    /// `__import__("name", globals, locals, fromlist, level)` with literal
    /// arguments, exactly as PyTorch's `visit_Call` reads it.
    fn dunder_import(&mut self, call: &ast::ExprCall) {
        let Expr::Name(function) = call.func.as_ref() else {
            return;
        };
        if function.id.as_str() != "__import__" {
            return;
        }
        let arguments = &call.arguments;
        let Some(name) = arguments.args.first().and_then(string_literal) else {
            return;
        };
        let mut fromlist = Vec::new();
        if let Some(node) = arguments.args.get(3) {
            match string_list(node) {
                Some(items) => fromlist = items,
                None => return,
            }
        } else {
            for keyword in &arguments.keywords {
                if keyword
                    .arg
                    .as_ref()
                    .is_some_and(|a| a.id.as_str() == "fromlist")
                {
                    match string_list(&keyword.value) {
                        Some(items) => fromlist.extend(items),
                        None => return,
                    }
                }
            }
        }
        let mut level = 0;
        if let Some(node) = arguments.args.get(4) {
            match int_literal(node) {
                Some(value) => level = value,
                None => return,
            }
        } else {
            for keyword in &arguments.keywords {
                if keyword
                    .arg
                    .as_ref()
                    .is_some_and(|a| a.id.as_str() == "level")
                {
                    match int_literal(&keyword.value) {
                        Some(value) => level = value,
                        None => return,
                    }
                }
            }
        }
        let absolute = |name: &str| -> Option<String> {
            if level > 0 {
                resolve_relative(Some(name), self.package, level)
            } else {
                Some(name.to_owned())
            }
        };
        if fromlist.is_empty() {
            // The top-level package is what `__import__` returns; PyTorch
            // records the module and the name up to its last dot.
            self.add(name.clone(), None);
            if let Some((parent, _)) = name.rsplit_once('.')
                && let Some(parent) = absolute(parent)
            {
                self.add(parent, None);
            }
        } else {
            let Some(module) = absolute(&name) else {
                return;
            };
            for item in fromlist {
                if item == "*" {
                    self.add(module.clone(), None);
                } else {
                    self.add(module.clone(), Some(item));
                }
            }
        }
    }

    /// `importlib.import_module(...)` / `import_module(...)` anywhere in the
    /// call's subtree (this walk is not PyTorch's and has no order to keep).
    fn collect_dynamic_imports(&mut self, call: &ast::ExprCall) {
        each_call(call, |inner| self.dynamic_import(inner));
    }

    fn dynamic_import(&mut self, call: &ast::ExprCall) {
        let is_import_module = match call.func.as_ref() {
            Expr::Name(name) => name.id.as_str() == "import_module",
            Expr::Attribute(attribute) => attribute.attr.id.as_str() == "import_module",
            _ => false,
        };
        if is_import_module {
            let line = self.line(call);
            self.imports.dynamic.push(DynamicImport {
                module: call.arguments.args.first().and_then(string_literal),
                line,
            });
        }
    }
}

/// The elements of a list, tuple or set display, all `str` constants.
fn string_list(expr: &Expr) -> Option<Vec<String>> {
    let elements = match expr {
        Expr::List(list) => &list.elts,
        Expr::Tuple(tuple) => &tuple.elts,
        Expr::Set(set) => &set.elts,
        _ => return None,
    };
    elements.iter().map(string_literal).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(source: &str, package: &str) -> Vec<(String, Option<String>)> {
        scan_imports(source, package).unwrap().references
    }

    fn r(module: &str, attribute: Option<&str>) -> (String, Option<String>) {
        (module.to_owned(), attribute.map(str::to_owned))
    }

    #[test]
    fn conformance_cases() {
        assert_eq!(
            refs("import a.b.c, d as e", "x"),
            [r("a.b.c", None), r("d", None)]
        );
        assert_eq!(
            refs("from x.y import z, w as v", "p"),
            [r("x.y", Some("z")), r("x.y", Some("w"))]
        );
        assert_eq!(refs("from m import *", "p"), [r("m", None)]);
        assert_eq!(
            refs(
                "from . import q\nfrom .r import s\nfrom ..t import *",
                "p1.p2"
            ),
            [
                r("p1.p2", Some("q")),
                r("p1.p2.r", Some("s")),
                r("p1.t", None)
            ]
        );
        assert_eq!(
            scan_imports("from ... import x", "a.b").unwrap_err(),
            ScanError::BeyondTopLevel { line: 1 }
        );
        assert_eq!(
            refs("__import__('a.b.c')", "p"),
            [r("a.b.c", None), r("a.b", None)]
        );
        assert_eq!(
            refs("__import__('k', g, l, ['j'], 1)", "p1.p2"),
            [r("p1.p2.k", Some("j"))]
        );
        assert_eq!(refs("__import__('k', fromlist=['*'])", "p"), [r("k", None)]);
        assert_eq!(refs("__import__('a' 'b')", "p"), [r("ab", None)]);
        assert!(refs("__import__(name)", "p").is_empty());
        assert!(refs("__import__(b'x')", "p").is_empty());
        assert!(refs("__import__('x', fromlist=names)", "p").is_empty());
        assert!(refs("print(__import__('hidden'))", "p").is_empty());
        assert_eq!(
            refs(
                "def f():\n    try:\n        import inner\n    except ImportError:\n        pass",
                "p"
            ),
            [r("inner", None)]
        );
        assert_eq!(
            refs("from __future__ import annotations", "p"),
            [r("__future__", Some("annotations"))]
        );
        assert_eq!(refs("import a . b", "p"), [r("a.b", None)]);
    }

    #[test]
    fn order_is_cpythons_field_order() {
        // A decorator is visited after the body it decorates.
        assert_eq!(
            refs("@__import__('d').x\ndef f():\n    import body\n", "p"),
            [r("body", None), r("d", None)]
        );
        // `body if test else orelse` visits test first.
        assert_eq!(
            refs("x = __import__('b') if __import__('t') else 0", "p"),
            [r("t", None), r("b", None)]
        );
        // A dict's keys come before its values.
        assert_eq!(
            refs(
                "{__import__('k1'): __import__('v1'), __import__('k2'): 0}",
                "p"
            ),
            [r("k1", None), r("k2", None), r("v1", None)]
        );
        // Parameter annotations before defaults.
        assert_eq!(
            refs("def f(a: __import__('a1') = __import__('d1')): pass", "p"),
            [r("a1", None), r("d1", None)]
        );
    }

    #[test]
    fn dynamic_imports_are_reported_separately() {
        let imports = scan_imports(
            "import importlib\nm = importlib.import_module('plugins.x')\nprint(import_module(n))\n",
            "p",
        )
        .unwrap();
        assert_eq!(imports.references, [r("importlib", None)]);
        assert_eq!(
            imports.dynamic,
            [
                DynamicImport {
                    module: Some("plugins.x".into()),
                    line: 2
                },
                DynamicImport {
                    module: None,
                    line: 3
                }
            ]
        );
    }

    #[test]
    fn syntax_errors_have_a_position_and_message() {
        let error = scan_imports("x = 1\ndef f(:\n    pass\n", "p").unwrap_err();
        let ScanError::Syntax { line, message, .. } = &error else {
            panic!("{error}");
        };
        assert_eq!(*line, 2);
        assert!(!message.is_empty());
    }

    #[test]
    fn version_decides_what_parses() {
        let source = "def f[T](x: T) -> T:\n    return x\n";
        let py311 = PythonVersion {
            major: 3,
            minor: 11,
        };
        assert!(scan_imports(source, "p").is_ok());
        assert!(matches!(
            scan_imports_for(source, "p", py311),
            Err(ScanError::Syntax { line: 1, .. })
        ));
    }

    #[test]
    fn deep_nesting_does_not_overflow_the_stack() {
        for source in [
            format!("x = {}1", "-".repeat(300_000)),
            format!("x = 1{}", "+1".repeat(300_000)),
            format!("x = {}", "a.".repeat(200_000) + "b"),
            format!("x = {}1{}", "[".repeat(100_000), "]".repeat(100_000)),
        ] {
            // Run on a small stack, as a test or worker thread has.
            let outcome = std::thread::Builder::new()
                .stack_size(256 << 10)
                .spawn(move || scan_imports(&source, "p").map(|i| i.references.len()))
                .unwrap()
                .join()
                .unwrap();
            assert!(matches!(outcome, Ok(0) | Err(ScanError::Syntax { .. })));
        }
    }
}
