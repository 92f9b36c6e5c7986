//! PyTorch's `PackageImporter.file_structure()`: a package's records as a
//! tree, filtered by `/` glob patterns, printed with box characters.

use std::collections::BTreeMap;
use std::fmt;

use tpkg_archive::{PackageFormat, PackageReader};
use tpkg_glob::{GlobError, GlobGroup, Patterns, Separator};

/// A folder or file of a package's file structure (PyTorch's `Directory`).
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use tpkg::archive::{PackageReader, PackageWriter, WriteOptions};
/// use tpkg::Directory;
///
/// let mut writer = PackageWriter::in_memory(WriteOptions::default())?;
/// writer.write_record("pkg/__init__.py", b"")?;
/// writer.write_record("pkg/model.pkl", b"")?;
/// let reader = PackageReader::from_bytes(writer.finish()?)?;
///
/// let tree = Directory::of_package(&reader, "<binary>", "**/*.pkl", ())?;
/// assert_eq!(tree.to_string(), "─── <binary>\n    └── pkg\n        └── model.pkl\n");
/// assert!(tree.has_file("pkg/model.pkl"));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directory {
    name: String,
    is_dir: bool,
    children: BTreeMap<String, Directory>,
}

/// An include or exclude pattern of `file_structure` did not compile.
#[derive(Debug, thiserror::Error)]
#[error("file_structure: {0}")]
pub struct FileStructureError(#[from] GlobError);

impl Directory {
    fn new(name: &str, is_dir: bool) -> Self {
        Directory {
            name: name.to_owned(),
            is_dir,
            children: BTreeMap::new(),
        }
    }

    /// The tree of `records` whose names match `include` and not `exclude`
    /// (`/`-separated patterns), under a top folder called `name`.
    ///
    /// ```
    /// let tree = tpkg::Directory::from_records("pkg", ["a/b.py", "c.txt"], "**", ()).unwrap();
    /// assert_eq!(tree.to_string(), "─── pkg\n    ├── a\n    │   └── b.py\n    └── c.txt\n");
    /// ```
    pub fn from_records<'a>(
        name: &str,
        records: impl IntoIterator<Item = &'a str>,
        include: impl Into<Patterns>,
        exclude: impl Into<Patterns>,
    ) -> Result<Self, FileStructureError> {
        let filter = GlobGroup::new(include, exclude, Separator::Slash)?;
        let mut top = Directory::new(name, true);
        for record in records {
            if filter.matches(record) {
                top.add_file(record);
            }
        }
        Ok(top)
    }

    /// PyTorch's `PackageImporter(path).file_structure(include, exclude)`:
    /// the top line names the package as given (`filename`). As PyTorch's
    /// `DirectoryReader` does, a directory package lists no hidden records
    /// (`.data/...`); a zip lists them all.
    pub fn of_package(
        reader: &PackageReader,
        filename: &str,
        include: impl Into<Patterns>,
        exclude: impl Into<Patterns>,
    ) -> Result<Self, FileStructureError> {
        let hidden = |name: &str| name.split('/').any(|part| part.starts_with('.'));
        let directory = reader.format() == PackageFormat::Directory;
        let records = reader
            .records()
            .iter()
            .map(|record| record.name.as_str())
            .filter(|name| !(directory && hidden(name)));
        Self::from_records(filename, records, include, exclude)
    }

    /// The folder's or file's name.
    ///
    /// ```
    /// let tree = tpkg::Directory::from_records("top", ["x"], "**", ()).unwrap();
    /// assert_eq!(tree.name(), "top");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this is a folder.
    ///
    /// ```
    /// let tree = tpkg::Directory::from_records("top", ["x"], "**", ()).unwrap();
    /// assert!(tree.is_dir() && !tree.children()["x"].is_dir());
    /// ```
    pub fn is_dir(&self) -> bool {
        self.is_dir
    }

    /// Children by name.
    pub fn children(&self) -> &BTreeMap<String, Directory> {
        &self.children
    }

    /// PyTorch's `Directory.has_file`: whether the `/`-separated path names
    /// a child (a file, or a folder too).
    ///
    /// ```
    /// let tree = tpkg::Directory::from_records("top", ["package_a/subpackage.py"], "**", ()).unwrap();
    /// assert!(tree.has_file("package_a/subpackage.py"));
    /// assert!(tree.has_file("package_a"));
    /// assert!(!tree.has_file("package_a/subpackage"));
    /// ```
    pub fn has_file(&self, path: &str) -> bool {
        let (child, rest) = match path.split_once('/') {
            Some((child, rest)) => (child, Some(rest)),
            None => (path, None),
        };
        match (self.children.get(child), rest) {
            (Some(_), None) => true,
            (Some(child), Some(rest)) => child.has_file(rest),
            (None, _) => false,
        }
    }

    /// PyTorch's `_add_file`, quirks included: a file and a folder of the
    /// same name share one entry, the later kind winning.
    fn add_file(&mut self, path: &str) {
        let mut parts: Vec<&str> = path.split('/').collect();
        let file = parts.pop().unwrap_or_default();
        let mut dir = self;
        for part in parts {
            dir = dir
                .children
                .entry(part.to_owned())
                .or_insert_with(|| Directory::new(part, true));
        }
        dir.children
            .insert(file.to_owned(), Directory::new(file, false));
    }

    fn render(&self, out: &mut String, preamble: &str, pointer: &str) {
        const SPACE: &str = "    ";
        const BRANCH: &str = "│   ";
        const TEE: &str = "├── ";
        const LAST: &str = "└── ";
        out.push_str(preamble);
        out.push_str(pointer);
        out.push_str(&self.name);
        out.push('\n');
        let preamble = format!("{preamble}{}", if pointer == TEE { BRANCH } else { SPACE });
        let dirs: Vec<&Directory> = self.children.values().filter(|c| c.is_dir).collect();
        let files: Vec<&Directory> = self.children.values().filter(|c| !c.is_dir).collect();
        for (index, dir) in dirs.iter().enumerate() {
            let last = index + 1 == dirs.len() && files.is_empty();
            dir.render(out, &preamble, if last { LAST } else { TEE });
        }
        for (index, file) in files.iter().enumerate() {
            out.push_str(&preamble);
            out.push_str(if index + 1 == files.len() { LAST } else { TEE });
            out.push_str(&file.name);
            out.push('\n');
        }
    }
}

/// PyTorch's `str(Directory)`: `─── name`, then children with `├── `,
/// `└── `, `│   ` and four spaces; folders first, then files, each sorted.
impl fmt::Display for Directory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        self.render(&mut out, "", "─── ");
        f.write_str(&out)
    }
}
