//! The calls a module makes when it is imported, each with its callee
//! resolved through the module's imports.
//!
//! Importing a module runs its top level: every module-level statement's
//! expressions (inside `if`, `for`, `while`, `try`, `with` and `match`
//! too), the decorators, default values and annotations of every `def`, and
//! class bodies, base lists and class keywords. Function and lambda bodies
//! do not run. [`import_time_calls`] lists every call in what runs, and
//! [`function_calls`] every call in one function's body; each [`Call`] says
//! in which [`Construct`] it sits and what it calls ([`Callee`]).
//!
//! Resolution follows the module's bindings in source order, as the
//! interpreter meets them: `import`, `from ... import`, `def` and `class`
//! bind names to what they name; `x = os.system` makes `x` an alias; any
//! other assignment makes the name unknown (except in an `except` handler,
//! where the fallback for a failed import does not hide the import). Names
//! bound nowhere are builtins; after `from m import *` they are unknown.
//! Annotations are evaluated eagerly (Python up to 3.13) unless the module
//! has `from __future__ import annotations`.

use ruff_python_ast::{self as ast, Stmt};

use crate::scan::{PythonVersion, ScanError, parse_module_checked, with_parse_stack};
use crate::visit::compound_bodies;
use walker::Walker;

mod builtins;
mod statements;
#[cfg(test)]
mod tests;
mod walker;

/// The longest [`Call::text`], in characters.
const MAX_TEXT_CHARS: usize = 120;

/// How deep [`Walker::resolve`] follows a callee expression (`a.b.c`,
/// `getattr(getattr(m, "a"), "b")`); deeper callees are [`Callee::Dynamic`]
/// (or [`Callee::Introspection`] if a dunder hop is on the way).
const MAX_RESOLVE_DEPTH: usize = 32;

/// One call in the code that runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// 1-based line where the call starts.
    pub line: usize,
    /// Where the call sits.
    pub construct: Construct,
    /// What it calls.
    pub callee: Callee,
    /// The call's source text (for a bare decorator, the decorator's),
    /// at most 120 characters: a longer one is cut to 119 and ends in `…`.
    pub text: String,
}

/// Where a call sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Construct {
    /// In a statement of the module's top level or of the function's body
    /// (any nesting of `if`, `for`, `while`, `try`, `with`, `match`).
    Statement,
    /// In a decorator; a bare `@foo` is itself a call of `foo`.
    Decorator,
    /// In a default value of a `def` or `lambda` parameter.
    DefaultArgument,
    /// In a parameter or return annotation of a `def`, or the annotation
    /// of an annotated assignment.
    Annotation,
    /// In a statement of a class body (nested classes included).
    ClassBody,
    /// In a class's base list or class keywords (`metaclass=...`).
    BaseOrKeyword,
    /// In a comprehension or generator expression.
    Comprehension,
}

/// What a call calls.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Callee {
    /// A dotted name reached through the module's imports: `import os as
    /// o; o.system()`, `from subprocess import run as r; r()`,
    /// `__import__("os").system()`, `importlib.import_module("os").system()`
    /// and `getattr(os, "system")()` all give `os.system`. A relative import
    /// keeps its dots (`from .utils import f; f()` gives `.utils.f`).
    Resolved(String),
    /// A builtin (`eval`, `exec`, `open`, `getattr`, `print`, `int`, ...)
    /// whose name the module does not bind; attributes follow
    /// (`str.join`).
    Builtin(String),
    /// A function or class defined in this module (`C.m` for a method
    /// reached through its class).
    Local(String),
    /// A callee reached through a dunder attribute, key or name
    /// (`f.__globals__["os"].system`, `().__class__.__base__.__subclasses__`,
    /// `__builtins__["exec"]`): the callee expression's text.
    Introspection(String),
    /// Anything else: the callee expression's text.
    Dynamic(String),
}

/// The calls that run when `source` is imported, in source order.
///
/// ```
/// use tpkg_pysource::{Callee, Construct, import_time_calls};
/// let source = "import os as o\n@o.fspath\ndef f(x=print()):\n    o.system('id')\n";
/// let calls = import_time_calls(source).unwrap();
/// assert_eq!(calls.len(), 2);
/// assert_eq!(calls[0].construct, Construct::Decorator);
/// assert_eq!(calls[0].callee, Callee::Resolved("os.fspath".into()));
/// assert_eq!(calls[1].construct, Construct::DefaultArgument);
/// assert_eq!(calls[1].callee, Callee::Builtin("print".into()));
/// ```
pub fn import_time_calls(source: &str) -> Result<Vec<Call>, ScanError> {
    with_parse_stack(source, || {
        let module = parse_module_checked(source, PythonVersion::LATEST)?;
        let body = &module.syntax().body;
        let mut walker = Walker::new(source, body);
        walker.body(body, Construct::Statement);
        Ok(walker.finish())
    })
}

/// The calls in the body of the function `qualname` (`f` for a module-level
/// `def f`, `C.m` for a method `m` of a module-level class `C`, `C.D.m` for
/// nested classes), in source order; `None` if the module defines no such
/// function (the last definition counts when there are several).
///
/// Callees resolve through the module's bindings as they stand once the
/// module is imported, then the function's own: its parameters and
/// assignments hide module names, its imports bind. Nested functions' and
/// lambdas' bodies count as the function's (what a closure calls, the
/// function that makes it can call).
///
/// ```
/// use tpkg_pysource::{Callee, function_calls, import_time_calls};
/// let source = "import os\ndef f():\n    os.system('id')\n";
/// assert!(import_time_calls(source).unwrap().is_empty());
/// let calls = function_calls(source, "f").unwrap().unwrap();
/// assert_eq!(calls[0].callee, Callee::Resolved("os.system".into()));
/// assert_eq!(function_calls(source, "g").unwrap(), None);
/// ```
pub fn function_calls(source: &str, qualname: &str) -> Result<Option<Vec<Call>>, ScanError> {
    with_parse_stack(source, || {
        let module = parse_module_checked(source, PythonVersion::LATEST)?;
        let body = &module.syntax().body;
        let path: Vec<&str> = qualname.split('.').collect();
        let Some(function) = find_function(body, &path) else {
            return Ok(None);
        };
        let mut walker = Walker::new(source, body);
        // Bindings as they stand after the import; its calls are not wanted.
        walker.body(body, Construct::Statement);
        walker.calls.clear();
        walker.in_function = true;
        walker.function_body(function);
        Ok(Some(walker.finish()))
    })
}

/// The last `def` named by `path` in `body` (classes down to the function),
/// looking inside compound statements at the same level.
fn find_function<'a>(body: &'a [Stmt], path: &[&str]) -> Option<&'a ast::StmtFunctionDef> {
    let (first, rest) = path.split_first()?;
    let mut found = None;
    for stmt in body {
        let hit = match stmt {
            Stmt::FunctionDef(function) if rest.is_empty() && function.name.id == *first => {
                Some(function)
            }
            Stmt::ClassDef(class) if !rest.is_empty() && class.name.id == *first => {
                find_function(&class.body, rest)
            }
            _ => compound_bodies(stmt)
                .into_iter()
                .filter_map(|b| find_function(b, path))
                .last(),
        };
        if hit.is_some() {
            found = hit;
        }
    }
    found
}
