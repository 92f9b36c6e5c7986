//! `tpkg repack`: a loaded package re-exported as PyTorch does, statically.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::bail;
use tpkg::archive::Durability;
use tpkg::exporter::ExportError;

use super::pack::{Rule, finder};
use super::write_json;

/// `tpkg repack IN OUT`.
pub fn run(
    input: &Path,
    output: &Path,
    paths: &[PathBuf],
    python: Option<&Path>,
    rules: Vec<Rule>,
    durability: Durability,
    json: bool,
) -> anyhow::Result<()> {
    use tpkg::digraph::Action;

    let finder = finder(paths, python)?;
    let importer = tpkg::importer::PackageImporter::open(input)?;
    let rules = rules.into_iter().fold(
        tpkg::repackage::Rules::default(),
        |rules, rule| match rule {
            Rule::Intern(p) => rules.with_rule(Action::Intern, p),
            Rule::Extern(p) => rules.with_rule(Action::Extern, p),
            Rule::Mock(p) => rules.with_rule(Action::Mock, p),
            Rule::Deny(p) => rules.with_rule(Action::Deny, p),
        },
    );
    let repackaged = super::progress::with_bytes("repacking", |progress| {
        let options = tpkg::repackage::RepackOptions::default()
            .with_durability(durability)
            .with_progress(progress);
        tpkg::repackage::repackage_with_options(&importer, output, finder, &rules, options)
    });
    let report = match repackaged {
        Ok(report) => report,
        Err(tpkg::repackage::RepackError::Export(ExportError::Packaging(error))) => {
            bail!("repackaging {} failed:{error}", input.display())
        }
        Err(error) => return Err(error.into()),
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if json {
        let value = serde_json::json!({
            "output": output,
            "interned": report.interned,
            "externed": report.externed,
            "mocked": report.mocked,
            "reencoded_pickles": report.reencoded_pickles,
        });
        write_json(&mut out, &value)?;
    } else {
        writeln!(
            out,
            "wrote {}: {} interned, {} extern, {} mocked modules; {} pickles re-encoded",
            output.display(),
            report.interned.len(),
            report.externed.len(),
            report.mocked.len(),
            report.reencoded_pickles.len()
        )?;
    }
    Ok(())
}
