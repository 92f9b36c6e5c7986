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

use std::collections::HashMap;

use ruff_python_ast::{self as ast, Expr, Stmt};
use ruff_text_size::{Ranged, TextRange};

use crate::scan::{
    PythonVersion, ScanError, Visit, expr_children, parse_module_checked, with_parse_stack,
};

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
            Stmt::If(if_) => std::iter::once(&if_.body[..])
                .chain(if_.elif_else_clauses.iter().map(|c| &c.body[..]))
                .filter_map(|b| find_function(b, path))
                .last(),
            Stmt::Try(try_) => std::iter::once(&try_.body[..])
                .chain(try_.handlers.iter().map(|h| {
                    let ast::ExceptHandler::ExceptHandler(h) = h;
                    &h.body[..]
                }))
                .chain([&try_.orelse[..], &try_.finalbody[..]])
                .filter_map(|b| find_function(b, path))
                .last(),
            Stmt::With(with) => find_function(&with.body, path),
            Stmt::For(for_) => find_function(&for_.body, path)
                .into_iter()
                .chain(find_function(&for_.orelse, path))
                .last(),
            Stmt::While(while_) => find_function(&while_.body, path)
                .into_iter()
                .chain(find_function(&while_.orelse, path))
                .last(),
            Stmt::Match(match_) => match_
                .cases
                .iter()
                .filter_map(|c| find_function(&c.body, path))
                .last(),
            _ => None,
        };
        if hit.is_some() {
            found = hit;
        }
    }
    found
}

/// What an expression refers to, as far as the walker can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ref {
    Module(String),
    Builtin(String),
    Local(String),
    Introspection,
}

#[derive(Debug, Clone)]
enum Binding {
    Ref(Ref),
    /// Bound to something the walker does not follow.
    Other,
}

struct Scope {
    names: HashMap<String, Binding>,
    /// A class body's names are seen only from the body itself.
    is_class: bool,
}

struct Walker<'s> {
    source: &'s str,
    /// Byte offset of each line's start.
    line_starts: Vec<usize>,
    /// `from __future__ import annotations`: annotations are not evaluated.
    lazy_annotations: bool,
    /// Walking a function's body: nested function and lambda bodies count,
    /// annotated assignments' annotations do not.
    in_function: bool,
    scopes: Vec<Scope>,
    /// Enclosing class names, for `Local` qualified names.
    classes: Vec<String>,
    /// `from m import *` ran: an unbound name may be anything.
    star_import: bool,
    /// Depth of `except` handlers being walked.
    handler_depth: usize,
    calls: Vec<(usize, Call)>,
    /// [`Walker::spine_has_dunder`]'s answers, by node address.
    dunder_spines: HashMap<usize, bool>,
}

impl<'s> Walker<'s> {
    fn new(source: &'s str, body: &[Stmt]) -> Self {
        let line_starts = std::iter::once(0)
            .chain(source.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        let lazy_annotations = body.iter().any(|stmt| {
            matches!(stmt, Stmt::ImportFrom(import)
                if import.level == 0
                    && import.module.as_ref().is_some_and(|m| m.id == "__future__")
                    && import.names.iter().any(|a| a.name.id == "annotations"))
        });
        Walker {
            source,
            line_starts,
            lazy_annotations,
            in_function: false,
            scopes: vec![Scope {
                names: HashMap::new(),
                is_class: false,
            }],
            classes: Vec::new(),
            star_import: false,
            handler_depth: 0,
            calls: Vec::new(),
            dunder_spines: HashMap::new(),
        }
    }

    fn finish(mut self) -> Vec<Call> {
        self.calls.sort_by_key(|(offset, _)| *offset);
        self.calls.into_iter().map(|(_, call)| call).collect()
    }

    fn line(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&start| start <= offset)
    }

    fn text(&self, range: TextRange) -> String {
        let text = self.source.get(range.to_std_range()).unwrap_or_default();
        if text.len() <= MAX_TEXT_CHARS {
            return text.to_owned();
        }
        // Longer than the limit in bytes; all ASCII up to it, in chars too.
        if let Some(head) = text.as_bytes().get(..=MAX_TEXT_CHARS)
            && head.is_ascii()
        {
            return format!("{}…", &text[..MAX_TEXT_CHARS - 1]);
        }
        let mut chars = text.char_indices();
        match chars.nth(MAX_TEXT_CHARS - 1) {
            Some((cut, _)) if chars.next().is_some() => format!("{}…", &text[..cut]),
            _ => text.to_owned(),
        }
    }

    fn record(&mut self, range: TextRange, func: &Expr, construct: Construct) {
        let callee = match self.resolve(func, 0) {
            Some(Ref::Module(path)) => Callee::Resolved(path),
            Some(Ref::Builtin(name)) => Callee::Builtin(name),
            Some(Ref::Local(name)) => Callee::Local(name),
            Some(Ref::Introspection) => Callee::Introspection(self.text(func.range())),
            None if self.spine_has_dunder(func) => Callee::Introspection(self.text(func.range())),
            None => Callee::Dynamic(self.text(func.range())),
        };
        let offset = usize::from(range.start());
        let call = Call {
            line: self.line(offset),
            construct,
            callee,
            text: self.text(range),
        };
        self.calls.push((offset, call));
    }

    // ---- bindings ----

    fn lookup(&self, name: &str) -> Option<&Binding> {
        let innermost = self.scopes.len() - 1;
        self.scopes
            .iter()
            .enumerate()
            .rev()
            .filter(|(i, scope)| !scope.is_class || *i == innermost)
            .find_map(|(_, scope)| scope.names.get(name))
    }

    fn bind(&mut self, name: &str, binding: Binding) {
        let Some(scope) = self.scopes.last_mut() else {
            return;
        };
        if self.handler_depth > 0
            && matches!(binding, Binding::Other)
            && matches!(scope.names.get(name), Some(Binding::Ref(_)))
        {
            return;
        }
        scope.names.insert(name.to_owned(), binding);
    }

    /// Binds every name in an assignment target (`a`, `a, (b, *c)`) as
    /// unknown.
    fn bind_target(&mut self, target: &Expr) {
        let mut pending = vec![target];
        while let Some(target) = pending.pop() {
            match target {
                Expr::Name(name) => self.bind(name.id.as_str(), Binding::Other),
                Expr::Tuple(tuple) => pending.extend(tuple.elts.iter()),
                Expr::List(list) => pending.extend(list.elts.iter()),
                Expr::Starred(starred) => pending.push(&starred.value),
                _ => {}
            }
        }
    }

    /// `x = <reference>` makes `x` an alias; anything else binds it unknown.
    fn bind_assignment(&mut self, targets: &[Expr], value: Option<&Expr>) {
        if let ([Expr::Name(name)], Some(value)) = (targets, value)
            && let Some(reference) = self.resolve(value, 0)
        {
            self.bind(name.id.as_str(), Binding::Ref(reference));
            return;
        }
        for target in targets {
            self.bind_target(target);
        }
    }

    fn local_name(&self, name: &str) -> String {
        let mut qualified = self.classes.join(".");
        if !qualified.is_empty() {
            qualified.push('.');
        }
        qualified.push_str(name);
        qualified
    }

    // ---- resolution ----

    fn resolve_name(&self, name: &str) -> Option<Ref> {
        match self.lookup(name) {
            Some(Binding::Ref(reference)) => return Some(reference.clone()),
            Some(Binding::Other) => return None,
            None => {}
        }
        if is_builtin(name) && !self.star_import {
            Some(Ref::Builtin(name.to_owned()))
        } else if is_dunder(name) && !is_builtin(name) {
            Some(Ref::Introspection)
        } else {
            None
        }
    }

    fn resolve(&self, expr: &Expr, depth: usize) -> Option<Ref> {
        if depth > MAX_RESOLVE_DEPTH {
            return None;
        }
        match expr {
            Expr::Name(name) => self.resolve_name(name.id.as_str()),
            Expr::Attribute(attribute) => {
                let attr = attribute.attr.id.as_str();
                if is_dunder(attr) {
                    return Some(Ref::Introspection);
                }
                Some(extend(self.resolve(&attribute.value, depth + 1)?, attr))
            }
            Expr::Subscript(subscript) => {
                let key = string_literal(&subscript.slice);
                if key.as_deref().is_some_and(is_dunder) {
                    return Some(Ref::Introspection);
                }
                match self.resolve(&subscript.value, depth + 1)? {
                    Ref::Introspection => Some(Ref::Introspection),
                    Ref::Module(path) if path == "sys.modules" => key.map(Ref::Module),
                    _ => None,
                }
            }
            Expr::Call(call) => self.resolve_call_result(call, depth),
            _ => None,
        }
    }

    /// What a call returns, for the calls that return a module or an
    /// attribute: `__import__`, `importlib.import_module`, `getattr`.
    fn resolve_call_result(&self, call: &ast::ExprCall, depth: usize) -> Option<Ref> {
        let args = &call.arguments.args;
        match self.resolve(&call.func, depth + 1)? {
            Ref::Introspection => Some(Ref::Introspection),
            Ref::Builtin(name) if name == "__import__" => {
                let module = string_literal(args.first()?)?;
                let fromlist = args.get(3).or_else(|| keyword(call, "fromlist"));
                let level = args
                    .get(4)
                    .or_else(|| keyword(call, "level"))
                    .map_or(Some(0), int_literal)?;
                // Without a fromlist, `__import__("a.b")` returns `a`.
                let module = match fromlist {
                    Some(list) if !is_empty_display(list) => module,
                    _ => module.split('.').next().unwrap_or_default().to_owned(),
                };
                Some(Ref::Module(format!("{}{module}", ".".repeat(level))))
            }
            Ref::Module(path) if path == "importlib.import_module" => {
                Some(Ref::Module(string_literal(args.first()?)?))
            }
            Ref::Builtin(name) if name == "getattr" && args.len() >= 2 => {
                let attr = string_literal(&args[1])?;
                if is_dunder(&attr) {
                    return Some(Ref::Introspection);
                }
                Some(extend(self.resolve(&args[0], depth + 1)?, &attr))
            }
            _ => None,
        }
    }

    /// A dunder hop anywhere along a callee's chain of attributes,
    /// subscripts and calls, however deep (past what [`Walker::resolve`]
    /// follows). Answers are remembered per node, so the chains of nested
    /// calls (`f()()()...`) cost linear time in all.
    fn spine_has_dunder(&mut self, expr: &Expr) -> bool {
        let mut path = Vec::new();
        let mut next = Some(expr);
        let mut below = false;
        while let Some(node) = next {
            let key = std::ptr::from_ref(node) as usize;
            if let Some(&known) = self.dunder_spines.get(&key) {
                below = known;
                break;
            }
            let (hop, down) = spine_step(node);
            path.push((key, hop));
            next = down;
        }
        for (key, hop) in path.into_iter().rev() {
            below |= hop;
            self.dunder_spines.insert(key, below);
        }
        below
    }

    // ---- statements ----

    fn body(&mut self, body: &[Stmt], construct: Construct) {
        for stmt in body {
            self.stmt(stmt, construct);
        }
    }

    fn stmt(&mut self, stmt: &Stmt, construct: Construct) {
        match stmt {
            Stmt::Import(import) => {
                for alias in &import.names {
                    let name = alias.name.id.as_str();
                    match &alias.asname {
                        Some(asname) => self.bind(
                            asname.id.as_str(),
                            Binding::Ref(Ref::Module(name.to_owned())),
                        ),
                        None => {
                            let top = name.split('.').next().unwrap_or(name);
                            self.bind(top, Binding::Ref(Ref::Module(top.to_owned())));
                        }
                    }
                }
            }
            Stmt::ImportFrom(import) => {
                let mut module = ".".repeat(import.level as usize);
                if let Some(name) = &import.module {
                    module.push_str(name.id.as_str());
                }
                for alias in &import.names {
                    let name = alias.name.id.as_str();
                    if name == "*" {
                        self.star_import = true;
                        continue;
                    }
                    let bound = alias.asname.as_ref().map_or(name, |a| a.id.as_str());
                    let path = if module.ends_with('.') || module.is_empty() {
                        format!("{module}{name}")
                    } else {
                        format!("{module}.{name}")
                    };
                    self.bind(bound, Binding::Ref(Ref::Module(path)));
                }
            }
            Stmt::FunctionDef(function) => {
                self.decorators(&function.decorator_list);
                self.parameters(&function.parameters);
                if !self.lazy_annotations {
                    for parameter in all_parameters(&function.parameters) {
                        if let Some(annotation) = &parameter.annotation {
                            self.expr(annotation, Construct::Annotation);
                        }
                    }
                    if let Some(returns) = &function.returns {
                        self.expr(returns, Construct::Annotation);
                    }
                }
                let name = function.name.id.as_str();
                self.bind(name, Binding::Ref(Ref::Local(self.local_name(name))));
                if self.in_function {
                    self.function_body(function);
                }
            }
            Stmt::ClassDef(class) => {
                self.decorators(&class.decorator_list);
                if let Some(arguments) = &class.arguments {
                    for arg in &arguments.args {
                        self.expr(arg, Construct::BaseOrKeyword);
                    }
                    for keyword in &arguments.keywords {
                        self.expr(&keyword.value, Construct::BaseOrKeyword);
                    }
                }
                let name = class.name.id.as_str();
                let local = self.local_name(name);
                self.scopes.push(Scope {
                    names: HashMap::new(),
                    is_class: true,
                });
                self.classes.push(name.to_owned());
                self.body(&class.body, Construct::ClassBody);
                self.classes.pop();
                self.scopes.pop();
                self.bind(name, Binding::Ref(Ref::Local(local)));
            }
            Stmt::Return(ret) => self.optional(ret.value.as_deref(), construct),
            Stmt::Delete(delete) => {
                for target in &delete.targets {
                    self.expr(target, construct);
                    self.bind_target(target);
                }
            }
            // Type aliases are evaluated lazily.
            Stmt::TypeAlias(_) => {}
            Stmt::Assign(assign) => {
                self.expr(&assign.value, construct);
                for target in &assign.targets {
                    self.expr(target, construct);
                }
                self.bind_assignment(&assign.targets, Some(&assign.value));
            }
            Stmt::AugAssign(assign) => {
                self.expr(&assign.target, construct);
                self.expr(&assign.value, construct);
                self.bind_target(&assign.target);
            }
            Stmt::AnnAssign(assign) => {
                self.optional(assign.value.as_deref(), construct);
                self.expr(&assign.target, construct);
                // Annotations in a function body are never evaluated.
                if !self.lazy_annotations && !self.in_function_scope() {
                    self.expr(&assign.annotation, Construct::Annotation);
                }
                if assign.value.is_some() {
                    self.bind_assignment(
                        std::slice::from_ref(assign.target.as_ref()),
                        assign.value.as_deref(),
                    );
                }
            }
            Stmt::For(for_) => {
                self.expr(&for_.iter, construct);
                self.expr(&for_.target, construct);
                self.bind_target(&for_.target);
                self.body(&for_.body, construct);
                self.body(&for_.orelse, construct);
            }
            Stmt::While(while_) => {
                self.expr(&while_.test, construct);
                self.body(&while_.body, construct);
                self.body(&while_.orelse, construct);
            }
            Stmt::If(if_) => {
                self.expr(&if_.test, construct);
                // `if __name__ == "__main__":` does not run on import.
                let skip = !self.in_function
                    && self.scopes.len() == 1
                    && self.lookup("__name__").is_none()
                    && is_main_guard(&if_.test);
                if !skip {
                    self.body(&if_.body, construct);
                }
                for clause in &if_.elif_else_clauses {
                    self.optional(clause.test.as_ref(), construct);
                    self.body(&clause.body, construct);
                }
            }
            Stmt::With(with) => {
                for item in &with.items {
                    self.expr(&item.context_expr, construct);
                    if let Some(vars) = &item.optional_vars {
                        self.expr(vars, construct);
                        self.bind_target(vars);
                    }
                }
                self.body(&with.body, construct);
            }
            Stmt::Match(match_) => {
                self.expr(&match_.subject, construct);
                for case in &match_.cases {
                    self.optional(case.guard.as_deref(), construct);
                    self.body(&case.body, construct);
                }
            }
            Stmt::Raise(raise) => {
                self.optional(raise.exc.as_deref(), construct);
                self.optional(raise.cause.as_deref(), construct);
            }
            Stmt::Try(try_) => {
                self.body(&try_.body, construct);
                for handler in &try_.handlers {
                    let ast::ExceptHandler::ExceptHandler(handler) = handler;
                    self.optional(handler.type_.as_deref(), construct);
                    self.handler_depth += 1;
                    if let Some(name) = &handler.name {
                        self.bind(name.id.as_str(), Binding::Other);
                    }
                    self.body(&handler.body, construct);
                    self.handler_depth -= 1;
                }
                self.body(&try_.orelse, construct);
                self.body(&try_.finalbody, construct);
            }
            Stmt::Assert(assert) => {
                self.expr(&assert.test, construct);
                self.optional(assert.msg.as_deref(), construct);
            }
            Stmt::Expr(statement) => self.expr(&statement.value, construct),
            Stmt::Global(_)
            | Stmt::Nonlocal(_)
            | Stmt::Pass(_)
            | Stmt::Break(_)
            | Stmt::Continue(_)
            | Stmt::IpyEscapeCommand(_) => {}
        }
    }

    /// Inside a function body (not a class body inside one).
    fn in_function_scope(&self) -> bool {
        self.in_function && self.scopes.last().is_some_and(|s| !s.is_class)
    }

    /// A function's body in a new scope where its parameters hide outer
    /// names.
    fn function_body(&mut self, function: &ast::StmtFunctionDef) {
        let mut names = HashMap::new();
        for parameter in all_parameters(&function.parameters) {
            names.insert(parameter.name.id.to_string(), Binding::Other);
        }
        self.scopes.push(Scope {
            names,
            is_class: false,
        });
        let classes = std::mem::take(&mut self.classes);
        let handler_depth = std::mem::take(&mut self.handler_depth);
        self.body(&function.body, Construct::Statement);
        self.handler_depth = handler_depth;
        self.classes = classes;
        self.scopes.pop();
    }

    fn decorators(&mut self, decorators: &[ast::Decorator]) {
        for decorator in decorators {
            let expression = &decorator.expression;
            if !matches!(expression, Expr::Call(_)) {
                self.record(expression.range(), expression, Construct::Decorator);
            }
            self.expr(expression, Construct::Decorator);
        }
    }

    fn parameters(&mut self, parameters: &ast::Parameters) {
        for default in defaults(parameters) {
            self.expr(default, Construct::DefaultArgument);
        }
    }

    fn optional(&mut self, expr: Option<&Expr>, construct: Construct) {
        if let Some(expr) = expr {
            self.expr(expr, construct);
        }
    }

    // ---- expressions ----

    /// Every call in `root`, with an explicit stack (no recursion).
    fn expr(&mut self, root: &Expr, construct: Construct) {
        let mut stack: Vec<(&Expr, Construct)> = vec![(root, construct)];
        let mut children: Vec<Visit<'_>> = Vec::new();
        while let Some((expr, construct)) = stack.pop() {
            match expr {
                Expr::Call(call) => {
                    self.record(call.range(), &call.func, construct);
                    stack.push((&call.func, construct));
                    stack.extend(call.arguments.args.iter().map(|a| (a, construct)));
                    stack.extend(
                        call.arguments
                            .keywords
                            .iter()
                            .map(|k| (&k.value, construct)),
                    );
                }
                Expr::Lambda(lambda) => {
                    if let Some(parameters) = &lambda.parameters {
                        stack.extend(defaults(parameters).map(|d| (d, Construct::DefaultArgument)));
                    }
                    if self.in_function {
                        stack.push((&lambda.body, construct));
                    }
                }
                Expr::ListComp(comp) => {
                    stack.push((&comp.elt, Construct::Comprehension));
                    push_generators(&mut stack, &comp.generators);
                }
                Expr::SetComp(comp) => {
                    stack.push((&comp.elt, Construct::Comprehension));
                    push_generators(&mut stack, &comp.generators);
                }
                Expr::Generator(comp) => {
                    stack.push((&comp.elt, Construct::Comprehension));
                    push_generators(&mut stack, &comp.generators);
                }
                Expr::DictComp(comp) => {
                    if let Some(key) = comp.key.as_deref() {
                        stack.push((key, Construct::Comprehension));
                    }
                    stack.push((&comp.value, Construct::Comprehension));
                    push_generators(&mut stack, &comp.generators);
                }
                _ => {
                    expr_children(expr, &mut children);
                    stack.extend(children.drain(..).filter_map(|visit| match visit {
                        Visit::Expr(child) => Some((child, construct)),
                        Visit::Stmt(_) => None,
                    }));
                }
            }
        }
    }
}

fn push_generators<'a>(
    stack: &mut Vec<(&'a Expr, Construct)>,
    generators: &'a [ast::Comprehension],
) {
    for generator in generators {
        stack.push((&generator.target, Construct::Comprehension));
        stack.push((&generator.iter, Construct::Comprehension));
        stack.extend(generator.ifs.iter().map(|i| (i, Construct::Comprehension)));
    }
}

fn defaults(parameters: &ast::Parameters) -> impl Iterator<Item = &Expr> {
    parameters
        .posonlyargs
        .iter()
        .chain(&parameters.args)
        .chain(&parameters.kwonlyargs)
        .filter_map(|p| p.default.as_deref())
}

fn all_parameters(parameters: &ast::Parameters) -> impl Iterator<Item = &ast::Parameter> {
    parameters
        .posonlyargs
        .iter()
        .chain(&parameters.args)
        .chain(&parameters.kwonlyargs)
        .map(|p| &p.parameter)
        .chain(parameters.vararg.as_deref())
        .chain(parameters.kwarg.as_deref())
}

fn extend(reference: Ref, attr: &str) -> Ref {
    match reference {
        Ref::Module(path) => Ref::Module(format!("{path}.{attr}")),
        Ref::Builtin(name) => Ref::Builtin(format!("{name}.{attr}")),
        Ref::Local(name) => Ref::Local(format!("{name}.{attr}")),
        Ref::Introspection => Ref::Introspection,
    }
}

/// A dunder hop of this node itself (not of the nodes below it), and the
/// next node down a callee's chain of attributes, subscripts and calls.
fn spine_step(expr: &Expr) -> (bool, Option<&Expr>) {
    match expr {
        Expr::Name(name) => {
            let name = name.id.as_str();
            (is_dunder(name) && !is_builtin(name), None)
        }
        Expr::Attribute(attribute) => (
            is_dunder(attribute.attr.id.as_str()),
            Some(&attribute.value),
        ),
        Expr::Subscript(subscript) => (
            string_literal(&subscript.slice).is_some_and(|k| is_dunder(&k)),
            Some(&subscript.value),
        ),
        // `getattr(x, "__dunder__")`, or any call with such a second
        // argument: a dunder hop as well.
        Expr::Call(call) => (
            call.arguments
                .args
                .get(1)
                .and_then(string_literal)
                .is_some_and(|a| is_dunder(&a)),
            Some(&call.func),
        ),
        _ => (false, None),
    }
}

fn keyword<'a>(call: &'a ast::ExprCall, name: &str) -> Option<&'a Expr> {
    call.arguments
        .keywords
        .iter()
        .find(|k| k.arg.as_ref().is_some_and(|a| a.id == name))
        .map(|k| &k.value)
}

fn string_literal(expr: &Expr) -> Option<String> {
    match expr {
        Expr::StringLiteral(literal) => Some(literal.value.to_str().to_owned()),
        _ => None,
    }
}

fn int_literal(expr: &Expr) -> Option<usize> {
    match expr {
        Expr::NumberLiteral(ast::ExprNumberLiteral {
            value: ast::Number::Int(value),
            ..
        }) => value.as_i64().and_then(|v| usize::try_from(v).ok()),
        _ => None,
    }
}

/// `()`, `[]`, `None`: a fromlist that does not count.
fn is_empty_display(expr: &Expr) -> bool {
    match expr {
        Expr::Tuple(tuple) => tuple.elts.is_empty(),
        Expr::List(list) => list.elts.is_empty(),
        Expr::NoneLiteral(_) => true,
        _ => false,
    }
}

fn is_dunder(name: &str) -> bool {
    name.len() > 4 && name.starts_with("__") && name.ends_with("__")
}

fn is_main_guard(test: &Expr) -> bool {
    let Expr::Compare(compare) = test else {
        return false;
    };
    let is_name = matches!(compare.left.as_ref(), Expr::Name(n) if n.id.as_str() == "__name__");
    let is_main = compare
        .comparators
        .first()
        .is_some_and(|c| matches!(c, Expr::StringLiteral(s) if s.value.to_str() == "__main__"));
    is_name && is_main && compare.ops.first() == Some(&ast::CmpOp::Eq)
}

fn is_builtin(name: &str) -> bool {
    BUILTINS.binary_search(&name).is_ok()
}

/// `dir(builtins)` of CPython 3.13 less `True`, `False`, `None` and the
/// private names other than `__import__` and `__build_class__`, in byte
/// order.
const BUILTINS: &[&str] = &[
    "ArithmeticError",
    "AssertionError",
    "AttributeError",
    "BaseException",
    "BaseExceptionGroup",
    "BlockingIOError",
    "BrokenPipeError",
    "BufferError",
    "BytesWarning",
    "ChildProcessError",
    "ConnectionAbortedError",
    "ConnectionError",
    "ConnectionRefusedError",
    "ConnectionResetError",
    "DeprecationWarning",
    "EOFError",
    "Ellipsis",
    "EncodingWarning",
    "EnvironmentError",
    "Exception",
    "ExceptionGroup",
    "FileExistsError",
    "FileNotFoundError",
    "FloatingPointError",
    "FutureWarning",
    "GeneratorExit",
    "IOError",
    "ImportError",
    "ImportWarning",
    "IndentationError",
    "IndexError",
    "InterruptedError",
    "IsADirectoryError",
    "KeyError",
    "KeyboardInterrupt",
    "LookupError",
    "MemoryError",
    "ModuleNotFoundError",
    "NameError",
    "NotADirectoryError",
    "NotImplemented",
    "NotImplementedError",
    "OSError",
    "OverflowError",
    "PendingDeprecationWarning",
    "PermissionError",
    "ProcessLookupError",
    "PythonFinalizationError",
    "RecursionError",
    "ReferenceError",
    "ResourceWarning",
    "RuntimeError",
    "RuntimeWarning",
    "StopAsyncIteration",
    "StopIteration",
    "SyntaxError",
    "SyntaxWarning",
    "SystemError",
    "SystemExit",
    "TabError",
    "TimeoutError",
    "TypeError",
    "UnboundLocalError",
    "UnicodeDecodeError",
    "UnicodeEncodeError",
    "UnicodeError",
    "UnicodeTranslateError",
    "UnicodeWarning",
    "UserWarning",
    "ValueError",
    "Warning",
    "ZeroDivisionError",
    "__build_class__",
    "__import__",
    "abs",
    "aiter",
    "all",
    "anext",
    "any",
    "ascii",
    "bin",
    "bool",
    "breakpoint",
    "bytearray",
    "bytes",
    "callable",
    "chr",
    "classmethod",
    "compile",
    "complex",
    "copyright",
    "credits",
    "delattr",
    "dict",
    "dir",
    "divmod",
    "enumerate",
    "eval",
    "exec",
    "exit",
    "filter",
    "float",
    "format",
    "frozenset",
    "getattr",
    "globals",
    "hasattr",
    "hash",
    "help",
    "hex",
    "id",
    "input",
    "int",
    "isinstance",
    "issubclass",
    "iter",
    "len",
    "license",
    "list",
    "locals",
    "map",
    "max",
    "memoryview",
    "min",
    "next",
    "object",
    "oct",
    "open",
    "ord",
    "pow",
    "print",
    "property",
    "quit",
    "range",
    "repr",
    "reversed",
    "round",
    "set",
    "setattr",
    "slice",
    "sorted",
    "staticmethod",
    "str",
    "sum",
    "super",
    "tuple",
    "type",
    "vars",
    "zip",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn calls(source: &str) -> Vec<(Construct, Callee)> {
        import_time_calls(source)
            .unwrap()
            .into_iter()
            .map(|c| (c.construct, c.callee))
            .collect()
    }

    fn resolved(path: &str) -> Callee {
        Callee::Resolved(path.to_owned())
    }

    fn builtin(name: &str) -> Callee {
        Callee::Builtin(name.to_owned())
    }

    fn local(name: &str) -> Callee {
        Callee::Local(name.to_owned())
    }

    fn dynamic(text: &str) -> Callee {
        Callee::Dynamic(text.to_owned())
    }

    fn introspection(text: &str) -> Callee {
        Callee::Introspection(text.to_owned())
    }

    use Construct::*;

    #[test]
    fn builtins_are_sorted() {
        assert!(BUILTINS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn statement() {
        let source = "import os\nos.system('id')\n";
        assert_eq!(calls(source), [(Statement, resolved("os.system"))]);
        let call = &import_time_calls(source).unwrap()[0];
        assert_eq!((call.line, call.text.as_str()), (2, "os.system('id')"));
    }

    #[test]
    fn decorator() {
        let source = "import functools\n@functools.cache\ndef f(): pass\n";
        assert_eq!(calls(source), [(Decorator, resolved("functools.cache"))]);
        let source = "import functools as ft\n@ft.lru_cache(maxsize=len('ab'))\ndef f(): pass\n";
        assert_eq!(
            calls(source),
            [
                (Decorator, resolved("functools.lru_cache")),
                (Decorator, builtin("len"))
            ]
        );
        let source = "class C:\n    @property\n    def p(self): pass\n";
        assert_eq!(calls(source), [(Decorator, builtin("property"))]);
    }

    #[test]
    fn default_argument() {
        let source = "def f(a, b=open('x'), *, c=eval('1')): pass\n";
        assert_eq!(
            calls(source),
            [
                (DefaultArgument, builtin("open")),
                (DefaultArgument, builtin("eval"))
            ]
        );
        let source = "g = lambda x=exec('1'): print(x)\n";
        assert_eq!(calls(source), [(DefaultArgument, builtin("exec"))]);
    }

    #[test]
    fn annotation() {
        let source = "import typing\ndef f(x: typing.cast(int, 1), *a: eval('int')) -> compile('', '', 'eval'): pass\n";
        assert_eq!(
            calls(source),
            [
                (Annotation, resolved("typing.cast")),
                (Annotation, builtin("eval")),
                (Annotation, builtin("compile"))
            ]
        );
        assert_eq!(
            calls("x: eval('int') = 1\n"),
            [(Annotation, builtin("eval"))]
        );
        let lazy = "from __future__ import annotations\nx: eval('int') = 1\ndef f(x: eval('int')) -> exec('1'): pass\n";
        assert_eq!(calls(lazy), []);
    }

    #[test]
    fn class_body() {
        let source = "class C:\n    exec('x')\n    class D:\n        y = print()\n";
        assert_eq!(
            calls(source),
            [(ClassBody, builtin("exec")), (ClassBody, builtin("print"))]
        );
        let source =
            "class C:\n    def helper(): pass\n    x = helper()\n    def m(self): helper()\n";
        assert_eq!(calls(source), [(ClassBody, local("C.helper"))]);
    }

    #[test]
    fn base_or_keyword() {
        let source = "from six import with_metaclass\nimport abc\nclass C(with_metaclass(abc.ABCMeta), metaclass=type('M', (type,), {})): pass\n";
        assert_eq!(
            calls(source),
            [
                (BaseOrKeyword, resolved("six.with_metaclass")),
                (BaseOrKeyword, builtin("type"))
            ]
        );
    }

    #[test]
    fn comprehension() {
        let source =
            "x = [print(i) for i in range(3) if callable(i)]\ny = {k: v() for k, v in d.items()}\n";
        assert_eq!(
            calls(source),
            [
                (Comprehension, builtin("print")),
                (Comprehension, builtin("range")),
                (Comprehension, builtin("callable")),
                (Comprehension, dynamic("v")),
                (Comprehension, dynamic("d.items")),
            ]
        );
    }

    #[test]
    fn resolution_through_imports() {
        let cases = [
            ("import os as o\no.system('x')\n", "os.system"),
            (
                "from subprocess import run as r\nr(['x'])\n",
                "subprocess.run",
            ),
            ("import os.path\nos.path.join('a')\n", "os.path.join"),
            ("import os.path as p\np.join('a')\n", "os.path.join"),
            ("import os\ngetattr(os, 'system')('x')\n", "os.system"),
            ("import sys\nsys.modules['os'].system('x')\n", "os.system"),
            ("import os\ns = os.system\ns('x')\n", "os.system"),
            ("from . import utils\nutils.f()\n", ".utils.f"),
            ("from ..a import b\nb()\n", "..a.b"),
        ];
        for (source, path) in cases {
            assert_eq!(calls(source)[0].1, resolved(path), "{source}");
        }
        assert_eq!(
            calls("__import__('os').system('x')\n"),
            [
                (Statement, resolved("os.system")),
                (Statement, builtin("__import__"))
            ]
        );
        assert_eq!(
            calls("__import__('os.path').path.join('x')\n")[0].1,
            resolved("os.path.join")
        );
        assert_eq!(
            calls("__import__('os.path', fromlist=['join']).join('x')\n")[0].1,
            resolved("os.path.join")
        );
        assert_eq!(
            calls("import importlib\nimportlib.import_module('os').system('x')\n"),
            [
                (Statement, resolved("os.system")),
                (Statement, resolved("importlib.import_module"))
            ]
        );
        assert_eq!(
            calls("from importlib import import_module as im\nim('os').system('x')\n")[0].1,
            resolved("os.system")
        );
    }

    #[test]
    fn builtins_local_and_rebinding() {
        assert_eq!(calls("exec('x')\n"), [(Statement, builtin("exec"))]);
        assert_eq!(
            calls("str.join('', [])\n"),
            [(Statement, builtin("str.join"))]
        );
        assert_eq!(
            calls("def f(): pass\nclass Foo: pass\nf()\nFoo()\nFoo.make()\n"),
            [
                (Statement, local("f")),
                (Statement, local("Foo")),
                (Statement, local("Foo.make"))
            ]
        );
        assert_eq!(
            calls("def open(): pass\nopen()\n"),
            [(Statement, local("open"))]
        );
        assert_eq!(
            calls("eval = lambda s: s\neval('x')\n"),
            [(Statement, dynamic("eval"))]
        );
        assert_eq!(
            calls("from io import open\nopen('x')\n"),
            [(Statement, resolved("io.open"))]
        );
        // In source order: before the rebinding, the builtin.
        assert_eq!(
            calls("print(1)\nprint = log\nprint(2)\n"),
            [(Statement, builtin("print")), (Statement, dynamic("print"))]
        );
        // A star import may bind anything.
        assert_eq!(
            calls("from m import *\nopen('x')\n"),
            [(Statement, dynamic("open"))]
        );
        // A fallback in an except handler does not hide the import.
        assert_eq!(
            calls("try:\n    import yaml\nexcept ImportError:\n    yaml = None\nyaml.load(s)\n"),
            [(Statement, resolved("yaml.load"))]
        );
        assert_eq!(
            calls("x = compute()\nx()\n"),
            [(Statement, dynamic("compute")), (Statement, dynamic("x"))]
        );
    }

    #[test]
    fn introspection_hops() {
        assert_eq!(
            calls("f.__globals__['os'].system('x')\n"),
            [(Statement, introspection("f.__globals__['os'].system"))]
        );
        assert_eq!(
            calls("().__class__.__base__.__subclasses__()\n"),
            [(
                Statement,
                introspection("().__class__.__base__.__subclasses__")
            )]
        );
        assert_eq!(
            calls("__builtins__['exec']('x')\n"),
            [(Statement, introspection("__builtins__['exec']"))]
        );
        assert_eq!(
            calls("getattr(f, '__globals__')['os'].system('x')\n")[0].1,
            introspection("getattr(f, '__globals__')['os'].system")
        );
        assert_eq!(
            calls("g = f.__globals__\ng['os'].system('x')\n"),
            [(Statement, introspection("g['os'].system"))]
        );
        let deep = format!("f.__globals__{}()\n", ".a".repeat(200));
        assert!(matches!(calls(&deep)[0].1, Callee::Introspection(_)));
    }

    #[test]
    fn module_level_control_flow() {
        let source = "\
import os
if os.getenv('A'):
    a()
elif b():
    c()
else:
    d()
for i in e():
    f()
else:
    g()
while h():
    i()
try:
    j()
except k() as err:
    l()
else:
    m()
finally:
    n()
with o() as p, q():
    r()
match s():
    case 1 if t():
        u()
assert v(), w()
raise x() from y()
del z()[0]
msg = f'{aa()!r:{bb()}}'
";
        let names: Vec<String> = calls(source)
            .into_iter()
            .map(|(construct, callee)| {
                assert_eq!(construct, Statement);
                match callee {
                    Callee::Dynamic(text) | Callee::Resolved(text) => text,
                    other => panic!("{other:?}"),
                }
            })
            .collect();
        let expected = "os.getenv a b c d e f g h i j k l m n o q r s t u v w x y z aa bb";
        assert_eq!(names.join(" "), expected);
    }

    #[test]
    fn main_guard_body_does_not_run() {
        let source = "if __name__ == '__main__':\n    a()\nelse:\n    b()\n";
        assert_eq!(calls(source), [(Statement, dynamic("b"))]);
        let rebound = "__name__ = '__main__'\nif __name__ == '__main__':\n    a()\n";
        assert_eq!(calls(rebound), [(Statement, dynamic("a"))]);
    }

    #[test]
    fn function_bodies_do_not_run_on_import() {
        let source = "import os\ndef f():\n os.system(\"x\")\n";
        assert!(import_time_calls(source).unwrap().is_empty());
        let calls = function_calls(source, "f").unwrap().unwrap();
        assert_eq!(calls.len(), 1);
        assert_eq!(
            (calls[0].line, calls[0].construct, &calls[0].callee),
            (3, Statement, &resolved("os.system"))
        );
        assert_eq!(function_calls(source, "g").unwrap(), None);
        assert_eq!(function_calls(source, "f.x").unwrap(), None);
    }

    #[test]
    fn function_calls_resolve_through_local_scope() {
        let source = "\
import os
class C:
    def m(self, os, p=print()):
        import subprocess as sp
        os.system('x')
        sp.run(['x'])
        helper()
        def inner(x=eval('1')):
            exec('x')
        g = lambda: open('x')
        y: eval('int') = 1
    class D:
        def n(self):
            return [len(x) for x in self.items()]
def helper():
    pass
";
        let m: Vec<_> = function_calls(source, "C.m")
            .unwrap()
            .unwrap()
            .into_iter()
            .map(|c| (c.construct, c.callee))
            .collect();
        assert_eq!(
            m,
            [
                (Statement, dynamic("os.system")),
                (Statement, resolved("subprocess.run")),
                (Statement, local("helper")),
                (DefaultArgument, builtin("eval")),
                (Statement, builtin("exec")),
                (Statement, builtin("open")),
            ]
        );
        let n: Vec<_> = function_calls(source, "C.D.n")
            .unwrap()
            .unwrap()
            .into_iter()
            .map(|c| (c.construct, c.callee))
            .collect();
        assert_eq!(
            n,
            [
                (Comprehension, builtin("len")),
                (Comprehension, dynamic("self.items"))
            ]
        );
        assert!(function_calls(source, "C").unwrap().is_none());
    }

    #[test]
    fn long_text_is_cut() {
        let source = format!("print('{}')\n", "x".repeat(300));
        let call = &import_time_calls(&source).unwrap()[0];
        assert_eq!(call.text.chars().count(), 120);
        assert!(call.text.ends_with('…'));
        let source = format!("print('{}')\n", "é".repeat(300));
        let call = &import_time_calls(&source).unwrap()[0];
        assert_eq!(call.text.chars().count(), 120);
        assert!(call.text.starts_with("print('éé") && call.text.ends_with("é…"));
        let exact = format!("print('{}')", "é".repeat(111));
        assert_eq!(import_time_calls(&exact).unwrap()[0].text, exact);
    }

    #[test]
    fn deep_nesting_does_not_overflow_the_stack() {
        for source in [
            format!("x = {}1", "-".repeat(300_000)),
            format!("x = f{}", "()".repeat(200_000)),
            format!("x = {}()", "a.".repeat(200_000) + "b"),
            format!("x = {}1{}", "[".repeat(100_000), "]".repeat(100_000)),
            format!("x = {}1{}", "f(".repeat(100_000), ")".repeat(100_000)),
        ] {
            let outcome = std::thread::Builder::new()
                .stack_size(256 << 10)
                .spawn(move || import_time_calls(&source).map(|c| c.len()))
                .unwrap()
                .join()
                .unwrap();
            assert!(matches!(outcome, Ok(_) | Err(ScanError::Syntax { .. })));
        }
    }

    /// Every torchvision module parses; prints the resolved and builtin
    /// callees that run on import, by top-level module (`--nocapture`).
    #[test]
    fn census_of_torchvision() {
        let root = std::path::Path::new(
            "/root/.cache/tpkg/venv-torch-2.13.0/lib/python3.11/site-packages/torchvision",
        );
        if !root.is_dir() {
            println!("census skipped: {} is absent", root.display());
            return;
        }
        let mut pending = vec![root.to_path_buf()];
        let mut files = Vec::new();
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                } else if path.extension().is_some_and(|e| e == "py") {
                    files.push(path);
                }
            }
        }
        files.sort();
        let mut counts: HashMap<(String, String), usize> = HashMap::new();
        let mut total = 0;
        for file in &files {
            let source = std::fs::read_to_string(file).unwrap();
            let calls =
                import_time_calls(&source).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            total += calls.len();
            for call in calls {
                let (group, name) = match call.callee {
                    Callee::Resolved(path) => {
                        let group = if path.starts_with('.') {
                            "(relative)".to_owned()
                        } else {
                            path.split('.').next().unwrap_or_default().to_owned()
                        };
                        (group, path)
                    }
                    Callee::Builtin(name) => ("(builtins)".to_owned(), name),
                    _ => continue,
                };
                *counts.entry((group, name)).or_default() += 1;
            }
        }
        println!(
            "census: {} files, {total} import-time calls, {} distinct resolved/builtin callees",
            files.len(),
            counts.len()
        );
        let mut groups: HashMap<&str, Vec<(&str, usize)>> = HashMap::new();
        for ((group, name), count) in &counts {
            groups.entry(group).or_default().push((name, *count));
        }
        let mut groups: Vec<_> = groups.into_iter().collect();
        groups.sort_by_key(|(group, names)| {
            (
                std::cmp::Reverse(names.iter().map(|n| n.1).sum::<usize>()),
                *group,
            )
        });
        for (group, mut names) in groups {
            names.sort_by_key(|&(name, count)| (std::cmp::Reverse(count), name));
            let sum: usize = names.iter().map(|n| n.1).sum();
            println!("{group} ({sum})");
            for (name, count) in names {
                println!("    {count:5}  {name}");
            }
        }
        let mut top: Vec<_> = counts.iter().collect();
        top.sort_by_key(|&((_, name), count)| (std::cmp::Reverse(*count), name.clone()));
        println!("top 40:");
        for ((_, name), count) in top.into_iter().take(40) {
            println!("    {count:5}  {name}");
        }
    }
}
