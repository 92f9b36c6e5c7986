//! Every case of PyTorch's `test/package/test_glob_group.py`, as a table.

use tpkg_glob::{GlobGroup, Patterns, Separator};

struct Case {
    test: &'static str,
    include: Patterns,
    exclude: Patterns,
    separator: Separator,
    matches: &'static [&'static str],
    rejects: &'static [&'static str],
}

fn case(
    test: &'static str,
    include: impl Into<Patterns>,
    exclude: impl Into<Patterns>,
    separator: Separator,
    matches: &'static [&'static str],
    rejects: &'static [&'static str],
) -> Case {
    Case {
        test,
        include: include.into(),
        exclude: exclude.into(),
        separator,
        matches,
        rejects,
    }
}

#[test]
fn every_upstream_case() {
    use Separator::{Dot, Slash};
    let none = Patterns::none;
    let cases = [
        case(
            "test_one_star",
            "torch.*",
            none(),
            Dot,
            &["torch.foo", "torch.bar"],
            &["tor.foo", "torch.foo.bar", "torch"],
        ),
        case(
            "test_one_star_middle",
            "foo.*.bar",
            none(),
            Dot,
            &["foo.q.bar", "foo.foo.bar"],
            &[
                "foo.bar",
                "foo.foo",
                "outer.foo.inner.bar",
                "foo.q.bar.more",
                "foo.one.two.bar",
            ],
        ),
        case(
            "test_one_star_partial",
            "fo*.bar",
            none(),
            Dot,
            &["fo.bar", "foo.bar", "foobar.bar"],
            &["oij.bar", "f.bar", "foo"],
        ),
        case(
            "test_one_star_multiple_in_component",
            "foo/a*.htm*",
            none(),
            Slash,
            &["foo/a.html", "foo/a.htm", "foo/abc.html"],
            &[],
        ),
        case(
            "test_one_star_partial_extension",
            "foo/*.txt",
            none(),
            Slash,
            &["foo/hello.txt", "foo/goodbye.txt", "foo/.txt"],
            &["foo/bar/hello.txt", "bar/foo/hello.txt"],
        ),
        case(
            "test_two_star",
            "torch.**",
            none(),
            Dot,
            &["torch.foo", "torch.bar", "torch.foo.bar", "torch"],
            &["what.torch", "torchvision"],
        ),
        case(
            "test_two_star_end",
            "**.torch",
            none(),
            Dot,
            &["torch", "bar.torch"],
            &["visiontorch"],
        ),
        case(
            "test_two_star_middle",
            "foo.**.baz",
            none(),
            Dot,
            &["foo.baz", "foo.bar.baz", "foo.bar1.bar2.baz"],
            &["foobaz", "foo.bar.baz.z"],
        ),
        case(
            "test_two_star_multiple",
            "**/bar/**/*.txt",
            none(),
            Slash,
            &["bar/baz.txt", "a/bar/b.txt", "bar/foo/c.txt"],
            &["baz.txt", "a/b.txt"],
        ),
        case(
            "test_raw_two_star",
            "**",
            none(),
            Dot,
            &["bar", "foo.bar", "ab.c.d.e"],
            &[""],
        ),
        case(
            "test_exclude",
            "torch.**",
            "torch.**.foo",
            Dot,
            &["torch", "torch.bar", "torch.barfoo"],
            &["torch.foo", "torch.some.foo"],
        ),
        case(
            "test_exclude_from_all",
            "**",
            ["foo.**", "bar.**"],
            Dot,
            &["a", "hello", "anything.really"],
            &["foo.bar", "foo.bar.baz"],
        ),
        case(
            "test_list_include_exclude",
            ["foo", "bar.**"],
            ["bar.baz", "bar.qux"],
            Dot,
            &["foo", "bar.other", "bar.bazother"],
            &["bar.baz", "bar.qux"],
        ),
    ];
    for case in cases {
        let group = GlobGroup::new(case.include.clone(), case.exclude.clone(), case.separator)
            .unwrap_or_else(|e| panic!("{}: {e}", case.test));
        for name in case.matches {
            assert!(
                group.matches(name),
                "{}: {group} should match {name:?}",
                case.test
            );
        }
        for name in case.rejects {
            assert!(
                !group.matches(name),
                "{}: {group} should not match {name:?}",
                case.test
            );
        }
    }
}

#[test]
fn test_invalid_raw() {
    let error = GlobGroup::modules("a.**b").unwrap_err();
    assert_eq!(error.pattern(), "a.**b");
    assert!(
        error
            .to_string()
            .contains("** can only appear as an entire path segment")
    );
}

#[test]
fn display_is_pytorchs_str() {
    let cases: [(GlobGroup, &str); 3] = [
        (
            GlobGroup::modules("nothing.**").unwrap(),
            "GlobGroup(include=nothing.**, exclude=())",
        ),
        (
            GlobGroup::new(["a", "b"], "c", Separator::Dot).unwrap(),
            "GlobGroup(include=['a', 'b'], exclude=c)",
        ),
        (
            GlobGroup::new("**", ["foo.**"], Separator::Dot).unwrap(),
            "GlobGroup(include=**, exclude=['foo.**'])",
        ),
    ];
    for (group, expected) in cases {
        assert_eq!(group.to_string(), expected);
    }
}
