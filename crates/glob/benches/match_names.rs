//! How fast a compiled `GlobGroup` matches: 1,000,000 module names against
//! 100 patterns of the kinds exporters use (literals, `pkg.**` prefixes,
//! and general wildcards), compared with matching every pattern one by one
//! with the general matcher (what a regex-per-pattern design does).
//!
//! `cargo bench -p tpkg-glob` (prints a small table; `cargo xtask bench`
//! will collect it with the other benchmarks).

use std::hint::black_box;
use std::time::Instant;

use tpkg_glob::{GlobGroup, Pattern, Patterns, Separator};

const WORDS: &[&str] = &[
    "torch",
    "nn",
    "functional",
    "utils",
    "data",
    "models",
    "resnet",
    "vision",
    "core",
    "networkx",
    "algorithms",
    "shortest_paths",
    "sympy",
    "matrices",
    "io",
    "common",
    "layers",
    "_private",
    "testing",
    "jit",
    "ops",
    "transforms",
    "backend",
    "cuda",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 as usize
    }
    fn word(&mut self) -> &'static str {
        WORDS[self.next() % WORDS.len()]
    }
}

fn patterns(rng: &mut Rng) -> Vec<String> {
    let mut patterns = Vec::new();
    for _ in 0..40 {
        patterns.push(format!("{}.{}.{}", rng.word(), rng.word(), rng.word()));
    }
    for _ in 0..40 {
        patterns.push(format!("{}.{}.**", rng.word(), rng.word()));
    }
    for _ in 0..10 {
        patterns.push(format!("{}.*.{}", rng.word(), rng.word()));
    }
    for _ in 0..10 {
        patterns.push(format!("**.{}*", &rng.word()[..2]));
    }
    patterns
}

fn names(rng: &mut Rng, count: usize) -> Vec<String> {
    (0..count)
        .map(|_| {
            let segments = 2 + rng.next() % 4;
            (0..segments)
                .map(|_| rng.word())
                .collect::<Vec<_>>()
                .join(".")
        })
        .collect()
}

fn main() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let patterns = patterns(&mut rng);
    let names = names(&mut rng, 1_000_000);

    let start = Instant::now();
    let group = GlobGroup::new(
        Patterns::List(patterns.clone()),
        Patterns::none(),
        Separator::Dot,
    )
    .expect("valid patterns");
    let compile = start.elapsed();

    let mut best = f64::MAX;
    let mut matched = 0;
    for _ in 0..5 {
        let start = Instant::now();
        matched = names
            .iter()
            .filter(|name| group.matches(black_box(name)))
            .count();
        best = best.min(start.elapsed().as_secs_f64());
    }

    let one_by_one: Vec<Pattern> = patterns
        .iter()
        .map(|p| Pattern::new(p, Separator::Dot).expect("valid"))
        .collect();
    let start = Instant::now();
    let matched_one_by_one = names
        .iter()
        .filter(|name| one_by_one.iter().any(|p| p.matches(black_box(name))))
        .count();
    let naive = start.elapsed().as_secs_f64();
    assert_eq!(matched, matched_one_by_one);

    println!("| benchmark | seconds | ns per name |");
    println!("|---|---|---|");
    println!(
        "| compile 100 patterns | {:.6} | - |",
        compile.as_secs_f64()
    );
    println!(
        "| match 1M names, GlobGroup (best of 5) | {best:.3} | {:.0} |",
        best * 1e9 / names.len() as f64
    );
    println!(
        "| match 1M names, each pattern in turn | {naive:.3} | {:.0} |",
        naive * 1e9 / names.len() as f64
    );
    println!("\n{matched} of {} names matched", names.len());
}
