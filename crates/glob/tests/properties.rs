//! Properties: tpkg's matcher agrees with the regex PyTorch builds from the
//! same pattern (`GlobGroup._glob_to_re`), on generated patterns and names.
//! The differential test against PyTorch itself lives in `tests/suite`.

use proptest::prelude::*;
use tpkg_glob::{GlobGroup, Patterns, Separator};

/// PyTorch's translation, verbatim: each component becomes
/// `\.` + escaped pieces joined by `[^.]*`, `**` becomes `(\.[^.]+)*`, and
/// the candidate is prefixed with the separator and full-matched.
fn pytorch_regex(pattern: &str, separator: char) -> Option<regex::Regex> {
    let sep = regex::escape(&separator.to_string());
    let mut out = String::from("^(?:");
    for component in pattern.split(separator) {
        if component.contains("**") {
            if component != "**" {
                return None;
            }
            out.push_str(&format!("({sep}[^{separator}]+)*"));
        } else {
            let pieces: Vec<String> = component.split('*').map(regex::escape).collect();
            out.push_str(&sep);
            out.push_str(&pieces.join(&format!("[^{separator}]*")));
        }
    }
    out.push_str(")$");
    Some(regex::Regex::new(&out).unwrap())
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("*".to_owned()),
        Just("**".to_owned()),
        "[ab]{1,3}",
        "[ab]{0,2}\\*[ab]{0,2}",
        "[ab]\\*[ab]\\*[ab]",
        Just("a+b".to_owned()),
        Just("a**".to_owned()),
    ]
}

fn pattern(separator: char) -> impl Strategy<Value = String> {
    prop::collection::vec(segment(), 1..5).prop_map(move |s| s.join(&separator.to_string()))
}

fn name(separator: char) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![Just(String::new()), "[ab]{1,3}", Just("a+b".to_owned())],
        0..6,
    )
    .prop_map(move |s| s.join(&separator.to_string()))
}

fn check(pattern: &str, names: &[String], separator: Separator) -> Result<(), TestCaseError> {
    let sep = separator.as_char();
    let reference = pytorch_regex(pattern, sep);
    let compiled = GlobGroup::new(pattern, Patterns::none(), separator);
    match (reference, compiled) {
        (None, Err(_)) => Ok(()),
        (Some(regex), Ok(group)) => {
            for name in names {
                let expected = regex.is_match(&format!("{sep}{name}"));
                prop_assert_eq!(group.matches(name), expected, "{:?} vs {:?}", pattern, name);
            }
            Ok(())
        }
        (reference, compiled) => {
            prop_assert!(
                false,
                "{pattern:?}: regex {:?}, tpkg {:?}",
                reference.is_some(),
                compiled.err()
            );
            Ok(())
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn agrees_with_pytorchs_regex_for_modules(
        pattern in pattern('.'),
        names in prop::collection::vec(name('.'), 1..20),
    ) {
        check(&pattern, &names, Separator::Dot)?;
    }

    #[test]
    fn agrees_with_pytorchs_regex_for_paths(
        pattern in pattern('/'),
        names in prop::collection::vec(name('/'), 1..20),
    ) {
        check(&pattern, &names, Separator::Slash)?;
    }

    #[test]
    fn exclude_always_wins(pattern in pattern('.'), name in name('.')) {
        if let Ok(group) = GlobGroup::new(pattern.as_str(), pattern.as_str(), Separator::Dot) {
            prop_assert!(!group.matches(&name));
        }
    }

    #[test]
    fn any_text_compiles_or_errors_without_panicking(pattern in ".*", name in ".*") {
        if let Ok(group) = GlobGroup::new(pattern.as_str(), Patterns::none(), Separator::Dot) {
            let _ = group.matches(&name);
        }
    }
}
