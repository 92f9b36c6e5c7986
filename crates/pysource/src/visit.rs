//! The syntax-tree walk both scanners share: each node's children in
//! CPython's `_fields` order ([`stmt_children`], [`expr_children`]), for
//! walks with an explicit stack, and the literal operands both read.
//!
//! The import scanner ([`crate::scan`]) walks statements and expressions
//! with these; the call walker ([`crate::calls`]) walks expressions with
//! them and the statements without bindings, and walks statements that bind
//! names itself (in evaluation order, which is what resolution needs).

use ruff_python_ast::{self as ast, Expr, InterpolatedStringElement, Parameters, Stmt, TypeParam};

/// A node waiting on the walker's stack.
#[derive(Clone, Copy)]
pub(crate) enum Visit<'a> {
    Stmt(&'a Stmt),
    Expr(&'a Expr),
}

/// A `str` constant (implicit concatenation included); bytes, f-strings and
/// expressions are not names PyTorch's scanner can use.
pub(crate) fn string_literal(expr: &Expr) -> Option<String> {
    match expr {
        Expr::StringLiteral(literal) => Some(literal.value.to_str().to_owned()),
        _ => None,
    }
}

/// A non-negative `int` constant (a negative one is an operator applied to
/// a constant, which PyTorch's `_grab_node_int` cannot read either).
pub(crate) fn int_literal(expr: &Expr) -> Option<usize> {
    match expr {
        Expr::NumberLiteral(ast::ExprNumberLiteral {
            value: ast::Number::Int(value),
            ..
        }) => value.as_i64().and_then(|v| usize::try_from(v).ok()),
        _ => None,
    }
}

/// Every call in `call`'s subtree, `call` first, depth first with an
/// explicit stack (the calls inside a call's arguments and callee too).
pub(crate) fn each_call<'a>(call: &'a ast::ExprCall, mut visit: impl FnMut(&'a ast::ExprCall)) {
    visit(call);
    let mut stack = Vec::new();
    let mut children = Vec::new();
    push_call_children(&mut stack, call);
    while let Some(node) = stack.pop() {
        match node {
            Visit::Expr(Expr::Call(inner)) => {
                visit(inner);
                push_call_children(&mut stack, inner);
            }
            Visit::Expr(expr) => expr_children(expr, &mut children),
            Visit::Stmt(stmt) => stmt_children(stmt, &mut children),
        }
        stack.append(&mut children);
    }
}

/// A call's children: its callee, then its arguments and keyword values.
fn push_call_children<'a>(out: &mut Vec<Visit<'a>>, call: &'a ast::ExprCall) {
    expr(out, &call.func);
    call_arguments(out, &call.arguments);
}

pub(crate) fn push_stmts<'a>(out: &mut Vec<Visit<'a>>, body: &'a [Stmt]) {
    out.extend(body.iter().rev().map(Visit::Stmt));
}

fn expr<'a>(out: &mut Vec<Visit<'a>>, expr: &'a Expr) {
    out.push(Visit::Expr(expr));
}

fn exprs<'a>(out: &mut Vec<Visit<'a>>, items: &'a [Expr]) {
    out.extend(items.iter().map(Visit::Expr));
}

fn optional<'a>(out: &mut Vec<Visit<'a>>, item: Option<&'a Expr>) {
    if let Some(item) = item {
        out.push(Visit::Expr(item));
    }
}

fn body<'a>(out: &mut Vec<Visit<'a>>, body: &'a [Stmt]) {
    out.extend(body.iter().map(Visit::Stmt));
}

/// `arguments` in CPython's field order: annotations of positional-only,
/// positional, `*args` and keyword-only parameters, keyword-only defaults,
/// the `**kwargs` annotation, then positional defaults.
fn parameters<'a>(out: &mut Vec<Visit<'a>>, parameters: &'a Parameters) {
    for parameter in parameters.posonlyargs.iter().chain(&parameters.args) {
        optional(out, parameter.parameter.annotation.as_deref());
    }
    if let Some(vararg) = &parameters.vararg {
        optional(out, vararg.annotation.as_deref());
    }
    for parameter in &parameters.kwonlyargs {
        optional(out, parameter.parameter.annotation.as_deref());
    }
    for parameter in &parameters.kwonlyargs {
        optional(out, parameter.default.as_deref());
    }
    if let Some(kwarg) = &parameters.kwarg {
        optional(out, kwarg.annotation.as_deref());
    }
    for parameter in parameters.posonlyargs.iter().chain(&parameters.args) {
        optional(out, parameter.default.as_deref());
    }
}

fn type_params<'a>(out: &mut Vec<Visit<'a>>, params: Option<&'a ast::TypeParams>) {
    for param in params.into_iter().flat_map(|p| p.iter()) {
        match param {
            TypeParam::TypeVar(var) => {
                optional(out, var.bound.as_deref());
                optional(out, var.default.as_deref());
            }
            TypeParam::TypeVarTuple(var) => optional(out, var.default.as_deref()),
            TypeParam::ParamSpec(spec) => optional(out, spec.default.as_deref()),
        }
    }
}

fn call_arguments<'a>(out: &mut Vec<Visit<'a>>, arguments: &'a ast::Arguments) {
    exprs(out, &arguments.args);
    out.extend(arguments.keywords.iter().map(|k| Visit::Expr(&k.value)));
}

fn comprehensions<'a>(out: &mut Vec<Visit<'a>>, generators: &'a [ast::Comprehension]) {
    for generator in generators {
        expr(out, &generator.target);
        expr(out, &generator.iter);
        exprs(out, &generator.ifs);
    }
}

fn interpolations<'a>(out: &mut Vec<Visit<'a>>, elements: &'a [InterpolatedStringElement]) {
    // A format spec is itself a list of elements; flatten it in order.
    let mut pending: Vec<&'a [InterpolatedStringElement]> = vec![elements];
    while let Some(elements) = pending.pop() {
        for (index, element) in elements.iter().enumerate() {
            if let InterpolatedStringElement::Interpolation(interpolation) = element {
                expr(out, &interpolation.expression);
                if let Some(spec) = &interpolation.format_spec {
                    // Visit the spec, then the rest of this list.
                    pending.push(&elements[index + 1..]);
                    pending.push(&spec.elements);
                    break;
                }
            }
        }
    }
}

/// The statement lists nested in a compound statement (`if`, `try`, `with`,
/// `for`, `while`, `match`), in source order; none for other statements
/// (function and class bodies are scopes of their own, not nested lists).
pub(crate) fn compound_bodies(stmt: &Stmt) -> Vec<&[Stmt]> {
    match stmt {
        Stmt::If(if_) => std::iter::once(&if_.body[..])
            .chain(if_.elif_else_clauses.iter().map(|c| &c.body[..]))
            .collect(),
        Stmt::Try(try_) => std::iter::once(&try_.body[..])
            .chain(try_.handlers.iter().map(|h| {
                let ast::ExceptHandler::ExceptHandler(h) = h;
                &h.body[..]
            }))
            .chain([&try_.orelse[..], &try_.finalbody[..]])
            .collect(),
        Stmt::With(with) => vec![&with.body[..]],
        Stmt::For(for_) => vec![&for_.body[..], &for_.orelse[..]],
        Stmt::While(while_) => vec![&while_.body[..], &while_.orelse[..]],
        Stmt::Match(match_) => match_.cases.iter().map(|c| &c.body[..]).collect(),
        _ => Vec::new(),
    }
}

/// A statement's child nodes in CPython's `_fields` order.
pub(crate) fn stmt_children<'a>(stmt: &'a Stmt, out: &mut Vec<Visit<'a>>) {
    match stmt {
        Stmt::FunctionDef(function) => {
            // name, args, body, decorator_list, returns, type_params
            parameters(out, &function.parameters);
            body(out, &function.body);
            out.extend(
                function
                    .decorator_list
                    .iter()
                    .map(|d| Visit::Expr(&d.expression)),
            );
            optional(out, function.returns.as_deref());
            type_params(out, function.type_params.as_deref());
        }
        Stmt::ClassDef(class) => {
            // name, bases, keywords, body, decorator_list, type_params
            if let Some(arguments) = &class.arguments {
                call_arguments(out, arguments);
            }
            body(out, &class.body);
            out.extend(
                class
                    .decorator_list
                    .iter()
                    .map(|d| Visit::Expr(&d.expression)),
            );
            type_params(out, class.type_params.as_deref());
        }
        Stmt::Return(ret) => optional(out, ret.value.as_deref()),
        Stmt::Delete(delete) => exprs(out, &delete.targets),
        Stmt::TypeAlias(alias) => {
            expr(out, &alias.name);
            type_params(out, alias.type_params.as_deref());
            expr(out, &alias.value);
        }
        Stmt::Assign(assign) => {
            exprs(out, &assign.targets);
            expr(out, &assign.value);
        }
        Stmt::AugAssign(assign) => {
            expr(out, &assign.target);
            expr(out, &assign.value);
        }
        Stmt::AnnAssign(assign) => {
            expr(out, &assign.target);
            expr(out, &assign.annotation);
            optional(out, assign.value.as_deref());
        }
        Stmt::For(for_) => {
            expr(out, &for_.target);
            expr(out, &for_.iter);
            body(out, &for_.body);
            body(out, &for_.orelse);
        }
        Stmt::While(while_) => {
            expr(out, &while_.test);
            body(out, &while_.body);
            body(out, &while_.orelse);
        }
        Stmt::If(if_) => {
            // CPython nests `elif` as an `If` in `orelse`: the same order.
            expr(out, &if_.test);
            body(out, &if_.body);
            for clause in &if_.elif_else_clauses {
                optional(out, clause.test.as_ref());
                body(out, &clause.body);
            }
        }
        Stmt::With(with) => {
            for item in &with.items {
                expr(out, &item.context_expr);
                optional(out, item.optional_vars.as_deref());
            }
            body(out, &with.body);
        }
        Stmt::Match(match_) => {
            // Patterns hold only names and constants; guards are expressions.
            expr(out, &match_.subject);
            for case in &match_.cases {
                optional(out, case.guard.as_deref());
                body(out, &case.body);
            }
        }
        Stmt::Raise(raise) => {
            optional(out, raise.exc.as_deref());
            optional(out, raise.cause.as_deref());
        }
        Stmt::Try(try_) => {
            body(out, &try_.body);
            for handler in &try_.handlers {
                let ast::ExceptHandler::ExceptHandler(handler) = handler;
                optional(out, handler.type_.as_deref());
                body(out, &handler.body);
            }
            body(out, &try_.orelse);
            body(out, &try_.finalbody);
        }
        Stmt::Assert(assert) => {
            expr(out, &assert.test);
            optional(out, assert.msg.as_deref());
        }
        Stmt::Expr(statement) => expr(out, &statement.value),
        Stmt::Import(_)
        | Stmt::ImportFrom(_)
        | Stmt::Global(_)
        | Stmt::Nonlocal(_)
        | Stmt::Pass(_)
        | Stmt::Break(_)
        | Stmt::Continue(_)
        | Stmt::IpyEscapeCommand(_) => {}
    }
}

/// An expression's child nodes in CPython's `_fields` order.
pub(crate) fn expr_children<'a>(node: &'a Expr, out: &mut Vec<Visit<'a>>) {
    match node {
        Expr::BoolOp(op) => exprs(out, &op.values),
        Expr::Named(named) => {
            expr(out, &named.target);
            expr(out, &named.value);
        }
        Expr::BinOp(op) => {
            expr(out, &op.left);
            expr(out, &op.right);
        }
        Expr::UnaryOp(op) => expr(out, &op.operand),
        Expr::Lambda(lambda) => {
            if let Some(params) = &lambda.parameters {
                parameters(out, params);
            }
            expr(out, &lambda.body);
        }
        Expr::If(if_) => {
            // test, body, orelse: not source order (`body if test else orelse`).
            expr(out, &if_.test);
            expr(out, &if_.body);
            expr(out, &if_.orelse);
        }
        Expr::Dict(dict) => {
            // keys, then values.
            for item in &dict.items {
                optional(out, item.key.as_ref());
            }
            for item in &dict.items {
                expr(out, &item.value);
            }
        }
        Expr::Set(set) => exprs(out, &set.elts),
        Expr::ListComp(comp) => {
            expr(out, &comp.elt);
            comprehensions(out, &comp.generators);
        }
        Expr::SetComp(comp) => {
            expr(out, &comp.elt);
            comprehensions(out, &comp.generators);
        }
        Expr::Generator(comp) => {
            expr(out, &comp.elt);
            comprehensions(out, &comp.generators);
        }
        Expr::DictComp(comp) => {
            optional(out, comp.key.as_deref());
            expr(out, &comp.value);
            comprehensions(out, &comp.generators);
        }
        Expr::Await(await_) => expr(out, &await_.value),
        Expr::Yield(yield_) => optional(out, yield_.value.as_deref()),
        Expr::YieldFrom(yield_) => expr(out, &yield_.value),
        Expr::Compare(compare) => {
            expr(out, &compare.left);
            exprs(out, &compare.comparators);
        }
        Expr::Call(call) => {
            // The import scanner stops at a call; the call walker goes on.
            expr(out, &call.func);
            call_arguments(out, &call.arguments);
        }
        Expr::FString(fstring) => {
            for part in fstring.value.as_slice() {
                if let ast::FStringPart::FString(fstring) = part {
                    interpolations(out, &fstring.elements);
                }
            }
        }
        Expr::TString(tstring) => {
            for part in tstring.value.as_slice() {
                interpolations(out, &part.elements);
            }
        }
        Expr::Attribute(attribute) => expr(out, &attribute.value),
        Expr::Subscript(subscript) => {
            expr(out, &subscript.value);
            expr(out, &subscript.slice);
        }
        Expr::Starred(starred) => expr(out, &starred.value),
        Expr::List(list) => exprs(out, &list.elts),
        Expr::Tuple(tuple) => exprs(out, &tuple.elts),
        Expr::Slice(slice) => {
            optional(out, slice.lower.as_deref());
            optional(out, slice.upper.as_deref());
            optional(out, slice.step.as_deref());
        }
        Expr::StringLiteral(_)
        | Expr::BytesLiteral(_)
        | Expr::NumberLiteral(_)
        | Expr::BooleanLiteral(_)
        | Expr::NoneLiteral(_)
        | Expr::EllipsisLiteral(_)
        | Expr::Name(_)
        | Expr::IpyEscapeCommand(_) => {}
    }
}
