//! Auditing a package's Python sources and TorchScript code.

use std::collections::{HashMap, HashSet};

use tpkg_pysource::{Call, Callee};

use super::findings::{At, Findings, NewFinding};
use super::{FindingKind, Level};
use crate::files::records::module_of_record;

/// Modules a package's source should not need: importing them is for
/// review (an import is not an execution; what runs is judged by the
/// calls).
const SYSTEM_ACCESS: &[&str] = &[
    "os",
    "sys",
    "io",
    "subprocess",
    "socket",
    "ctypes",
    "pty",
    "runpy",
    "pickle",
    "marshal",
    "importlib",
    "pkgutil",
    "shutil",
    "webbrowser",
    "builtins",
    "multiprocessing",
    "urllib",
    "http",
    "requests",
    "code",
    "codeop",
    "signal",
    "tempfile",
];

/// Modules whose import from the host by a load is itself unsafe: they
/// exist to run processes, native code or other code.
const RUNS_PROCESSES_OR_CODE: &[&str] = &[
    "subprocess",
    "socket",
    "ctypes",
    "pty",
    "runpy",
    "webbrowser",
    "marshal",
    "code",
    "codeop",
];

/// TorchScript calls with effects outside the model: files, processes,
/// other models.
const TORCHSCRIPT_EFFECTS: &[&str] = &[
    "torch.from_file",
    "torch.load",
    "torch.save",
    "torch.jit.load",
    "torch.jit.save",
    "ops.aten.from_file",
    "ops.aten.save",
    "ops.prim.Print",
    "open(",
];

use super::classify::in_modules;

/// The first line of the stub `PackageExporter.mock` writes.
const MOCK_STUB: &str = "from _mock import MockedObject\n";

/// Whether `record` is a mocked module's stub, whose only code is a
/// module `__getattr__` returning `MockedObject`s that refuse to run.
pub(crate) fn is_mock_stub(reader: &tpkg_archive::PackageReader, record: &str) -> bool {
    reader
        .read_range(record, 0, MOCK_STUB.len() as u64)
        .is_ok_and(|head| head == MOCK_STUB.as_bytes())
}

pub(crate) fn runs_processes_or_code(module: &str) -> bool {
    in_modules(RUNS_PROCESSES_OR_CODE, module)
}

pub(crate) fn has_system_access(module: &str) -> bool {
    in_modules(SYSTEM_ACCESS, module)
}

/// Audits an interned module's source. Returns `false` when the record is
/// no Python source at all (not UTF-8 or no parse), so the caller can try
/// it as what it may really be (a pickle under a `.py` name).
pub(crate) fn audit_source(record: &str, bytes: &[u8], findings: &mut Findings) -> bool {
    let Ok(source) = std::str::from_utf8(bytes) else {
        return false;
    };
    if source.starts_with(MOCK_STUB) {
        return true; // A mock stub: its only code is a module __getattr__.
    }
    let statements = match tpkg_pysource::import_time_code(source) {
        Ok(statements) => statements,
        Err(_) => return false,
    };
    for statement in statements {
        findings.add(NewFinding {
            level: Level::Review,
            kind: FindingKind::ImportTimeCode,
            at: At::line(record, statement.line),
            subject: statement.text,
            reason: format!(
                "a module-level {} runs when the module is imported",
                statement.kind
            ),
        });
    }
    let module = module_of_record(record).unwrap_or_default();
    let package = tpkg_pysource::package_of(&module, record.ends_with("/__init__.py"));
    if let Ok(imports) = tpkg_pysource::scan_imports(source, package) {
        for dynamic in imports.dynamic {
            findings.add(NewFinding {
                level: Level::Review,
                kind: FindingKind::DynamicImport,
                at: At::line(record, dynamic.line),
                subject: dynamic.module.unwrap_or_else(|| "<computed name>".into()),
                reason: "importlib.import_module: PyTorch's exporter did not see it".into(),
            });
        }
        for (module, _) in imports.references {
            if has_system_access(&module) || runs_processes_or_code(&module) {
                findings.add(NewFinding {
                    level: Level::Review,
                    kind: FindingKind::DangerousImport,
                    at: At::record(record),
                    subject: module,
                    reason: "imports a module with system-level access (an import runs nothing of it by itself)".into(),
                });
            }
        }
    }
    true
}

/// Audits TorchScript code (`code/**.py` of a TorchScript file, a
/// package's `.data/ts_code/code/`), which libtorch compiles and runs on
/// load: calls with effects outside the model are unsafe.
pub(crate) fn audit_torchscript_code(record: &str, bytes: &[u8], findings: &mut Findings) {
    let Ok(source) = std::str::from_utf8(bytes) else {
        findings.unreadable(
            Level::Unsafe,
            record,
            "TorchScript code is not UTF-8".into(),
        );
        return;
    };
    for (index, line) in source.lines().enumerate() {
        let code = line.split('#').next().unwrap_or_default();
        if let Some(effect) = TORCHSCRIPT_EFFECTS
            .iter()
            .find(|effect| code.contains(*effect))
        {
            findings.add(NewFinding {
                level: Level::Unsafe,
                kind: FindingKind::TorchScript,
                at: At::line(record, index + 1),
                subject: line.trim().chars().take(120).collect(),
                reason: format!(
                    "TorchScript code calls {}, which reaches files or other models",
                    effect.trim_end_matches('(')
                ),
            });
        }
    }
}

/// Calls that reach outside the process when code runs (at import, or in
/// a package function a pickle calls): processes, code, files, the
/// network. Prefixes of resolved names; `os.path.join` and
/// `os.environ.get` are not among them.
const EFFECTS: &[&str] = &[
    "os.system",
    "os.popen",
    "os.exec",
    "os.spawn",
    "os.fork",
    "os.kill",
    "os.killpg",
    "os.remove",
    "os.unlink",
    "os.rmdir",
    "os.removedirs",
    "os.rename",
    "os.renames",
    "os.replace",
    "os.chmod",
    "os.chown",
    "os.symlink",
    "os.link",
    "os.truncate",
    "os.write",
    "os.open",
    "os.startfile",
    "os.posix_spawn",
    "posix.",
    "nt.",
    "subprocess.",
    "pty.",
    "socket.",
    "ctypes.",
    "shutil.",
    "urllib.request.",
    "http.client.",
    "ftplib.",
    "smtplib.",
    "telnetlib.",
    "webbrowser.",
    "runpy.",
    "code.",
    "codeop.",
    "multiprocessing.",
    "asyncio.create_subprocess",
    "pickle.load",
    "pickle.loads",
    "_pickle.load",
    "marshal.load",
    "marshal.loads",
    "torch.load",
    "torch.hub.load",
    "torch.hub.download_url_to_file",
    "torch.hub._download_url_to_file",
    "torch.hub.load_state_dict_from_url",
    "torch.ops.load_library",
    "torch.classes.load_library",
    "torch.utils.cpp_extension.",
    "pip.",
    "builtins.exec",
    "builtins.eval",
    "builtins.compile",
    "types.FunctionType",
    "types.CodeType",
    "importlib.util.spec_from_file_location",
    "importlib.machinery.SourceFileLoader",
];

/// Builtins that run code.
const EXEC_BUILTINS: &[&str] = &["exec", "eval", "compile", "breakpoint", "input"];

/// How deep calls into the package's own functions are followed.
const MAX_CHAIN: usize = 8;

/// A package's interned sources by module name, for following calls.
pub(crate) struct PackageSources<'a> {
    /// Module → (record, source).
    pub modules: HashMap<String, (&'a str, &'a str)>,
}

/// What an unsafe call is and how it is reached.
struct Reached {
    chain: Vec<String>,
    reason: String,
}

impl PackageSources<'_> {
    /// The interned module `name` starts with, and the rest of the name
    /// (`pkg.utils.helper` → (`pkg.utils`, `helper`)).
    fn split<'n>(&self, name: &'n str) -> Option<(&str, &'n str)> {
        let mut end = name.len();
        loop {
            let (module, rest) = (&name[..end], name.get(end + 1..).unwrap_or(""));
            if let Some((key, _)) = self.modules.get_key_value(module) {
                return Some((key.as_str(), rest));
            }
            end = name[..end].rfind('.')?;
        }
    }

    /// An absolute name for a callee resolved in `module` (relative imports
    /// keep their dots).
    fn absolute(module: &str, is_package: bool, name: &str) -> String {
        let dots = name.chars().take_while(|c| *c == '.').count();
        if dots == 0 {
            return name.to_owned();
        }
        let mut base: Vec<&str> = tpkg_pysource::package_of(module, is_package)
            .split('.')
            .filter(|s| !s.is_empty())
            .collect();
        for _ in 1..dots {
            base.pop();
        }
        let rest = &name[dots..];
        if rest.is_empty() {
            base.join(".")
        } else if base.is_empty() {
            rest.to_owned()
        } else {
            format!("{}.{rest}", base.join("."))
        }
    }

    /// Whether calling `callee` from `module` reaches an effect; following
    /// the package's own functions (`visited` stops cycles).
    fn reaches(
        &self,
        module: &str,
        callee: &Callee,
        depth: usize,
        visited: &mut HashSet<(String, String)>,
    ) -> Option<Reached> {
        let effect = |name: &str| {
            EFFECTS.iter().any(|effect| {
                name.starts_with(effect)
                    && (effect.ends_with('.')
                        || name.len() == effect.len()
                        || !name[effect.len()..]
                            .starts_with(|c: char| c.is_alphanumeric() || c == '_'))
            })
        };
        match callee {
            Callee::Introspection(text) => Some(Reached {
                chain: vec![text.clone()],
                reason:
                    "an introspection hop (a dunder attribute) reaches any object of the process"
                        .into(),
            }),
            Callee::Builtin(name) if EXEC_BUILTINS.contains(&name.as_str()) => Some(Reached {
                chain: vec![name.clone()],
                reason: format!("the builtin {name} runs code"),
            }),
            Callee::Builtin(_) | Callee::Dynamic(_) => None,
            Callee::Local(name) => self.follow(module, name, depth, visited),
            Callee::Resolved(name) => {
                let is_package = self
                    .modules
                    .get(module)
                    .is_some_and(|(record, _)| record.ends_with("/__init__.py"));
                let name = Self::absolute(module, is_package, name);
                if effect(&name) {
                    return Some(Reached {
                        chain: vec![name.clone()],
                        reason: format!("{name} reaches processes, code, files or the network"),
                    });
                }
                let (own, function) = self.split(&name)?;
                if function.is_empty() {
                    return None;
                }
                self.follow(own, function, depth, visited)
            }
            _ => None,
        }
    }

    /// The calls of function `name` of interned `module`, followed.
    fn follow(
        &self,
        module: &str,
        name: &str,
        depth: usize,
        visited: &mut HashSet<(String, String)>,
    ) -> Option<Reached> {
        if depth >= MAX_CHAIN || !visited.insert((module.to_owned(), name.to_owned())) {
            return None;
        }
        let (_, source) = self.modules.get(module)?;
        let calls = match tpkg_pysource::function_calls(source, name) {
            Ok(Some(calls)) => calls,
            // A class: calling it runs its __init__ (and __new__).
            Ok(None) => {
                let init = format!("{name}.__init__");
                tpkg_pysource::function_calls(source, &init)
                    .ok()
                    .flatten()?
            }
            Err(_) => return None,
        };
        calls.iter().find_map(|call| {
            let mut reached = self.reaches(module, &call.callee, depth + 1, visited)?;
            reached.chain.insert(0, format!("{module}.{name}"));
            Some(reached)
        })
    }

    /// Findings for the calls `module` makes when imported that reach an
    /// effect, directly or through the package's own functions.
    pub fn audit_import_time(&self, module: &str, findings: &mut Findings) {
        let Some((record, source)) = self.modules.get(module) else {
            return;
        };
        let Ok(calls) = tpkg_pysource::import_time_calls(source) else {
            return;
        };
        for call in calls {
            if imports_computed_name(&call) {
                findings.add(NewFinding {
                    level: Level::Unsafe,
                    kind: FindingKind::ImportTimeCode,
                    at: At::line(record, call.line),
                    subject: call.text.clone(),
                    reason: "imports a module whose name is computed when the module is imported: it can be any module".into(),
                });
                continue;
            }
            self.report(
                module,
                record,
                &call,
                FindingKind::ImportTimeCode,
                "runs when the module is imported",
                findings,
            );
        }
    }

    /// Findings for the package function (or class) `module.name` a
    /// pickle calls: whatever its body reaches.
    pub fn audit_package_call(&self, module: &str, name: &str, why: &str, findings: &mut Findings) {
        let Some((record, _)) = self.modules.get(module) else {
            return;
        };
        let mut visited = HashSet::new();
        if let Some(reached) = self.follow(module, name, 0, &mut visited) {
            findings.add(NewFinding {
                level: Level::Unsafe,
                kind: FindingKind::PackageCode,
                at: At::record(record),
                subject: format!("{module}.{name} → {}", reached.chain[1..].join(" → ")),
                reason: format!("{why}: {}", reached.reason),
            });
        }
    }

    fn report(
        &self,
        module: &str,
        record: &str,
        call: &Call,
        kind: FindingKind,
        when: &str,
        findings: &mut Findings,
    ) {
        let mut visited = HashSet::new();
        let Some(reached) = self.reaches(module, &call.callee, 0, &mut visited) else {
            return;
        };
        let chain = if reached.chain.len() > 1 {
            format!(" (via {})", reached.chain.join(" → "))
        } else {
            String::new()
        };
        findings.add(NewFinding {
            level: Level::Unsafe,
            kind,
            at: At::line(record, call.line),
            subject: reached
                .chain
                .last()
                .cloned()
                .unwrap_or_else(|| call.text.clone()),
            reason: format!(
                "`{}`: {} {when}{chain}: {}",
                call.text,
                construct_name(call.construct),
                reached.reason
            ),
        });
    }
}

/// Whether a call imports a module by a name that is not a string
/// literal (`importlib.import_module("o" + "s")`, `__import__(name)`).
fn imports_computed_name(call: &Call) -> bool {
    let imports = match &call.callee {
        Callee::Resolved(name) => {
            name == "importlib.import_module" || name == "importlib.__import__"
        }
        Callee::Builtin(name) => name == "__import__",
        _ => false,
    };
    if !imports {
        return false;
    }
    let Some(open) = call.text.find('(') else {
        return true;
    };
    let argument = call.text[open + 1..].trim_start();
    let Some(quote) = argument.chars().next().filter(|c| *c == '"' || *c == '\'') else {
        return true;
    };
    // A literal: the closing quote, then `)` or `,`.
    match argument[1..].find(quote) {
        Some(close) => {
            let after = argument[1 + close + 1..].trim_start();
            !(after.starts_with(')') || after.starts_with(','))
        }
        None => true,
    }
}

fn construct_name(construct: tpkg_pysource::Construct) -> &'static str {
    use tpkg_pysource::Construct;
    match construct {
        Construct::Statement => "a call",
        Construct::Decorator => "a decorator",
        Construct::DefaultArgument => "a default argument",
        Construct::Annotation => "an annotation",
        Construct::ClassBody => "a call in a class body",
        Construct::BaseOrKeyword => "a class base or keyword",
        Construct::Comprehension => "a comprehension",
        _ => "a call",
    }
}
