//! The call walker's state and what it knows: the scopes' bindings, how a
//! callee expression resolves through them, and the walk over expressions
//! that records every call.

use std::collections::HashMap;

use ruff_python_ast::{self as ast, Expr, Stmt};
use ruff_text_size::{Ranged, TextRange};

use super::builtins::is_builtin;
use super::{Call, Callee, Construct, MAX_RESOLVE_DEPTH, MAX_TEXT_CHARS};
use crate::visit::{Visit, expr_children, int_literal, string_literal};

/// What an expression refers to, as far as the walker can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Ref {
    Module(String),
    Builtin(String),
    Local(String),
    Introspection,
}

#[derive(Debug, Clone)]
pub(super) enum Binding {
    Ref(Ref),
    /// Bound to something the walker does not follow.
    Other,
}

pub(super) struct Scope {
    pub(super) names: HashMap<String, Binding>,
    /// A class body's names are seen only from the body itself.
    pub(super) is_class: bool,
}

pub(super) struct Walker<'s> {
    pub(super) source: &'s str,
    /// Byte offset of each line's start.
    pub(super) line_starts: Vec<usize>,
    /// `from __future__ import annotations`: annotations are not evaluated.
    pub(super) lazy_annotations: bool,
    /// Walking a function's body: nested function and lambda bodies count,
    /// annotated assignments' annotations do not.
    pub(super) in_function: bool,
    pub(super) scopes: Vec<Scope>,
    /// Enclosing class names, for `Local` qualified names.
    pub(super) classes: Vec<String>,
    /// `from m import *` ran: an unbound name may be anything.
    pub(super) star_import: bool,
    /// Depth of `except` handlers being walked.
    pub(super) handler_depth: usize,
    pub(super) calls: Vec<(usize, Call)>,
    /// [`Walker::spine_has_dunder`]'s answers, by node address.
    pub(super) dunder_spines: HashMap<usize, bool>,
}

impl<'s> Walker<'s> {
    pub(super) fn new(source: &'s str, body: &[Stmt]) -> Self {
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

    pub(super) fn finish(mut self) -> Vec<Call> {
        self.calls.sort_by_key(|(offset, _)| *offset);
        self.calls.into_iter().map(|(_, call)| call).collect()
    }

    pub(super) fn line(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&start| start <= offset)
    }

    pub(super) fn text(&self, range: TextRange) -> String {
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

    pub(super) fn record(&mut self, range: TextRange, func: &Expr, construct: Construct) {
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

    pub(super) fn lookup(&self, name: &str) -> Option<&Binding> {
        let innermost = self.scopes.len() - 1;
        self.scopes
            .iter()
            .enumerate()
            .rev()
            .filter(|(i, scope)| !scope.is_class || *i == innermost)
            .find_map(|(_, scope)| scope.names.get(name))
    }

    pub(super) fn bind(&mut self, name: &str, binding: Binding) {
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
    pub(super) fn bind_target(&mut self, target: &Expr) {
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
    pub(super) fn bind_assignment(&mut self, targets: &[Expr], value: Option<&Expr>) {
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

    pub(super) fn local_name(&self, name: &str) -> String {
        let mut qualified = self.classes.join(".");
        if !qualified.is_empty() {
            qualified.push('.');
        }
        qualified.push_str(name);
        qualified
    }

    // ---- resolution ----

    pub(super) fn resolve_name(&self, name: &str) -> Option<Ref> {
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

    pub(super) fn resolve(&self, expr: &Expr, depth: usize) -> Option<Ref> {
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
    pub(super) fn resolve_call_result(&self, call: &ast::ExprCall, depth: usize) -> Option<Ref> {
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
    pub(super) fn spine_has_dunder(&mut self, expr: &Expr) -> bool {
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

    // ---- expressions ----

    /// Every call in `root`, with an explicit stack (no recursion).
    pub(super) fn expr(&mut self, root: &Expr, construct: Construct) {
        let mut stack: Vec<(&Expr, Construct)> = vec![(root, construct)];
        let mut children: Vec<Visit<'_>> = Vec::new();
        while let Some((expr, construct)) = stack.pop() {
            let inner = match expr {
                Expr::Call(call) => {
                    self.record(call.range(), &call.func, construct);
                    construct
                }
                Expr::Lambda(lambda) => {
                    if let Some(parameters) = &lambda.parameters {
                        stack.extend(defaults(parameters).map(|d| (d, Construct::DefaultArgument)));
                    }
                    if self.in_function {
                        stack.push((&lambda.body, construct));
                    }
                    continue;
                }
                Expr::ListComp(_) | Expr::SetComp(_) | Expr::Generator(_) | Expr::DictComp(_) => {
                    Construct::Comprehension
                }
                _ => construct,
            };
            expr_children(expr, &mut children);
            stack.extend(children.drain(..).filter_map(|visit| match visit {
                Visit::Expr(child) => Some((child, inner)),
                Visit::Stmt(_) => None,
            }));
        }
    }
}

pub(super) fn defaults(parameters: &ast::Parameters) -> impl Iterator<Item = &Expr> {
    parameters
        .posonlyargs
        .iter()
        .chain(&parameters.args)
        .chain(&parameters.kwonlyargs)
        .filter_map(|p| p.default.as_deref())
}

pub(super) fn all_parameters(
    parameters: &ast::Parameters,
) -> impl Iterator<Item = &ast::Parameter> {
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

pub(super) fn is_main_guard(test: &Expr) -> bool {
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
