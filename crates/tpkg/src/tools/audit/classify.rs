//! What a global does when a pickle uses it, by how it is used.
//!
//! The model is an allowlist for calls and a denylist only for what is
//! never legitimate:
//!
//! - a **call** (`REDUCE`, `INST`/`OBJ`, a `reduce_package` function) of
//!   anything not vetted as harmless is unsafe: a call runs whatever the
//!   callee does, and a denylist is always one gadget short;
//! - an **instantiation** (`NEWOBJ`, `NEWOBJ_EX`: CPython requires a class
//!   and calls only its `__new__`) of an ordinary class is for review, of a
//!   class from a module that touches processes, files or code unsafe;
//! - a **BUILD** (`__setstate__`) on an instance of a class not vetted is
//!   for review;
//! - an **import** (a global used as a value) is for review unless it is
//!   vetted or names a dangerous module.
//!
//! Names are resolved first: an attribute chain through a module re-export
//! (`torch.os.system` is `os.system`) is judged as what it reaches, and any
//! dunder hop (`__builtins__`, `__globals__`, `__self__`, ...) is unsafe,
//! since it leads anywhere. A global of a module the package itself
//! interns is package code, not the installed library, so allowlists never
//! apply to it; interning a module that shadows the standard library,
//! torch or an allowlisted module is itself unsafe.

use super::weights_only::WEIGHTS_ONLY_ALLOWED;
use super::{AuditPolicy, Level};

/// How a pickle uses a global.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Use {
    /// Used as a value (GLOBAL / STACK_GLOBAL alone).
    Import,
    /// Called: REDUCE, INST/OBJ, a `reduce_package` function.
    Call,
    /// A class called with one plain value (`int`, `str`, ...): how an
    /// `Enum` member pickles. Its `__init__` runs, so a class of a module
    /// that reaches outside the process is still unsafe; any other is for
    /// review.
    ClassWithValue,
    /// A class instantiated by NEWOBJ/NEWOBJ_EX (its `__new__` only).
    Instantiate,
    /// BUILD on an instance of it (`__setstate__`).
    SetState,
}

/// Who reads the pickle: Python's unpickler, or TorchScript's C++ one,
/// which knows a fixed set of globals and runs no Python.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reader {
    /// `pickle`, `torch.load`, `PackageImporter`.
    Python,
    /// `torch.jit.load` (a TorchScript file's or a package's `ts_code`
    /// pickles).
    TorchScript,
}

/// What the classification needs to know about the file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'a> {
    pub policy: &'a AuditPolicy,
    /// Modules whose source the package interns.
    pub interned: &'a [String],
    pub reader: Reader,
}

/// Callables vetted as harmless beyond `torch.load(weights_only=True)`'s
/// allowlist: plain-data constructors and PyTorch's own rebuild helpers.
const SAFE_CALLS: &[&str] = &[
    "builtins.frozenset",
    "builtins.slice",
    "builtins.range",
    "builtins.bytes",
    "builtins.dict",
    "builtins.list",
    "builtins.tuple",
    "builtins.int",
    "builtins.float",
    "builtins.str",
    "builtins.bool",
    "__builtin__.set",
    "__builtin__.frozenset",
    "copy_reg._reconstructor",
    "copyreg._reconstructor",
    "collections.defaultdict",
    "collections.deque",
    "datetime.date",
    "datetime.datetime",
    "datetime.time",
    "datetime.timedelta",
    "decimal.Decimal",
    "fractions.Fraction",
    "numpy.dtype",
    "numpy.ndarray",
    "numpy.core.multiarray._reconstruct",
    "numpy.core.multiarray.scalar",
    "numpy._core.multiarray._reconstruct",
    "numpy._core.multiarray.scalar",
    "numpy.core.numeric._frombuffer",
    "numpy._core.numeric._frombuffer",
    "torch._utils._rebuild_parameter_with_state",
    "torch.fx.graph_module.reduce_graph_module",
    "torch.fx.graph_module.reduce_package_graph_module",
    "torch.jit._script.unpackage_script_module",
    "torch.nn.modules.module._IncompatibleKeys",
    "torch.storage._load_from_bytes",
];

/// Globals TorchScript's unpickler resolves itself (no Python runs).
const TORCHSCRIPT_MODULES: &[&str] = &[
    "__torch__",
    "torch.jit._pickle",
    "torch._utils",
    "torch._tensor",
    "collections",
    "builtins",
    "torch",
    "torch.distributed.rpc",
];

/// Modules whose every global runs code or reaches outside the process.
pub(crate) const UNSAFE_MODULES: &[&str] = &[
    "os",
    "posix",
    "nt",
    "posixpath",
    "ntpath",
    "subprocess",
    "sys",
    "socket",
    "runpy",
    "pickle",
    "_pickle",
    "pickletools",
    "marshal",
    "importlib",
    "pkgutil",
    "shutil",
    "webbrowser",
    "ctypes",
    "pty",
    "code",
    "codeop",
    "commands",
    "multiprocessing",
    "concurrent",
    "asyncio",
    "http",
    "urllib",
    "urllib2",
    "requests",
    "ftplib",
    "smtplib",
    "imaplib",
    "poplib",
    "nntplib",
    "telnetlib",
    "xmlrpc",
    "signal",
    "tempfile",
    "glob",
    "io",
    "_io",
    "zipimport",
    "imp",
    "dill",
    "cloudpickle",
    "joblib",
    "yaml",
    "shelve",
    "dbm",
    "sqlite3",
    "threading",
    "_thread",
    "pip",
    "setuptools",
    "distutils",
    "venv",
    "ensurepip",
    "uuid",
    "timeit",
    "pydoc",
    "profile",
    "cProfile",
    "trace",
    "pdb",
    "bdb",
    "logging",
    "fileinput",
    "linecache",
    "tarfile",
    "zipfile",
    "gzip",
    "bz2",
    "lzma",
    "sysconfig",
    "site",
    "builtins.__loader__",
    "torch.hub",
    "torch.package",
    "torch.serialization",
    "torch._dynamo",
    "torch._inductor",
    "torch.utils.cpp_extension",
    "torch.utils.collect_env",
    "torch.utils.data.datapipes",
    "torch.testing",
    "torch.distributed",
    "numpy.load",
    "numpy.lib.npyio",
    "numpy.testing",
    "numpy.f2py",
    "numpy.distutils",
];

/// Single globals that run code (outside the modules above).
const UNSAFE_GLOBALS: &[&str] = &[
    "builtins.eval",
    "builtins.exec",
    "builtins.compile",
    "builtins.getattr",
    "builtins.setattr",
    "builtins.delattr",
    "builtins.open",
    "builtins.__import__",
    "builtins.globals",
    "builtins.locals",
    "builtins.vars",
    "builtins.input",
    "builtins.breakpoint",
    "builtins.apply",
    "builtins.execfile",
    "builtins.memoryview",
    "builtins.type",
    "builtins.print",
    "builtins.help",
    "builtins.exit",
    "builtins.quit",
    "__builtin__.eval",
    "__builtin__.exec",
    "__builtin__.compile",
    "__builtin__.getattr",
    "__builtin__.setattr",
    "__builtin__.open",
    "__builtin__.__import__",
    "__builtin__.apply",
    "__builtin__.execfile",
    "operator.attrgetter",
    "operator.itemgetter",
    "operator.methodcaller",
    "operator.getitem",
    "operator.setitem",
    "functools.partial",
    "functools.reduce",
    "types.CodeType",
    "types.FunctionType",
    "types.MethodType",
    "types.ModuleType",
    "torch.load",
    "torch.save",
    "torch.from_file",
    "torch._C._jit_pass_onnx",
    "torch.jit.load",
    "torch.jit.save",
    "torch.jit.compile",
    "torch.compile",
    "numpy.load",
    "numpy.fromfile",
    "numpy.save",
    "numpy.savetxt",
    "numpy.loadtxt",
    "numpy.genfromtxt",
    "numpy.memmap",
];

/// Top-level modules a re-export may reach through an attribute chain
/// (`torch.os`, `numpy.sys`): a chain naming one is judged as that module.
const REACHABLE_MODULES: &[&str] = &[
    "os",
    "sys",
    "subprocess",
    "builtins",
    "importlib",
    "shutil",
    "socket",
    "pickle",
    "marshal",
    "ctypes",
    "io",
    "runpy",
    "code",
    "pty",
    "multiprocessing",
    "threading",
    "tempfile",
    "glob",
    "pathlib",
    "webbrowser",
    "urllib",
    "http",
    "requests",
    "operator",
    "functools",
    "types",
];

/// Modules whose names a package may not intern: its own copy would
/// replace the real one for every global of the package's pickles.
const NEVER_INTERNED: &[&str] = &[
    "torch",
    "numpy",
    "collections",
    "builtins",
    "_codecs",
    "copyreg",
];

/// Whether `module` is one of `list` or inside one of them.
pub(crate) fn in_modules(list: &[&str], module: &str) -> bool {
    list.iter().any(|m| {
        module == *m
            || module
                .strip_prefix(m)
                .is_some_and(|rest| rest.starts_with('.'))
    })
}

/// Whether a name segment is a dunder (`__globals__`), other than the
/// module names Python itself spells that way.
fn is_dunder(segment: &str) -> bool {
    segment.len() > 4
        && segment.starts_with("__")
        && segment.ends_with("__")
        && !matches!(segment, "__main__" | "__builtin__" | "__torch__")
}

/// A global as what it reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resolved {
    /// `module.name` as the pickle spells it.
    pub spelled: String,
    /// What the attribute chain reaches, when a segment re-exports a
    /// module (`torch.os.system` → `os.system`).
    pub reaches: Option<String>,
    /// The first dunder hop, if any (`__builtins__`).
    pub dunder: Option<String>,
}

impl Resolved {
    /// The name judged: what it reaches, else as spelled.
    pub fn judged(&self) -> &str {
        self.reaches.as_deref().unwrap_or(&self.spelled)
    }
}

/// Resolves `module.name` (a `STACK_GLOBAL`'s name may be a dotted
/// attribute chain at protocol 4 and later).
pub(crate) fn resolve(module: &str, name: &str) -> Resolved {
    let spelled = format!("{module}.{name}");
    let segments: Vec<&str> = spelled.split('.').collect();
    let dunder = segments
        .iter()
        .find(|s| is_dunder(s))
        .map(|s| (*s).to_owned());
    // A later segment naming a reachable module: the chain reaches it
    // (`torch.os.system`). `os.path.join` is itself: its first segment is
    // the module.
    let reaches = segments
        .iter()
        .enumerate()
        .skip(1)
        .find(|(_, segment)| REACHABLE_MODULES.contains(segment) && **segment != segments[0])
        .map(|(index, _)| segments[index..].join("."));
    Resolved {
        spelled,
        reaches,
        dunder,
    }
}

/// The level of a global used as `use`, and why.
pub(crate) fn classify(ctx: &Context<'_>, module: &str, name: &str, use_: Use) -> (Level, String) {
    let resolved = resolve(module, name);
    let qualified = resolved.judged().to_owned();
    let spelled = &resolved.spelled;
    if AuditPolicy::matches(&ctx.policy.unsafe_, spelled)
        || AuditPolicy::matches(&ctx.policy.unsafe_, &qualified)
    {
        return (Level::Unsafe, "unsafe by the audit policy".into());
    }
    if let Some(dunder) = &resolved.dunder {
        return (
            Level::Unsafe,
            format!("reaches {dunder}: an introspection hop leads to any object of the process"),
        );
    }
    if AuditPolicy::matches(&ctx.policy.safe, spelled) {
        return (Level::Safe, "safe by the audit policy".into());
    }
    let via = match &resolved.reaches {
        Some(reached) => format!(" ({spelled} is {reached})"),
        None => String::new(),
    };
    let module = qualified
        .rsplit_once('.')
        .map_or(qualified.as_str(), |(m, _)| m);
    if let Some(own) = ctx
        .interned
        .iter()
        .find(|m| module == m.as_str() || module.starts_with(&format!("{m}.")))
    {
        if shadows(own) {
            return (
                Level::Unsafe,
                format!("resolves to the package's own {own}, which shadows the real module{via}"),
            );
        }
        return match use_ {
            Use::Import => (Level::Review, "defined by the package's own source".into()),
            _ => (
                Level::Review,
                "runs the package's own code (see its source findings)".into(),
            ),
        };
    }
    if ctx.reader == Reader::TorchScript
        && resolved.reaches.is_none()
        && in_modules(TORCHSCRIPT_MODULES, module)
        && !UNSAFE_GLOBALS.contains(&qualified.as_str())
    {
        return (
            Level::Safe,
            "resolved by TorchScript's unpickler, which runs no Python".into(),
        );
    }
    if resolved.reaches.is_none()
        && (WEIGHTS_ONLY_ALLOWED
            .binary_search(&qualified.as_str())
            .is_ok()
            || SAFE_CALLS.contains(&qualified.as_str()))
    {
        return (Level::Safe, "vetted: builds plain data or tensors".into());
    }
    if UNSAFE_GLOBALS.contains(&qualified.as_str()) || in_modules(UNSAFE_MODULES, module) {
        return (
            Level::Unsafe,
            format!("runs code or reaches files, processes or the network{via}"),
        );
    }
    if tpkg_mangling::is_mangled(module) {
        return (
            Level::Review,
            "a module of another loaded package (mangled name)".into(),
        );
    }
    let torch_nn_class = (module.starts_with("torch.nn.modules.")
        || module == "torch.nn.parameter"
        || module.starts_with("torch.ao.nn."))
        && name.chars().next().is_some_and(char::is_uppercase)
        && resolved.reaches.is_none()
        && !name.contains('.');
    if torch_nn_class {
        return (
            Level::Safe,
            "a torch.nn module class (state set from plain data)".into(),
        );
    }
    match use_ {
        Use::Call => (
            Level::Unsafe,
            format!(
                "a call of a callable not vetted as harmless: a pickle call runs whatever it does{via}"
            ),
        ),
        Use::Instantiate => (
            Level::Review,
            format!("an instance made without calling the class (its __new__ only){via}"),
        ),
        Use::ClassWithValue => (
            Level::Review,
            format!(
                "a class called with one plain value (an Enum member, or a constructor whose __init__ runs){via}"
            ),
        ),
        Use::SetState => (
            Level::Review,
            "BUILD calls the class's __setstate__ if it defines one".into(),
        ),
        Use::Import => (Level::Review, format!("not known to be safe{via}")),
    }
}

/// Whether a package interning `module` replaces the real one of every
/// global of that name: the standard library, torch, numpy, or a module
/// the allowlists vet.
pub(crate) fn shadows(module: &str) -> bool {
    let top = module.split('.').next().unwrap_or(module);
    in_modules(NEVER_INTERNED, module)
        || tpkg_pysource::is_stdlib_module(top, tpkg_pysource::PythonVersion::LATEST)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(module: &str, name: &str, use_: Use) -> Level {
        let policy = AuditPolicy::default()
            .with_safe(["mymodel.*"])
            .with_unsafe(["numpy.frombuffer"]);
        let interned = ["mypkg".to_owned(), "collections".to_owned()];
        let ctx = Context {
            policy: &policy,
            interned: &interned,
            reader: Reader::Python,
        };
        classify(&ctx, module, name, use_).0
    }

    #[test]
    fn the_weights_only_table_is_sorted() {
        assert!(WEIGHTS_ONLY_ALLOWED.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn calls_are_judged_by_an_allowlist() {
        use Level::*;
        use Use::*;
        let cases = [
            ("torch._utils", "_rebuild_tensor_v2", Call, Safe),
            ("torch", "FloatStorage", Import, Safe),
            ("torch.nn.modules.conv", "Conv2d", Instantiate, Safe),
            ("builtins", "eval", Call, Unsafe),
            ("os", "system", Import, Unsafe),
            ("posix", "system", Call, Unsafe),
            ("pip", "main", Call, Unsafe),
            ("uuid", "_get_command_stdout", Call, Unsafe),
            ("torch.utils.collect_env", "run", Call, Unsafe),
            ("pydoc", "locate", Call, Unsafe),
            ("some.library", "helper", Call, Unsafe),
            ("some.library", "Class", Instantiate, Review),
            ("some.library", "Class", SetState, Review),
            ("torchvision.models.resnet", "ResNet", Instantiate, Review),
            ("mymodel.layers", "Block", Call, Safe),
            ("numpy", "frombuffer", Call, Unsafe),
            ("mypkg.model", "make", Call, Review),
        ];
        for (module, name, use_, expected) in cases {
            assert_eq!(
                level(module, name, use_),
                expected,
                "{module}.{name} {use_:?}"
            );
        }
    }

    #[test]
    fn names_are_resolved_before_they_are_judged() {
        use Level::*;
        use Use::*;
        // Re-exports and dunder hops.
        assert_eq!(level("torch", "os.system", Import), Unsafe);
        assert_eq!(
            resolve("torch", "os.system").reaches.as_deref(),
            Some("os.system")
        );
        assert_eq!(
            level("torch._utils", "_rebuild_tensor_v2.__builtins__.get", Call),
            Unsafe
        );
        assert_eq!(level("builtins", "print.__self__.exec", Call), Unsafe);
        assert_eq!(resolve("os.path", "join").reaches, None);
        assert_eq!(resolve("os", "path.join").reaches, None);
        // A package's own `collections` shadows the real one.
        assert_eq!(level("collections", "OrderedDict", Call), Unsafe);
        assert!(shadows("collections") && shadows("os.path") && shadows("torch.nn"));
        assert!(!shadows("torchvision.models") && !shadows("mypkg"));
    }
}
