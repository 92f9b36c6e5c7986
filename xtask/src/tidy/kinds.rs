//! Categories are types: a public field saying what kind of thing
//! something is (`kind`, `category`, `level`, `severity`, `rule`, `action`)
//! is an enum, not a `&'static str`, so callers match on it exhaustively
//! and a typo is a compile error. Serialised names come from serde renames.

use std::path::{Path, PathBuf};

use anyhow::Context;
use syn::visit::Visit;

use super::Violation;

const CATEGORY_FIELDS: &[&str] = &["kind", "category", "level", "severity", "rule", "action"];

pub fn check(root: &Path, files: &[PathBuf]) -> anyhow::Result<Vec<Violation>> {
    let mut violations = Vec::new();
    let library_sources = files.iter().filter(|p| {
        p.starts_with("crates")
            && p.components().any(|c| c.as_os_str() == "src")
            && p.extension().is_some_and(|e| e == "rs")
    });
    for path in library_sources {
        let text = std::fs::read_to_string(root.join(path))
            .with_context(|| format!("reading {}", path.display()))?;
        let file = syn::parse_file(&text).with_context(|| format!("parsing {}", path.display()))?;
        let mut finder = StringKinds::default();
        finder.visit_file(&file);
        for (owner, field, line) in finder.found {
            violations.push(Violation::new(
                format!("{}:{line}", path.display()),
                format!("pub {owner}.{field} is a &'static str category: make it an enum"),
            ));
        }
    }
    Ok(violations)
}

#[derive(Default)]
struct StringKinds {
    found: Vec<(String, String, usize)>,
}

impl StringKinds {
    fn fields(&mut self, owner: &str, fields: &syn::Fields, public_owner: bool) {
        for field in fields {
            let Some(ident) = &field.ident else { continue };
            let name = ident.to_string();
            let public = public_owner || matches!(field.vis, syn::Visibility::Public(_));
            let category = CATEGORY_FIELDS.contains(&name.as_str()) || name.ends_with("_kind");
            if public && category && is_static_str(&field.ty) {
                self.found
                    .push((owner.to_owned(), name, ident.span().start().line));
            }
        }
    }
}

fn is_static_str(ty: &syn::Type) -> bool {
    let syn::Type::Reference(reference) = ty else {
        return false;
    };
    let is_str = matches!(&*reference.elem, syn::Type::Path(p) if p.path.is_ident("str"));
    is_str
        && reference
            .lifetime
            .as_ref()
            .is_some_and(|l| l.ident == "static")
}

impl<'ast> Visit<'ast> for StringKinds {
    fn visit_item_struct(&mut self, item: &'ast syn::ItemStruct) {
        if matches!(item.vis, syn::Visibility::Public(_)) {
            // A struct's fields are public API only when they are `pub`.
            let fields_public = false;
            self.fields(&item.ident.to_string(), &item.fields, fields_public);
        }
    }

    fn visit_item_enum(&mut self, item: &'ast syn::ItemEnum) {
        if matches!(item.vis, syn::Visibility::Public(_)) {
            for variant in &item.variants {
                let owner = format!("{}::{}", item.ident, variant.ident);
                // Every field of a public enum's variant is public.
                self.fields(&owner, &variant.fields, true);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_string_kinds_in_public_types_only() {
        let file = syn::parse_file(
            "pub struct A { pub kind: &'static str, pub name: &'static str }\n\
             struct B { pub kind: &'static str }\n\
             pub enum C { V { level: &'static str } }\n\
             pub struct D { kind: &'static str, pub kind2: Kind }\n",
        )
        .expect("parses");
        let mut finder = StringKinds::default();
        finder.visit_file(&file);
        let found: Vec<_> = finder
            .found
            .iter()
            .map(|(o, f, _)| format!("{o}.{f}"))
            .collect();
        assert_eq!(found, vec!["A.kind", "C::V.level"]);
    }
}
