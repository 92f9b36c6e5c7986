//! What a module runs when it is imported.
//!
//! Importing a module executes its top level. Imports, function and class
//! definitions, docstrings and assignments of constants only bind names
//! (decorators and default values aside, which are part of defining); any
//! other module-level statement runs code at import time — which, for a
//! package's interned source, happens as soon as a pickle that needs the
//! module is loaded. [`import_time_code`] lists those statements.

use ruff_python_ast::{Expr, Stmt};
use ruff_text_size::Ranged;

use crate::scan::{PythonVersion, ScanError, parse_module_checked, with_parse_stack};
use crate::visit::compound_bodies;

/// A module-level statement that runs code when the module is imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportTimeCode {
    /// 1-based line.
    pub line: usize,
    /// What kind of statement (`call`, `assignment`, `if`, `for`, ...).
    pub kind: StatementKind,
    /// The statement's first line, shortened.
    pub text: String,
}

/// What kind of statement an [`ImportTimeCode`] is; its `Display` is the
/// word used in messages (`call`, `assignment`, `control flow`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StatementKind {
    /// An expression statement (`call`).
    Call,
    /// `=`, `+=` or an annotated assignment of a non-constant (`assignment`).
    Assignment,
    /// `if`.
    If,
    /// `for`.
    For,
    /// `while`.
    While,
    /// `with`.
    With,
    /// `match`.
    Match,
    /// `raise`.
    Raise,
    /// `assert`.
    Assert,
    /// `del`.
    Del,
    /// `return`, `break` or `continue` (`control flow`).
    ControlFlow,
    /// An IPython `!` or `%` escape (`shell escape`).
    ShellEscape,
}

impl StatementKind {
    /// The word for messages: `call`, `assignment`, `if`, ...,
    /// `control flow`, `shell escape`.
    pub fn as_str(self) -> &'static str {
        match self {
            StatementKind::Call => "call",
            StatementKind::Assignment => "assignment",
            StatementKind::If => "if",
            StatementKind::For => "for",
            StatementKind::While => "while",
            StatementKind::With => "with",
            StatementKind::Match => "match",
            StatementKind::Raise => "raise",
            StatementKind::Assert => "assert",
            StatementKind::Del => "del",
            StatementKind::ControlFlow => "control flow",
            StatementKind::ShellEscape => "shell escape",
        }
    }
}

impl std::fmt::Display for StatementKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The module-level statements of `source` that run code at import time.
///
/// ```
/// let source = "\"\"\"doc\"\"\"\nimport os\nX = 1\nos.system('id')\ndef f():\n    pass\n";
/// let code = tpkg_pysource::import_time_code(source).unwrap();
/// assert_eq!(code.len(), 1);
/// assert_eq!((code[0].line, code[0].kind.as_str()), (4, "call"));
/// ```
pub fn import_time_code(source: &str) -> Result<Vec<ImportTimeCode>, ScanError> {
    with_parse_stack(source, || {
        let module = parse_module_checked(source, PythonVersion::LATEST)?;
        let mut out = Vec::new();
        collect(source, &module.syntax().body, &mut out);
        Ok(out)
    })
}

fn collect(source: &str, body: &[Stmt], out: &mut Vec<ImportTimeCode>) {
    for stmt in body {
        let kind = match stmt {
            Stmt::Import(_)
            | Stmt::ImportFrom(_)
            | Stmt::FunctionDef(_)
            | Stmt::ClassDef(_)
            | Stmt::Pass(_)
            | Stmt::TypeAlias(_) => continue,
            Stmt::Expr(expr) if is_constant(&expr.value) => continue,
            Stmt::Assign(assign) if is_constant(&assign.value) => continue,
            Stmt::AnnAssign(assign) if assign.value.as_deref().is_none_or(is_constant) => {
                continue;
            }
            // `if __name__ == "__main__":` never runs in a package (the
            // module's name is mangled); `try:` around imports is how
            // optional dependencies are found — look inside both.
            Stmt::If(if_) if is_main_guard(&if_.test) => continue,
            Stmt::Try(_) => {
                for body in compound_bodies(stmt) {
                    collect(source, body, out);
                }
                continue;
            }
            Stmt::Expr(_) => StatementKind::Call,
            Stmt::Assign(_) | Stmt::AugAssign(_) | Stmt::AnnAssign(_) => StatementKind::Assignment,
            Stmt::If(_) => StatementKind::If,
            Stmt::For(_) => StatementKind::For,
            Stmt::While(_) => StatementKind::While,
            Stmt::With(_) => StatementKind::With,
            Stmt::Match(_) => StatementKind::Match,
            Stmt::Raise(_) => StatementKind::Raise,
            Stmt::Assert(_) => StatementKind::Assert,
            Stmt::Delete(_) => StatementKind::Del,
            Stmt::Global(_) | Stmt::Nonlocal(_) => continue,
            Stmt::Return(_) | Stmt::Break(_) | Stmt::Continue(_) => StatementKind::ControlFlow,
            Stmt::IpyEscapeCommand(_) => StatementKind::ShellEscape,
        };
        let start = usize::from(stmt.start()).min(source.len());
        let before = source.get(..start).unwrap_or_default();
        let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
        let text: String = source
            .get(start..)
            .unwrap_or_default()
            .lines()
            .next()
            .unwrap_or_default()
            .chars()
            .take(80)
            .collect();
        out.push(ImportTimeCode { line, kind, text });
    }
}

/// Literals and displays of literals (`1`, `"a"`, `(1, "b")`, `{"k": [2]}`,
/// `-1`, `None`, `...`).
fn is_constant(expr: &Expr) -> bool {
    match expr {
        Expr::StringLiteral(_)
        | Expr::BytesLiteral(_)
        | Expr::NumberLiteral(_)
        | Expr::BooleanLiteral(_)
        | Expr::NoneLiteral(_)
        | Expr::EllipsisLiteral(_) => true,
        Expr::UnaryOp(op) => is_constant(&op.operand),
        Expr::Tuple(t) => t.elts.iter().all(is_constant),
        Expr::List(l) => l.elts.iter().all(is_constant),
        Expr::Set(s) => s.elts.iter().all(is_constant),
        Expr::Dict(d) => d
            .items
            .iter()
            .all(|item| item.key.as_ref().is_some_and(is_constant) && is_constant(&item.value)),
        _ => false,
    }
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
    is_name && is_main
}
