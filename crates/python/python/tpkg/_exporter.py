"""tpkg.PackageExporter: PyTorch's exporter, with modules resolved statically."""

import io as _io
import os as _os
import pickle as _pickle
import sys as _sys

from . import _native


def _patterns(include):
    if isinstance(include, str):
        return include
    return list(include)


class _Pickler(_pickle.Pickler):
    """The C pickler with PyTorch's persistent ids for storages (what
    PyTorch's exporter uses with the default importer)."""

    def __init__(self, file, protocol, exporter):
        super().__init__(file, protocol=protocol)
        self._exporter = exporter

    def persistent_id(self, obj):
        return self._exporter._persistent_id(obj)


class PackageExporter:
    """Writes a torch.package as PyTorch's ``torch.package.PackageExporter``
    does, with the same names and semantics, but without importing
    anything: modules are found statically on the ``sys.path`` of
    ``python`` (default: this interpreter, ``sys.executable``) and their
    imports are read from their source.

        with tpkg.PackageExporter("nx.pt") as exporter:
            exporter.intern("networkx.**")
            exporter.extern("**")
            exporter.save_module("networkx")

    ``f`` is a path or a writable binary buffer (written at close);
    ``debug=True`` shows each broken module's dependency path in a
    ``PackagingError``, as in PyTorch.

    ``close()`` (or leaving the ``with`` block) checks the dependency graph
    and writes the file atomically; if modules are broken it raises
    :class:`tpkg.PackagingError` with PyTorch's grouped text and writes
    nothing. An exception inside the ``with`` block also writes nothing.
    """

    def __init__(self, f, *, python=None, debug=False):
        self._buffer = None
        self._scratch = None
        if isinstance(f, (str, bytes, _os.PathLike)):
            self._path = _os.fsdecode(f)
        elif hasattr(f, "write"):
            # A writable buffer, as PyTorch accepts: written at close.
            import tempfile

            self._buffer = f
            self._scratch = tempfile.TemporaryDirectory(prefix="tpkg-export-")
            self._path = _os.path.join(self._scratch.name, "package.pt")
        else:
            raise TypeError(f"tpkg.PackageExporter writes a path or a buffer, not {type(f).__name__}")
        python = _os.fspath(python) if python is not None else _sys.executable
        self._native = _native.Exporter(self._path, python)
        if debug:
            self._native.enable_debug()
        self._storages = {}

    # -- patterns ---------------------------------------------------------

    def intern(self, include, *, exclude=(), allow_empty=True):
        """Matching modules are packaged as source, their dependencies too."""
        self._native.intern(_patterns(include), _patterns(exclude), allow_empty)

    def extern(self, include, *, exclude=(), allow_empty=True):
        """Matching modules are imported from the loading environment."""
        self._native.extern_(_patterns(include), _patterns(exclude), allow_empty)

    def mock(self, include, *, exclude=(), allow_empty=True):
        """Matching modules are replaced by stubs."""
        self._native.mock(_patterns(include), _patterns(exclude), allow_empty)

    def deny(self, include, *, exclude=()):
        """Depending on a matching module is an error at close."""
        self._native.deny(_patterns(include), _patterns(exclude))

    # -- saving -----------------------------------------------------------

    def save_module(self, module_name, dependencies=True):
        """Interns ``module_name``'s source, found on the search path."""
        self._native.save_module(module_name, dependencies)

    def save_source_string(self, module_name, src, is_package=False, dependencies=True):
        """Interns ``src`` as ``module_name``."""
        self._native.save_source_string(module_name, src, is_package, dependencies)

    def save_source_file(self, module_name, file_or_directory, dependencies=True):
        """Interns a file, or every ``.py`` file of a folder, as ``module_name``."""
        self._native.save_source_file(module_name, _os.fspath(file_or_directory), dependencies)

    def save_text(self, package, resource, text):
        """Writes ``text`` as ``package/resource``."""
        self._native.save_text(package, resource, text)

    def save_binary(self, package, resource, binary):
        """Writes ``binary`` as ``package/resource``."""
        self._native.save_binary(package, resource, bytes(binary))

    def save_pickle(self, package, resource, obj, dependencies=True, pickle_protocol=3):
        """Pickles ``obj`` as ``package/resource`` as PyTorch does: tensors'
        storages as ``.data/<n>.storage`` records (shared storages once),
        the modules of the pickle's globals as dependencies."""
        if pickle_protocol not in (3, 4):
            raise ValueError(
                f"torch.package only supports pickle protocols 3 and 4, got {pickle_protocol}"
            )
        buffer = _io.BytesIO()
        self._pending = []
        _Pickler(buffer, pickle_protocol, self).dump(obj)
        pending, self._pending = self._pending, []
        for key, storage in pending:
            self._native.save_storage(key, storage.data_ptr(), storage.nbytes())
        self._native.save_pickle_bytes(package, resource, buffer.getvalue(), dependencies)

    def _persistent_id(self, obj):
        import torch

        if isinstance(obj, torch.storage.TypedStorage):
            untyped = obj._untyped_storage
            storage_type = getattr(torch, obj.pickle_storage_type())
            numel = obj.size()
        elif isinstance(obj, torch.UntypedStorage):
            untyped = obj
            storage_type = torch.UntypedStorage
            numel = obj.nbytes()
        else:
            if hasattr(obj, "__reduce_package__"):
                raise NotImplementedError(
                    f"tpkg.PackageExporter cannot save {type(obj).__name__} "
                    "(__reduce_package__ objects: TorchScript, fx)"
                )
            return None
        location = torch.serialization.location_tag(untyped)
        identity = untyped._cdata
        key = self._storages.get(identity)
        if key is None:
            key = self._storages[identity] = len(self._storages)
            cpu = untyped if untyped.device.type == "cpu" else untyped.cpu()
            # Kept alive with the pending list until written.
            self._pending.append((str(key), cpu))
        return ("storage", storage_type, key, location, numel)

    # -- queries ----------------------------------------------------------

    def interned_modules(self):
        return self._native.interned_modules()

    def externed_modules(self):
        return self._native.externed_modules()

    def mocked_modules(self):
        return self._native.mocked_modules()

    def denied_modules(self):
        return self._native.denied_modules()

    def get_rdeps(self, module_name):
        return self._native.get_rdeps(module_name)

    def dependency_graph_string(self):
        return self._native.dependency_graph_string()

    def all_paths(self, src, dst):
        return self._native.all_paths(src, dst)

    def get_unique_id(self):
        return self._native.get_unique_id()

    # -- closing ----------------------------------------------------------

    def close(self):
        """Checks the graph and writes the package (or raises PackagingError
        and writes nothing)."""
        try:
            self._native.close()
            if self._buffer is not None:
                with open(self._path, "rb") as written:
                    self._buffer.write(written.read())
                self._buffer = None
        finally:
            if self._scratch is not None:
                self._scratch.cleanup()
                self._scratch = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        if exc_type is not None:
            self._native.discard()
            if self._scratch is not None:
                self._scratch.cleanup()
                self._scratch = None
            return
        self.close()
