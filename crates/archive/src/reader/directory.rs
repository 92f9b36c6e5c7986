//! PyTorch's directory form: walking a package folder into records.

use std::collections::HashMap;
use std::io;
use std::path::Path;

use super::{Compression, PackageReader, ReadOptions, RecordInfo, Storage};
use crate::error::{ArchiveError, EntryKind, NameProblem, Result};
use crate::name;

impl PackageReader {
    /// Opens PyTorch's directory form: `root` is the package folder itself
    /// (what unzipping a package creates), and its name is the prefix.
    ///
    /// Unlike PyTorch's `DirectoryReader`, hidden records (`.data/...`) are
    /// listed too, so both forms of one package list the same records.
    /// Symbolic links and special files are refused: they could point
    /// outside the package.
    pub fn open_directory(root: impl AsRef<Path>, options: ReadOptions) -> Result<Self> {
        let root = root.as_ref();
        let label = root.display().to_string();
        let prefix = root
            .file_name()
            .and_then(|name| name.to_str())
            .ok_or_else(|| ArchiveError::BadPrefix {
                prefix: label.clone(),
                reason: "the folder has no UTF-8 name",
            })?
            .to_owned();
        name::validate_prefix(&prefix)?;
        let mut records = Vec::new();
        let walk = walkdir::WalkDir::new(root)
            .follow_links(false)
            .sort_by_file_name()
            .min_depth(1);
        for entry in walk {
            let entry = entry.map_err(|error| {
                let path = error.path().unwrap_or(root).to_path_buf();
                let source = error
                    .into_io_error()
                    .unwrap_or_else(|| io::Error::other("file system loop"));
                ArchiveError::io(path, source)
            })?;
            let file_type = entry.file_type();
            if file_type.is_dir() {
                continue;
            }
            if !file_type.is_file() {
                return Err(ArchiveError::UnsupportedEntry {
                    archive: label,
                    path: entry.path().to_path_buf(),
                    kind: if file_type.is_symlink() {
                        EntryKind::SymbolicLink
                    } else {
                        EntryKind::SpecialFile
                    },
                });
            }
            if records.len() >= options.max_records {
                return Err(ArchiveError::LimitExceeded {
                    archive: label,
                    what: "number of records".to_owned(),
                    value: records.len() as u64 + 1,
                    limit: options.max_records as u64,
                });
            }
            let relative = entry.path().strip_prefix(root).unwrap_or(entry.path());
            let name = relative_record_name(relative).map_err(|problem| ArchiveError::BadName {
                archive: label.clone(),
                name: relative.to_string_lossy().into_owned(),
                offset: None,
                problem,
            })?;
            name::validate_with_limit(&name, options.max_name_len).map_err(|problem| {
                ArchiveError::BadName {
                    archive: label.clone(),
                    name: name.clone(),
                    offset: None,
                    problem,
                }
            })?;
            let size = entry
                .metadata()
                .map_err(|e| ArchiveError::io(entry.path(), e.into()))?
                .len();
            check_size(&label, &name, size, &options)?;
            records.push(RecordInfo {
                name,
                size,
                compressed_size: size,
                compression: Compression::Stored,
                crc32: None,
                data_offset: None,
            });
        }
        if records.is_empty() {
            return Err(ArchiveError::Empty { archive: label });
        }
        Ok(PackageReader {
            label,
            prefix,
            index: index_of(&records),
            zip_index: None,
            records,
            storage: Storage::Directory(root.to_path_buf()),
            options,
        })
    }
}

fn check_size(label: &str, record: &str, size: u64, options: &ReadOptions) -> Result<()> {
    if size > options.max_record_size {
        return Err(ArchiveError::LimitExceeded {
            archive: label.to_owned(),
            what: format!("size of record {record:?}"),
            value: size,
            limit: options.max_record_size,
        });
    }
    Ok(())
}

fn index_of(records: &[RecordInfo]) -> HashMap<String, usize> {
    records
        .iter()
        .enumerate()
        .map(|(i, record)| (record.name.clone(), i))
        .collect()
}

/// `a/b/c` from a relative file system path, refusing non-UTF-8 components.
fn relative_record_name(relative: &Path) -> Result<String, NameProblem> {
    let mut name = String::new();
    for component in relative.components() {
        let std::path::Component::Normal(part) = component else {
            return Err(NameProblem::ParentDirectory);
        };
        let part = part.to_str().ok_or(NameProblem::NotUtf8)?;
        if !name.is_empty() {
            name.push('/');
        }
        name.push_str(part);
    }
    Ok(name)
}
