//! The corpora the tools run on: their files and what their manifests say.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::Value;

/// One file or package folder of a corpus.
pub(super) struct Item {
    pub(super) path: PathBuf,
    /// Its path in the corpus folder.
    pub(super) name: String,
    /// Its entry in the corpus's `manifest.json`, if any.
    pub(super) manifest: Value,
}

/// The files of a corpus folder, in order: every file, and every package
/// folder (one holding `.data/`) as one item, without the corpus's own
/// bookkeeping (`manifest.json`, `stamp.json`, READMEs, `.md`, `.py`,
/// `.txt`, `.git*`).
pub(super) fn corpus_items(dir: &Path) -> anyhow::Result<Vec<Item>> {
    let manifest: Value = std::fs::read_to_string(dir.join("manifest.json"))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default();
    let mut items = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&folder)
            .with_context(|| format!("listing {}", folder.display()))?
            .map(|entry| entry.map(|entry| entry.path()))
            .collect::<Result<_, _>>()?;
        entries.sort();
        for path in entries {
            let file_name = path.file_name().unwrap_or_default().to_string_lossy();
            let bookkeeping = ["manifest.json", "stamp.json"].contains(&&*file_name)
                || file_name.starts_with("README")
                || file_name.starts_with(".git")
                || [".md", ".py", ".txt"]
                    .iter()
                    .any(|ext| file_name.ends_with(ext));
            let package = path.join(".data").is_dir();
            if path.is_dir() && !package {
                pending.push(path);
                continue;
            }
            if bookkeeping && !package {
                continue;
            }
            let name = path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            let manifest = manifest_entry(&manifest, &name);
            items.push(Item {
                path,
                name,
                manifest,
            });
        }
    }
    items.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(items)
}

/// A file's entry in a corpus manifest: `{"files": [{"file": NAME, ...}]}`
/// (the scanner corpora) or `{NAME: {...}}` (the hostile corpus).
pub(super) fn manifest_entry(manifest: &Value, name: &str) -> Value {
    let listed = manifest["files"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|entry| entry["file"] == name);
    listed
        .or_else(|| manifest.get(name))
        .cloned()
        .unwrap_or(Value::Null)
}

/// What a manifest entry says a file is, in a few words.
pub(super) fn manifest_summary(entry: &Value) -> String {
    let text = |key: &str| entry[key].as_str().unwrap_or_default();
    let what = [text("technique"), text("kind")]
        .into_iter()
        .find(|what| !what.is_empty());
    match (what, text("container")) {
        (Some(what), "") => what.to_owned(),
        (Some(what), container) => format!("{what} ({container})"),
        (None, _) => match entry["audit"].as_u64() {
            Some(audit) => format!("audit exit {audit}"),
            None => String::new(),
        },
    }
}

/// Reads every file once (untimed), so every tool reads from the page cache.
pub(super) fn warm(items: &[Item]) -> anyhow::Result<()> {
    for item in items {
        if item.path.is_file() {
            std::fs::read(&item.path)?;
        }
    }
    Ok(())
}
