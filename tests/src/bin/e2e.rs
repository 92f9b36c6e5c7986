//! `cargo xtask e2e`: runs every scenario against real PyTorch and prints a
//! table (scenario, direction, check, max abs difference, time, result).
//! Exits non-zero if any scenario fails.

use std::process::ExitCode;

use tpkg_tests::scenarios;

fn main() -> ExitCode {
    let outcomes: Vec<_> = scenarios::all().into_iter().map(scenarios::run).collect();
    let rows: Vec<[String; 6]> = outcomes
        .iter()
        .map(|outcome| {
            let (check, diff, verdict) = match &outcome.result {
                Ok(checked) => (
                    checked.summary.clone(),
                    checked
                        .max_abs_diff
                        .map_or_else(|| "-".to_owned(), |d| format!("{d:.2e}")),
                    "PASS",
                ),
                Err(error) => (
                    format!("{error:#}")
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .to_owned(),
                    "-".to_owned(),
                    "FAIL",
                ),
            };
            [
                outcome.scenario.name.to_owned(),
                outcome.scenario.direction.to_owned(),
                check,
                diff,
                format!("{:.1}s", outcome.seconds),
                verdict.to_owned(),
            ]
        })
        .collect();
    let header = [
        "scenario",
        "direction",
        "check",
        "max |Δ|",
        "time",
        "result",
    ];
    let widths: Vec<usize> = (0..header.len())
        .map(|column| {
            rows.iter()
                .map(|row| row[column].chars().count())
                .chain([header[column].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let print_row = |cells: &[String]| {
        let line: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("| {} |", line.join(" | "));
    };
    print_row(&header.map(str::to_owned));
    println!(
        "|{}|",
        widths
            .iter()
            .map(|w| "-".repeat(w + 2))
            .collect::<Vec<_>>()
            .join("|")
    );
    for row in &rows {
        print_row(row);
    }
    let failures: Vec<_> = outcomes.iter().filter(|o| o.result.is_err()).collect();
    for outcome in &failures {
        if let Err(error) = &outcome.result {
            eprintln!("\n{} failed:\n{error:?}", outcome.scenario.name);
        }
    }
    println!(
        "\n{} passed, {} failed",
        outcomes.len() - failures.len(),
        failures.len()
    );
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
