//! The import scanner: PyTorch's `find_file_dependencies`, over a
//! tree-sitter syntax tree instead of Python's `ast`.

use std::collections::HashSet;

use tree_sitter::{Node, Parser};

use crate::literal::{int_literal, string_literal};

/// One module reference: `(module, attribute)` as PyTorch's scanner yields
/// it — `import a.b` gives `("a.b", None)`, `from a import b` gives
/// `("a", Some("b"))`.
pub type Reference = (String, Option<String>);

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
    /// The source does not parse.
    #[error("invalid syntax at line {line}, column {column}")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// A `from ... import` goes above the top-level package.
    #[error("attempted relative import beyond top-level package (line {line})")]
    BeyondTopLevel {
        /// 1-based line.
        line: usize,
    },
    /// The parser could not be set up.
    #[error("the Python grammar could not be loaded: {0}")]
    Grammar(String),
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
/// top-level module, PyTorch's quirk, the module itself).
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
    let mut parser = Parser::new();
    parser
        .set_language(&tree_sitter_python::LANGUAGE.into())
        .map_err(|e| ScanError::Grammar(e.to_string()))?;
    let tree = parser
        .parse(source, None)
        .ok_or_else(|| ScanError::Grammar("the parser gave up".to_owned()))?;
    let root = tree.root_node();
    if root.has_error() {
        let (line, column) = first_error(root);
        return Err(ScanError::Syntax { line, column });
    }
    let mut scanner = Scanner {
        source: source.as_bytes(),
        package,
        imports: Imports::default(),
        seen: HashSet::new(),
    };
    scanner.walk(root)?;
    Ok(scanner.imports)
}

fn first_error(root: Node<'_>) -> (usize, usize) {
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        if node.is_error() || node.is_missing() {
            let position = node.start_position();
            return (position.row + 1, position.column + 1);
        }
        let mut cursor = node.walk();
        let children: Vec<Node<'_>> = node.children(&mut cursor).collect();
        stack.extend(children.into_iter().rev());
    }
    let position = root.start_position();
    (position.row + 1, position.column + 1)
}

struct Scanner<'s> {
    source: &'s [u8],
    package: &'s str,
    imports: Imports,
    seen: HashSet<Reference>,
}

/// A call's positional arguments and `name=value` keyword arguments.
struct CallArguments<'t> {
    positional: Vec<Node<'t>>,
    keywords: Vec<(String, Node<'t>)>,
}

/// A node to visit, and whether it sits inside a call's subtree (where
/// PyTorch's visitor, which does not recurse into calls, sees nothing).
type Visit<'t> = (Node<'t>, bool);

impl<'s> Scanner<'s> {
    fn text(&self, node: Node<'_>) -> &'s str {
        node.utf8_text(self.source).unwrap_or_default()
    }

    fn add(&mut self, module: String, attribute: Option<String>) {
        let reference = (module, attribute);
        if self.seen.insert(reference.clone()) {
            self.imports.references.push(reference);
        }
    }

    /// `a . b` is valid Python: join the identifiers, not the text.
    fn dotted(&self, node: Node<'_>) -> String {
        let mut cursor = node.walk();
        let parts: Vec<&str> = node
            .named_children(&mut cursor)
            .filter(|child| child.kind() == "identifier")
            .map(|child| self.text(child))
            .collect();
        if parts.is_empty() {
            self.text(node).to_owned()
        } else {
            parts.join(".")
        }
    }

    fn line(node: Node<'_>) -> usize {
        node.start_position().row + 1
    }

    /// Depth first, in the order Python's `ast.NodeVisitor` visits: a
    /// decorated definition's body before its decorators, a function's
    /// parameters and body before its return annotation.
    fn walk(&mut self, root: Node<'_>) -> Result<(), ScanError> {
        let mut stack: Vec<Visit<'_>> = vec![(root, false)];
        while let Some((node, in_call)) = stack.pop() {
            match node.kind() {
                "import_statement" if !in_call => {
                    let mut cursor = node.walk();
                    for name in node.children_by_field_name("name", &mut cursor) {
                        let dotted = match name.kind() {
                            "aliased_import" => name
                                .child_by_field_name("name")
                                .map(|n| self.dotted(n))
                                .unwrap_or_default(),
                            _ => self.dotted(name),
                        };
                        self.add(dotted, None);
                    }
                    continue;
                }
                "import_from_statement" | "future_import_statement" if !in_call => {
                    self.import_from(node)?;
                    continue;
                }
                "call" => {
                    if !in_call {
                        self.dunder_import(node);
                    }
                    self.dynamic_import(node);
                    // PyTorch's visit_Call does not recurse: nothing inside a
                    // call is seen (dynamic imports still are, separately).
                    push_children(&mut stack, node, true);
                    continue;
                }
                "decorated_definition" => {
                    let mut cursor = node.walk();
                    let decorators: Vec<Node<'_>> = node
                        .named_children(&mut cursor)
                        .filter(|c| c.kind() == "decorator")
                        .collect();
                    // Visited last: pushed first.
                    for decorator in decorators.into_iter().rev() {
                        stack.push((decorator, in_call));
                    }
                    if let Some(definition) = node.child_by_field_name("definition") {
                        stack.push((definition, in_call));
                    }
                    continue;
                }
                _ => {}
            }
            push_children(&mut stack, node, in_call);
        }
        Ok(())
    }

    fn import_from(&mut self, node: Node<'_>) -> Result<(), ScanError> {
        let module = if node.kind() == "future_import_statement" {
            "__future__".to_owned()
        } else {
            match node.child_by_field_name("module_name") {
                Some(name) if name.kind() == "relative_import" => {
                    let mut cursor = name.walk();
                    let mut level = 0;
                    let mut module = None;
                    for child in name.children(&mut cursor) {
                        match child.kind() {
                            "import_prefix" => level += self.text(child).matches('.').count(),
                            "dotted_name" => module = Some(self.dotted(child)),
                            _ => {}
                        }
                    }
                    resolve_relative(module.as_deref(), self.package, level).ok_or(
                        ScanError::BeyondTopLevel {
                            line: Self::line(node),
                        },
                    )?
                }
                Some(name) => self.dotted(name),
                None => String::new(),
            }
        };
        let mut cursor = node.walk();
        let names: Vec<Node<'_>> = node.children_by_field_name("name", &mut cursor).collect();
        let mut wildcard_cursor = node.walk();
        let wildcard = node
            .children(&mut wildcard_cursor)
            .any(|child| child.kind() == "wildcard_import");
        if wildcard {
            self.add(module.clone(), None);
        }
        for name in names {
            let imported = match name.kind() {
                "aliased_import" => name
                    .child_by_field_name("name")
                    .map(|n| self.dotted(n))
                    .unwrap_or_default(),
                _ => self.dotted(name),
            };
            self.add(module.clone(), Some(imported));
        }
        Ok(())
    }

    /// Positional argument nodes and keyword arguments of a call.
    fn arguments<'t>(&self, call: Node<'t>) -> Option<CallArguments<'t>> {
        let arguments = call.child_by_field_name("arguments")?;
        if arguments.kind() != "argument_list" {
            return None;
        }
        let mut positional = Vec::new();
        let mut keywords = Vec::new();
        let mut cursor = arguments.walk();
        for argument in arguments.named_children(&mut cursor) {
            match argument.kind() {
                "keyword_argument" => {
                    let name = argument.child_by_field_name("name").map(|n| self.text(n))?;
                    let value = argument.child_by_field_name("value")?;
                    keywords.push((name.to_owned(), value));
                }
                "comment" => {}
                _ => positional.push(argument),
            }
        }
        Some(CallArguments {
            positional,
            keywords,
        })
    }

    fn string_list(&self, node: Node<'_>) -> Option<Vec<String>> {
        let node = unparenthesize(node);
        if !matches!(node.kind(), "list" | "tuple") {
            return None;
        }
        let mut cursor = node.walk();
        node.named_children(&mut cursor)
            .filter(|c| c.kind() != "comment")
            .map(|element| string_literal(unparenthesize(element), self.source))
            .collect()
    }

    /// `__import__("name", globals, locals, fromlist, level)` with literal
    /// arguments, exactly as PyTorch's `visit_Call` reads it.
    fn dunder_import(&mut self, call: Node<'_>) {
        let Some(function) = call.child_by_field_name("function") else {
            return;
        };
        if function.kind() != "identifier" || self.text(function) != "__import__" {
            return;
        }
        let Some(CallArguments {
            positional,
            keywords,
        }) = self.arguments(call)
        else {
            return;
        };
        let Some(name) = positional
            .first()
            .and_then(|n| string_literal(unparenthesize(*n), self.source))
        else {
            return;
        };
        let mut fromlist = Vec::new();
        if let Some(node) = positional.get(3) {
            match self.string_list(*node) {
                Some(items) => fromlist = items,
                None => return,
            }
        } else {
            for (keyword, value) in &keywords {
                if keyword == "fromlist" {
                    match self.string_list(*value) {
                        Some(items) => fromlist.extend(items),
                        None => return,
                    }
                }
            }
        }
        let mut level = 0;
        if let Some(node) = positional.get(4) {
            match int_literal(unparenthesize(*node), self.source) {
                Some(value) => level = value,
                None => return,
            }
        } else {
            for (keyword, value) in &keywords {
                if keyword == "level" {
                    match int_literal(unparenthesize(*value), self.source) {
                        Some(value) => level = value,
                        None => return,
                    }
                }
            }
        }
        let absolute = |name: &str| -> Option<String> {
            if level > 0 {
                resolve_relative(Some(name), self.package, level as usize)
            } else {
                Some(name.to_owned())
            }
        };
        if fromlist.is_empty() {
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

    /// `importlib.import_module(...)` / `import_module(...)`.
    fn dynamic_import(&mut self, call: Node<'_>) {
        let Some(function) = call.child_by_field_name("function") else {
            return;
        };
        let is_import_module = match function.kind() {
            "identifier" => self.text(function) == "import_module",
            "attribute" => function
                .child_by_field_name("attribute")
                .is_some_and(|a| self.text(a) == "import_module"),
            _ => false,
        };
        if !is_import_module {
            return;
        }
        let module = self
            .arguments(call)
            .and_then(|arguments| arguments.positional.first().copied())
            .and_then(|n| string_literal(unparenthesize(n), self.source));
        self.imports.dynamic.push(DynamicImport {
            module,
            line: Self::line(call),
        });
    }
}

fn unparenthesize(mut node: Node<'_>) -> Node<'_> {
    while node.kind() == "parenthesized_expression" {
        match node.named_child(0) {
            Some(inner) => node = inner,
            None => break,
        }
    }
    node
}

/// Pushes children so they pop in source order, except a function's return
/// annotation and type parameters, which Python's `ast` visits after the
/// body.
fn push_children<'t>(stack: &mut Vec<Visit<'t>>, node: Node<'t>, in_call: bool) {
    let mut cursor = node.walk();
    let mut children: Vec<Node<'t>> = node.named_children(&mut cursor).collect();
    if node.kind() == "function_definition" {
        let late: Vec<Node<'t>> = ["return_type", "type_parameters"]
            .iter()
            .filter_map(|field| node.child_by_field_name(field))
            .collect();
        children.retain(|c| !late.iter().any(|l| l.id() == c.id()));
        children.extend(late);
    }
    for child in children.into_iter().rev() {
        stack.push((child, in_call));
    }
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
        assert!(refs("__import__(name)", "p").is_empty());
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
    fn dynamic_imports_are_reported_separately() {
        let imports = scan_imports(
            "import importlib\nm = importlib.import_module('plugins.x')\n",
            "p",
        )
        .unwrap();
        assert_eq!(imports.references, [r("importlib", None)]);
        assert_eq!(
            imports.dynamic,
            [DynamicImport {
                module: Some("plugins.x".into()),
                line: 2
            }]
        );
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let error = scan_imports("def f(:\n    pass\n", "p").unwrap_err();
        assert!(
            matches!(error, ScanError::Syntax { line: 1, .. }),
            "{error}"
        );
    }
}
