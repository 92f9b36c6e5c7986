//! tpkg's `GlobGroup` against PyTorch's own, on thousands of generated
//! patterns and names: same matches, same errors, same `str()`.

use serde_json::{Value, json};
use tpkg::glob::{GlobGroup, Patterns, Separator};
use tpkg_tests::oracle;

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const PATTERN_SEGMENTS: &[&str] = &[
    "a", "b", "ab", "torch", "nn", "*", "**", "a*", "*b", "a*b", "*a*", "", "a+b", "(x)", "ü",
    "x**", "**y", "t?", "[ab]", "$",
];
const NAME_SEGMENTS: &[&str] = &[
    "a", "b", "ab", "aab", "torch", "nn", "", "a+b", "(x)", "ü", "t?", "[ab]", "$", "xy",
];

fn joined(rng: &mut Rng, vocabulary: &[&str], separator: char, max: usize) -> String {
    let count = rng.below(max + 1);
    (0..count)
        .map(|_| rng.pick(vocabulary))
        .collect::<Vec<_>>()
        .join(&separator.to_string())
}

#[test]
fn matches_errors_and_text_equal_pytorchs_globgroup() {
    let mut rng = Rng(0x7061_636b_6167_6521);
    let mut cases = Vec::new();
    for _ in 0..4000 {
        let separator = if rng.below(2) == 0 { '.' } else { '/' };
        let include: Vec<String> = (0..1 + rng.below(3))
            .map(|_| joined(&mut rng, PATTERN_SEGMENTS, separator, 4))
            .collect();
        let exclude: Vec<String> = (0..rng.below(3))
            .map(|_| joined(&mut rng, PATTERN_SEGMENTS, separator, 4))
            .collect();
        let names: Vec<String> = (0..30)
            .map(|_| joined(&mut rng, NAME_SEGMENTS, separator, 5))
            .collect();
        cases.push(json!({
            "include": include,
            "exclude": exclude,
            "separator": separator.to_string(),
            "names": names,
        }));
    }
    let answers = oracle::run_json_stdin("glob_group.py", &[], &json!({ "cases": cases }))
        .expect("the PyTorch oracle runs");
    let answers = answers.as_array().expect("a list");
    assert_eq!(answers.len(), cases.len());

    let (mut compared, mut errors) = (0, 0);
    for (case, answer) in cases.iter().zip(answers) {
        let strings = |key: &str| -> Vec<String> {
            serde_json::from_value(case[key].clone()).expect("strings")
        };
        let separator = if case["separator"] == "." {
            Separator::Dot
        } else {
            Separator::Slash
        };
        let ours = GlobGroup::new(
            Patterns::List(strings("include")),
            Patterns::List(strings("exclude")),
            separator,
        );
        match (ours, answer.get("error")) {
            (Err(_), Some(_)) => errors += 1,
            (Ok(group), None) => {
                assert_eq!(Value::from(group.to_string()), answer["str"], "{case}");
                for (name, expected) in strings("names")
                    .iter()
                    .zip(answer["matches"].as_array().unwrap())
                {
                    assert_eq!(
                        Value::from(group.matches(name)),
                        *expected,
                        "{group} on {name:?} (separator {separator:?})"
                    );
                    compared += 1;
                }
            }
            (ours, theirs) => panic!("{case}: tpkg {:?}, PyTorch {theirs:?}", ours.err()),
        }
    }
    println!("{compared} matches compared, {errors} invalid pattern groups agreed");
    // The generator must exercise both outcomes.
    assert!(compared > 60_000, "{compared}");
    assert!(errors > 100, "{errors}");
}
