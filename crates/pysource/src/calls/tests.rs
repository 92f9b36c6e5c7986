use std::collections::HashMap;

use super::builtins::BUILTINS;
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
    let source = "class C:\n    def helper(): pass\n    x = helper()\n    def m(self): helper()\n";
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
