//! What the exporter saves: sources, modules, pickles, resources and raw
//! records.

use std::path::Path;

use tpkg_archive::Destination;
use tpkg_digraph::{Action, ErrorReason, NodeAttributes};

use super::records::{
    check_new_record, collect_py_files, read_source, record_name, write_new_record,
};
use super::storages::{renumber_storages, renumbered};
use super::{Dependencies, ExportError, PackageExporter, SourceKind, SourceOptions};

impl<D: Destination> PackageExporter<D> {
    /// `save_source_string(module, src)`: interns `source` as `module`
    /// (`module.py`) and adds its dependencies (PyTorch's defaults; see
    /// [`save_source_string_with`](Self::save_source_string_with)).
    pub fn save_source_string(&mut self, module: &str, source: &str) -> Result<(), ExportError> {
        self.save_source_string_with(module, source, SourceOptions::default())
    }

    /// `save_source_string(module, src, is_package=..., dependencies=...)`.
    pub fn save_source_string_with(
        &mut self,
        module: &str,
        source: &str,
        options: SourceOptions,
    ) -> Result<(), ExportError> {
        let is_package = options.kind.is_package();
        self.graph.add_node(
            module,
            NodeAttributes {
                source: Some(source.to_owned()),
                is_package: Some(is_package),
                provided: Some(true),
                action: Some(Action::Intern),
                ..Default::default()
            },
        );
        if options.dependencies.added() {
            self.add_dependencies_of(module, source, is_package)?;
        }
        Ok(())
    }

    /// `save_source_file(module, path)`: a file is that module (a package
    /// if it is named `__init__.py`); a folder gives every `**/*.py` under
    /// it, all registered before any is scanned. Their dependencies are
    /// added (PyTorch's default; see
    /// [`save_source_file_with`](Self::save_source_file_with)).
    pub fn save_source_file(&mut self, module: &str, path: &Path) -> Result<(), ExportError> {
        self.save_source_file_with(module, path, Dependencies::Add)
    }

    /// `save_source_file(module, path, dependencies=...)`.
    pub fn save_source_file_with(
        &mut self,
        module: &str,
        path: &Path,
        dependencies: Dependencies,
    ) -> Result<(), ExportError> {
        let options = |kind| SourceOptions { kind, dependencies };
        if !path.is_dir() {
            let is_package = path.file_name().is_some_and(|n| n == "__init__.py");
            let source = read_source(path)?;
            return self.save_source_string_with(
                module,
                &source,
                options(SourceKind::of(is_package)),
            );
        }
        let module_path = module.replace('.', "/");
        let mut to_save = Vec::new();
        let mut files = Vec::new();
        collect_py_files(path, &mut files).map_err(|source| ExportError::Read {
            path: path.to_owned(),
            source,
        })?;
        for file in files {
            let Ok(relative) = file.strip_prefix(path) else {
                continue;
            };
            let relative: Vec<String> = relative
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            let archive_name = format!("{module_path}/{}", relative.join("/"));
            let (name, kind) = match archive_name.strip_suffix("/__init__.py") {
                Some(package) => (package.replace('/', "."), SourceKind::Package),
                None => (
                    archive_name
                        .strip_suffix(".py")
                        .unwrap_or(&archive_name)
                        .replace('/', "."),
                    SourceKind::Module,
                ),
            };
            to_save.push((name, read_source(&file)?, kind));
        }
        for (name, source, kind) in to_save {
            self.save_source_string_with(&name, &source, options(kind))?;
        }
        Ok(())
    }

    /// `save_module(name)`: interns the module's source, found on the
    /// search path, whatever the patterns say, and adds its dependencies
    /// (PyTorch's default; see [`save_module_with`](Self::save_module_with)).
    pub fn save_module(&mut self, module: &str) -> Result<(), ExportError> {
        self.save_module_with(module, Dependencies::Add)
    }

    /// `save_module(name, dependencies=...)`.
    pub fn save_module_with(
        &mut self,
        module: &str,
        dependencies: Dependencies,
    ) -> Result<(), ExportError> {
        if self.finder.find(module).is_none() {
            return Err(ExportError::ModuleNotFound {
                module: module.to_owned(),
            });
        }
        self.intern_module(module, dependencies)
    }

    /// `save_pickle` for an already encoded pickle: writes
    /// `<package>/<resource>` and adds the modules its globals come from
    /// (PyTorch's opcode scan; a global from a mocked module is
    /// `MOCKED_BUT_STILL_USED`). Storages go in with
    /// [`save_storage`](Self::save_storage).
    pub fn save_pickle_bytes(
        &mut self,
        package: &str,
        resource: &str,
        pickle: &[u8],
    ) -> Result<(), ExportError> {
        self.save_pickle_bytes_with(package, resource, pickle, Dependencies::Add)
    }

    /// [`save_pickle_bytes`](Self::save_pickle_bytes) with PyTorch's
    /// `dependencies=` keyword: [`Dependencies::Skip`] writes the pickle
    /// without adding the modules of its globals.
    pub fn save_pickle_bytes_with(
        &mut self,
        package: &str,
        resource: &str,
        pickle: &[u8],
        dependencies: Dependencies,
    ) -> Result<(), ExportError> {
        let protocol = match pickle {
            [0x80, protocol, ..] => *protocol,
            _ => 0,
        };
        if !matches!(protocol, 3 | 4) {
            return Err(ExportError::UnsupportedProtocol(protocol));
        }
        let filename = record_name(package, resource);
        let node = format!("<{package}.{resource}>");
        self.graph.add_node(
            &node,
            NodeAttributes {
                action: Some(Action::Intern),
                provided: Some(true),
                is_pickle: Some(true),
                ..Default::default()
            },
        );
        if dependencies.added() {
            let mut modules: Vec<String> = Vec::new();
            let mut mocked: Vec<(String, Vec<String>)> = Vec::new();
            for global in tpkg_pickle::scan_globals(pickle) {
                if !modules.contains(&global.module) {
                    modules.push(global.module.clone());
                }
                if self.can_implicitly_extern(&global.module) {
                    continue;
                }
                let first = self
                    .patterns
                    .iter()
                    .find(|p| p.group.matches(&global.module));
                if first.is_some_and(|p| p.action == Action::Mock) {
                    match mocked.iter_mut().find(|(m, _)| *m == global.module) {
                        Some((_, fields)) => fields.push(global.name.clone()),
                        None => mocked.push((global.module.clone(), vec![global.name.clone()])),
                    }
                }
            }
            for module in modules {
                self.graph.add_edge(&node, &module);
                match mocked.iter().find(|(m, _)| *m == module) {
                    Some((_, fields)) => {
                        let fields: Vec<String> = fields.iter().map(|f| format!("'{f}'")).collect();
                        self.graph.add_node(
                            &module,
                            NodeAttributes {
                                action: Some(Action::Mock),
                                error: Some(ErrorReason::MockedButStillUsed),
                                error_context: Some(format!(
                                    "Object(s) '[{}]' from module `{module}` was mocked out during packaging but is being used in resource - `{resource}` in package `{package}`. ",
                                    fields.join(", ")
                                )),
                                provided: Some(true),
                                ..Default::default()
                            },
                        );
                    }
                    None => self.add_dependency(&module)?,
                }
            }
        }
        self.write(&filename, pickle)
    }

    /// `save_pickle(package, resource, obj, pickle_protocol=...)` for a
    /// value graph: `graph` is encoded at `protocol` (3, PyTorch's default,
    /// or 4), after the storages its tensors view (`storages[i]` holds
    /// `bytes[i]`; build both with a [`TensorEncoder`], one per pickle).
    /// The exporter numbers storages across the whole package, as
    /// PyTorch's storage context does: an encoder's keys `0, 1, ...` become
    /// the next free keys, so pickles never share a record by accident.
    /// Dependencies come from the pickle's globals, as for
    /// [`save_pickle_bytes`](Self::save_pickle_bytes).
    ///
    /// [`TensorEncoder`]: crate::tensors::TensorEncoder
    pub fn save_pickle(
        &mut self,
        package: &str,
        resource: &str,
        graph: &tpkg_pickle::ValueGraph,
        storages: &[crate::tensors::StorageRef],
        bytes: &[impl AsRef<[u8]>],
        protocol: u8,
    ) -> Result<(), ExportError> {
        if !matches!(protocol, 3 | 4) {
            return Err(ExportError::UnsupportedProtocol(protocol));
        }
        if storages.len() != bytes.len() {
            return Err(ExportError::StorageMismatch {
                storages: storages.len(),
                buffers: bytes.len(),
            });
        }
        let base = self.storages_written;
        let mut graph = graph.clone();
        renumber_storages(&mut graph, base);
        let pickle = tpkg_pickle::encode(&graph, protocol)?;
        for (storage, data) in storages.iter().zip(bytes) {
            let key = renumbered(&storage.key, base);
            self.write(&crate::tensors::storage_record(&key), data.as_ref())?;
        }
        self.storages_written += storages.len() as u64;
        self.save_pickle_bytes(package, resource, &pickle)
    }

    /// Writes a record as is, under its full name (repackaging copies
    /// TorchScript code and other `.data/` records this way).
    pub fn save_raw_record(&mut self, name: &str, bytes: &[u8]) -> Result<(), ExportError> {
        self.write(name, bytes)
    }

    /// [`save_raw_record`](Self::save_raw_record) from a reader of `len`
    /// bytes, streamed (large storages are never held in memory).
    pub fn save_raw_record_from(
        &mut self,
        name: &str,
        reader: impl std::io::Read,
        len: u64,
    ) -> Result<(), ExportError> {
        check_new_record(&self.writer, name)?;
        self.writer.write_record_from(name, reader, len)?;
        Ok(())
    }

    /// Copies record `name` of the package `source` under the same name
    /// (repackaging copies storages and resources this way, without a
    /// copy through memory where the archive layer can avoid one:
    /// [`PackageWriter::copy_record`](tpkg_archive::PackageWriter::copy_record)).
    pub fn copy_raw_record(
        &mut self,
        name: &str,
        source: &tpkg_archive::PackageReader,
    ) -> Result<(), ExportError> {
        check_new_record(&self.writer, name)?;
        self.writer.copy_record(name, source, name)?;
        Ok(())
    }

    /// Writes a tensor storage as `.data/<key>.storage`.
    pub fn save_storage(&mut self, key: &str, bytes: &[u8]) -> Result<(), ExportError> {
        self.write(&crate::tensors::storage_record(key), bytes)
    }

    /// `save_text(package, resource, text)`.
    pub fn save_text(
        &mut self,
        package: &str,
        resource: &str,
        text: &str,
    ) -> Result<(), ExportError> {
        self.save_binary(package, resource, text.as_bytes())
    }

    /// `save_binary(package, resource, bytes)`.
    pub fn save_binary(
        &mut self,
        package: &str,
        resource: &str,
        bytes: &[u8],
    ) -> Result<(), ExportError> {
        self.write(&record_name(package, resource), bytes)
    }

    fn write(&mut self, name: &str, bytes: &[u8]) -> Result<(), ExportError> {
        write_new_record(&mut self.writer, name, bytes)
    }
}
