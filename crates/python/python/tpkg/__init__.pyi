"""Type stubs for tpkg (PyTorch files without running them)."""

import os
from types import TracebackType
from typing import Any, BinaryIO, Dict, Iterable, List, Mapping, Optional, Sequence, Type, Union

import torch

_Path = Union[str, "os.PathLike[str]"]
_Patterns = Union[str, Sequence[str]]
_Policy = Union[Mapping[str, Sequence[str]], str, None]

__version__: str

class TpkgError(Exception):
    """A PyTorch file could not be read or written by tpkg."""

class UnsafeFileError(TpkgError):
    """Loading the file in PyTorch would run something the audit calls unsafe."""

    global_name: str
    offset: Optional[int]
    record: str
    kind: str
    reason: str
    finding: Dict[str, Any]

class UnreadableFileError(TpkgError):
    """Part of what the load would unpickle cannot be read, so cannot be vetted."""

    global_name: str
    offset: Optional[int]
    record: str
    kind: str
    reason: str
    finding: Dict[str, Any]

class PackagingError(TpkgError):
    """Packaging failed (PyTorch's grouped text); nothing was written."""

def load(
    path: _Path,
    name: Optional[str] = None,
    *,
    mmap: bool = False,
    policy: _Policy = None,
) -> Dict[str, torch.Tensor]:
    """Every tensor of a PyTorch file, keyed by its state-dict path; nothing is run."""

def audit(paths: Union[_Path, Iterable[_Path]], *, policy: _Policy = None) -> Dict[str, Any]:
    """``tpkg audit --json`` as a dict."""

def inspect(path: _Path) -> Dict[str, Any]:
    """``tpkg inspect --json``'s fields as a dict, plus ``tensors``."""

def convert(
    path: _Path, out: _Path, *, to: str = "safetensors", name: Optional[str] = None
) -> Dict[str, Any]:
    """``tpkg convert``: ``to`` is ``"safetensors"``, ``"pt"`` or ``"torchscript"``."""

class PackageExporter:
    """PyTorch's ``torch.package.PackageExporter``, modules resolved statically."""

    def __init__(
        self, f: Union[_Path, BinaryIO], *, python: Optional[_Path] = None, debug: bool = False
    ) -> None: ...
    def intern(
        self, include: _Patterns, *, exclude: _Patterns = ..., allow_empty: bool = True
    ) -> None: ...
    def extern(
        self, include: _Patterns, *, exclude: _Patterns = ..., allow_empty: bool = True
    ) -> None: ...
    def mock(
        self, include: _Patterns, *, exclude: _Patterns = ..., allow_empty: bool = True
    ) -> None: ...
    def deny(self, include: _Patterns, *, exclude: _Patterns = ...) -> None: ...
    def save_module(self, module_name: str, dependencies: bool = True) -> None: ...
    def save_source_string(
        self, module_name: str, src: str, is_package: bool = False, dependencies: bool = True
    ) -> None: ...
    def save_source_file(
        self, module_name: str, file_or_directory: _Path, dependencies: bool = True
    ) -> None: ...
    def save_text(self, package: str, resource: str, text: str) -> None: ...
    def save_binary(self, package: str, resource: str, binary: bytes) -> None: ...
    def save_pickle(
        self,
        package: str,
        resource: str,
        obj: Any,
        dependencies: bool = True,
        pickle_protocol: int = 3,
    ) -> None: ...
    def interned_modules(self) -> List[str]: ...
    def externed_modules(self) -> List[str]: ...
    def mocked_modules(self) -> List[str]: ...
    def denied_modules(self) -> List[str]: ...
    def get_rdeps(self, module_name: str) -> List[str]: ...
    def dependency_graph_string(self) -> str: ...
    def all_paths(self, src: str, dst: str) -> Optional[str]: ...
    def get_unique_id(self) -> str: ...
    def close(self) -> None: ...
    def __enter__(self) -> "PackageExporter": ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc_value: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None: ...
