//! `tpkg show`: a pickle decoded and printed, without running anything.

use std::io::{self, Write};
use std::path::Path;

use anyhow::Context;

/// Width when stdout is not a terminal (and `--width` is not given).
const DEFAULT_WIDTH: usize = 100;

/// The text output's flags: `--depth`, `--width`, `--full`.
#[derive(Debug, Clone, Copy)]
pub struct Text {
    /// `--depth`.
    pub depth: usize,
    /// `--width`; the terminal's width or 100 when not given.
    pub width: Option<usize>,
    /// `--full`.
    pub full: bool,
}

impl Text {
    fn options(&self) -> tpkg::show::PrettyOptions {
        let width = self.width.unwrap_or_else(|| {
            let term = console::Term::stdout();
            match term.is_term().then(|| term.size_checked()).flatten() {
                Some((_, columns)) if columns >= 20 => usize::from(columns),
                _ => DEFAULT_WIDTH,
            }
        });
        tpkg::show::PrettyOptions::default()
            .with_depth(self.depth)
            .with_width(width)
            .with_full(self.full)
    }
}

/// `tpkg show PACKAGE [RESOURCE] [--json] [--depth N] [--width N] [--full]`.
pub fn run(
    package: &Path,
    resource: Option<String>,
    json: bool,
    text: &Text,
) -> anyhow::Result<()> {
    let options = text.options();
    if let Some(graphs) = stream_pickles(package)? {
        let stdout = io::stdout();
        let mut out = stdout.lock();
        for graph in &graphs {
            write_graph(&mut out, graph, json, &options)?;
        }
        out.flush()?;
        return Ok(());
    }
    let reader = tpkg::archive::PackageReader::open(package)?;
    let resource = super::main_pickle(&reader, resource)?;
    let graph = tpkg::show::decode_record(&reader, &resource)?;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    write_graph(&mut out, &graph, json, &options)?;
    out.flush()?;
    Ok(())
}

/// One pickle: its JSON value image or its Python-like text, then a newline.
fn write_graph(
    out: &mut impl Write,
    graph: &tpkg::pickle::ValueGraph,
    json: bool,
    options: &tpkg::show::PrettyOptions,
) -> anyhow::Result<()> {
    if json {
        serde_json::to_writer_pretty(&mut *out, &tpkg::show::image(graph)?)?;
    } else {
        out.write_all(tpkg::show::pretty(graph, options).as_bytes())?;
    }
    writeln!(out)?;
    Ok(())
}

/// The pickles of a file that is not a zip, decoded as data: a legacy
/// `torch.save`'s object, or every pickle of a pickle file in order.
///
/// A pickle file's pickles are decoded with `Symbolic` (every global kept
/// as written), not with the `TorchData` that
/// [`tpkg::formats::PyTorchFile::open`] uses, so `show` prints each call a
/// pickle makes as the pickle states it.
fn stream_pickles(path: &Path) -> anyhow::Result<Option<Vec<tpkg::pickle::ValueGraph>>> {
    use tpkg::formats::Sniffed;
    match tpkg::formats::sniff_path(path).with_context(|| path.display().to_string())? {
        Sniffed::LegacyStream | Sniffed::Tar => {
            let legacy = tpkg::legacy::LegacyFile::open(path)?;
            Ok(Some(vec![legacy.graph().clone()]))
        }
        Sniffed::Pickle => {
            let bytes = std::fs::read(path).with_context(|| path.display().to_string())?;
            let options = tpkg::pickle::DecodeOptions::default();
            tpkg::pickle::decode_stream(&bytes, &options, &tpkg::pickle::Symbolic)
                .map(|pickle| {
                    pickle.map(|(_, graph)| graph).map_err(|(at, error)| {
                        anyhow::Error::new(error)
                            .context(format!("{}: pickle at byte {at}", path.display()))
                    })
                })
                .collect::<anyhow::Result<_>>()
                .map(Some)
        }
        Sniffed::Zip => Ok(None),
    }
}
