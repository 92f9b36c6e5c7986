//! The statements the call walker visits, in evaluation order, binding
//! names as the interpreter does.

use std::collections::HashMap;

use ruff_python_ast::{self as ast, Expr, Stmt};
use ruff_text_size::Ranged;

use super::Construct;
use super::walker::{Binding, Ref, Scope, Walker, all_parameters, defaults, is_main_guard};
use crate::visit::{Visit, stmt_children};

impl Walker<'_> {
    pub(super) fn body(&mut self, body: &[Stmt], construct: Construct) {
        for stmt in body {
            self.stmt(stmt, construct);
        }
    }

    fn stmt(&mut self, stmt: &Stmt, construct: Construct) {
        match stmt {
            Stmt::Import(import) => self.import(import),
            Stmt::ImportFrom(import) => self.import_from(import),
            Stmt::FunctionDef(function) => self.function_def(function),
            Stmt::ClassDef(class) => self.class_def(class),
            Stmt::Delete(delete) => {
                for target in &delete.targets {
                    self.expr(target, construct);
                    self.bind_target(target);
                }
            }
            // Type aliases are evaluated lazily.
            Stmt::TypeAlias(_) => {}
            Stmt::Assign(_) | Stmt::AugAssign(_) | Stmt::AnnAssign(_) => {
                self.assignment(stmt, construct);
            }
            Stmt::For(for_) => {
                self.expr(&for_.iter, construct);
                self.expr(&for_.target, construct);
                self.bind_target(&for_.target);
                self.body(&for_.body, construct);
                self.body(&for_.orelse, construct);
            }
            Stmt::If(if_) => self.if_(if_, construct),
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
            Stmt::Try(try_) => self.try_(try_, construct),
            // No bindings: the children in CPython's order, which is
            // evaluation order for these.
            Stmt::Return(_)
            | Stmt::While(_)
            | Stmt::Match(_)
            | Stmt::Raise(_)
            | Stmt::Assert(_)
            | Stmt::Expr(_)
            | Stmt::Global(_)
            | Stmt::Nonlocal(_)
            | Stmt::Pass(_)
            | Stmt::Break(_)
            | Stmt::Continue(_)
            | Stmt::IpyEscapeCommand(_) => {
                let mut children = Vec::new();
                stmt_children(stmt, &mut children);
                for child in children {
                    match child {
                        Visit::Expr(expr) => self.expr(expr, construct),
                        Visit::Stmt(stmt) => self.stmt(stmt, construct),
                    }
                }
            }
        }
    }

    fn import(&mut self, import: &ast::StmtImport) {
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

    fn import_from(&mut self, import: &ast::StmtImportFrom) {
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

    fn function_def(&mut self, function: &ast::StmtFunctionDef) {
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

    fn class_def(&mut self, class: &ast::StmtClassDef) {
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

    /// `=`, `+=` and annotated assignments.
    fn assignment(&mut self, stmt: &Stmt, construct: Construct) {
        match stmt {
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
            _ => {}
        }
    }

    fn if_(&mut self, if_: &ast::StmtIf, construct: Construct) {
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

    fn try_(&mut self, try_: &ast::StmtTry, construct: Construct) {
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

    /// Inside a function body (not a class body inside one).
    fn in_function_scope(&self) -> bool {
        self.in_function && self.scopes.last().is_some_and(|s| !s.is_class)
    }

    /// A function's body in a new scope where its parameters hide outer
    /// names.
    pub(super) fn function_body(&mut self, function: &ast::StmtFunctionDef) {
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
}
