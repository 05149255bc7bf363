"""Read MATLAB .mat files into plain Python records.

This is the only module that talks to mat-io. Everything it returns is plain
Python: ``MatObject`` (class name + fields), ``dict`` for structs, ``list`` for
cell and object arrays, ``str`` for text and ``numpy.ndarray`` for numbers, in
MATLAB's own shape and column-major meaning. Nothing downstream needs to know
how mat-io represents MATLAB data.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from codegen import chunks, untrusted
from codegen.diagnostics import ConversionError

# Object references (`[0xDD000000, ndims, dims..., ids..., class]`) that mat-io
# hands back untouched when the file's subsystem is missing.
_MCOS_MAGIC = 0xDD000000

NETWORK_CLASSES = (
    "SeriesNetwork",
    "DAGNetwork",
    "dlnetwork",
    "nnet.cnn.LayerGraph",
)
DETECTOR_CLASSES = (
    "yolov2ObjectDetector",
    "yolov3ObjectDetector",
    "yolov4ObjectDetector",
    "fasterRCNNObjectDetector",
    "fastRCNNObjectDetector",
    "ssdObjectDetector",
)
SHALLOW_CLASSES = ("network",)


@dataclass(frozen=True)
class MatObject:
    """A MATLAB class instance: its class name and saved fields.

    Built-in layers and networks save a single struct named ``any`` (their
    ``saveobj`` result); its fields are merged into ``fields`` so callers see
    one flat mapping whatever the release.
    """

    classname: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    saveobj: bool = False  # fields were saved in an ``any`` struct

    def get(self, name: str, default: Any = None) -> Any:
        return self.fields.get(name, default)

    def __contains__(self, name: str) -> bool:
        return name in self.fields


@dataclass(frozen=True)
class FunctionHandle:
    """A MATLAB function handle: only its text survives in a .mat file."""

    text: str
    kind: str


@dataclass(frozen=True)
class Variable:
    """A top-level variable of a .mat file as listed by its header."""

    name: str
    classname: str


# --------------------------------------------------------------------------
# Entry points


def list_variables(path: Path) -> list[Variable]:
    """List a file's variables without decoding them."""
    info = _decode(path, _whos, str(path), full=False)
    return [Variable(name, str(cls)) for name, (_shape, cls) in info.items()]


def load_variables(path: Path, names: list[str]) -> dict[str, Any]:
    """Decode the named variables into plain records."""
    return _decode(path, _load, path, names)


def list_and_load(
    path: Path, pick: Callable[[list[Variable]], list[str]]
) -> tuple[list[Variable], dict[str, Any]]:
    """List the variables and decode those ``pick`` names, in one child that
    imports mat-io itself: a conversion's only read, overlapping the imports
    this process does meanwhile (``untrusted.meanwhile``)."""
    return _decode(path, _list_and_load, path, pick, import_here=False)


def _list_and_load(
    path: Path, pick: Callable[[list[Variable]], list[str]]
) -> tuple[list[Variable], dict[str, Any]]:
    variables = [Variable(n, str(c)) for n, (_s, c) in _whos(str(path)).items()]
    names = pick(variables)
    return variables, _load(path, names) if names else {}


def _decode(
    path: Path, fn: Any, *args: Any, full: bool = True, import_here: bool = True
) -> Any:
    """Run mat-io on the file in a child process that checks its structure
    first (codegen.untrusted): a damaged file must not crash or exhaust this
    one. mat-io is imported here, once, so later children inherit it, unless
    ``import_here`` is false (the child imports it, in parallel with this
    process)."""
    _check_readable(path)
    if import_here:
        _import_reader()
    try:
        return untrusted.run_isolated(
            path, fn, *args, full=full, prepare=_import_reader
        )
    except (untrusted.Failed, ConversionError) as exc:
        if not full:  # the scan skipped inflating: let the full one say
            untrusted.scan(path)  # precisely what is damaged, where it can
        if isinstance(exc, ConversionError):
            raise
        raise _unreadable(path, exc.type_name, exc.message) from None


def _import_reader() -> None:
    """Import mat-io (a no-op once imported: a forked child inherits it)."""
    with _quiet():
        import matio
        import matio.subsystem.subsys
        import matio.utils.matclass  # noqa: F401


def _whos(path: str) -> dict[str, Any]:
    with _quiet():
        from matio import whosmat

        return whosmat(path)


def _load(path: Path, names: list[str]) -> dict[str, Any]:
    with _quiet(), _heterogeneous_array_fix(), _parallel_chunks():
        from matio import load_from_mat

        raw = load_from_mat(str(path), variable_names=names)
    out: dict[str, Any] = {}
    for name in names:
        if name in raw:
            _check_not_dangling(path, name, raw[name])
            out[name] = to_plain(raw[name])
    return out


# --------------------------------------------------------------------------
# Refusals that can be decided before mat-io runs


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise ConversionError(f"{path.name}: no such file.", hint="Check the path.")
    if path.is_dir():
        raise ConversionError(
            f"{path.name} is a folder, not a .mat file.",
            hint="Pass the .mat file saved with save('net.mat','net').",
        )
    with path.open("rb") as fh:
        head = fh.read(128)
    if head.startswith(b"version https://git-lfs"):
        raise ConversionError(
            f"{path.name} is a Git LFS pointer ({path.stat().st_size} bytes), "
            "not the .mat file itself.",
            hint="Fetch the real file with `git lfs pull` and convert that.",
        )
    if head[:8] == b"\x89HDF\r\n\x1a\n":  # MATLAB puts its header first
        raise ConversionError(
            f"{path.name} is an HDF5 file without MATLAB's 512-byte header, so not "
            "a file saved by MATLAB (save -v7.3 writes one).",
            hint="Pass a file written by MATLAB's save command.",
        )
    if len(head) < 128 or not head.startswith(b"MATLAB"):
        if _looks_like_v4(head):
            return
        raise ConversionError(
            f"{path.name} is not a MATLAB .mat file (its header does not start "
            "with 'MATLAB').",
            hint="Pass a file written by MATLAB's save command.",
        )


def _looks_like_v4(head: bytes) -> bool:
    # Level 4 files have no text header; they cannot hold networks anyway, so
    # let mat-io read them and the "no network" message explain.
    if len(head) < 20:
        return False
    mopt = int.from_bytes(head[:4], "little")
    return mopt in (0, 10, 11) or int.from_bytes(head[:4], "big") in (0, 10, 11)


def _unreadable(path: Path, type_name: str, message: str) -> ConversionError:
    detail = message.strip().splitlines()[0] if message.strip() else ""
    return ConversionError(
        f"{path.name} could not be read as a .mat file; it looks truncated or "
        f"corrupt (the MAT reader says {type_name}{': ' + detail if detail else ''}).",
        hint="Save the network again in MATLAB (save('net.mat','net')) and "
        "copy the file anew.",
    )


def _check_not_dangling(path: Path, name: str, value: Any) -> None:
    # Only the variable itself is checked: inside objects, mat-io leaves
    # function handles in this raw form even in healthy files.
    if (
        isinstance(value, np.ndarray)
        and value.dtype == np.uint32
        and value.size >= 3
        and int(value.ravel()[0]) == _MCOS_MAGIC
    ):
        raise ConversionError(
            f"{path.name}: variable '{name}' holds MATLAB object references but "
            "the file has no object data (its subsystem is missing), so the "
            "network cannot be recovered from it.",
            hint="Save the network again from MATLAB with save('net.mat','net') "
            "and convert the new file.",
        )


# --------------------------------------------------------------------------
# mat-io → plain Python


def to_plain(value: Any) -> Any:
    """Turn a mat-io value into plain Python records (see module docstring)."""
    from matio.utils.matclass import (
        MatlabEnumerationArray,
        MatlabFunction,
        MatlabOpaque,
        MatlabOpaqueArray,
    )

    if isinstance(value, MatlabOpaqueArray):
        return [to_plain(v) for v in np.asarray(value).ravel(order="F")]
    if isinstance(value, MatlabOpaque):
        return _object_to_plain(value)
    if isinstance(value, MatlabFunction):
        return _function_to_plain(value)
    if isinstance(value, MatlabEnumerationArray):
        return [str(getattr(v, "name", v)) for v in np.asarray(value).ravel("F")]
    type_name = type(value).__name__
    if type_name == "DataFrame":
        return {str(c): [to_plain(v) for v in value[c].tolist()] for c in value}
    if type_name == "Categorical":
        return [str(v) for v in np.asarray(value).ravel(order="F")]
    if isinstance(value, np.ndarray):
        return _array_to_plain(value)
    if isinstance(value, (str, np.str_)):
        return str(value)
    return value


def _object_to_plain(obj: Any) -> Any:
    props = obj.properties
    if isinstance(props, tuple):  # an empty object array
        return []
    fields: dict[str, Any] = {}
    saveobj = False
    if isinstance(props, Mapping):
        saved = props.get("any")
        for key, val in props.items():
            if key != "any":
                fields[key] = to_plain(val)
        if saved is not None:
            plain = to_plain(saved)
            if isinstance(plain, dict):
                fields.update(plain)
                saveobj = True
            else:
                fields["any"] = plain
    else:
        fields["value"] = to_plain(props)
    return MatObject(str(obj.classname), fields, saveobj)


def _function_to_plain(value: Any) -> FunctionHandle:
    texts: list[str] = []

    def walk(v: Any) -> None:
        if isinstance(v, (str, np.str_)):
            texts.append(str(v))
        elif isinstance(v, np.ndarray):
            if v.dtype.kind == "U":
                texts.extend(str(s) for s in v.ravel())
            elif v.dtype.names:
                for rec in v.ravel():
                    for name in v.dtype.names:
                        walk(rec[name])
            elif v.dtype.hasobject:
                for item in v.ravel():
                    walk(item)

    walk(np.asarray(value))
    kind = next(
        (t for t in texts if t in ("anonymous", "scopedfunction", "simple")), ""
    )
    text = next((t for t in texts if t not in (kind, "")), "")
    for t in texts:
        if t.startswith("@"):
            text = t
            break
    return FunctionHandle(text=text, kind=kind)


def _array_to_plain(arr: np.ndarray) -> Any:
    if arr.dtype.names:  # struct or struct array
        records = [
            {name: to_plain(rec[name]) for name in arr.dtype.names}
            for rec in arr.ravel(order="F")
        ]
        return records[0] if arr.size == 1 else records
    if arr.dtype.kind == "U":
        if arr.size == 1:
            return str(arr.ravel()[0])
        if arr.size == 0:
            return ""
        return [str(s) for s in arr.ravel(order="F")]
    if arr.dtype.kind == "T":  # MATLAB string arrays
        items = [str(s) for s in arr.ravel(order="F")]
        return items[0] if len(items) == 1 else items
    if arr.dtype.hasobject:  # cell array
        return [to_plain(v) for v in arr.ravel(order="F")]
    return arr


# --------------------------------------------------------------------------
# mat-io workarounds


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@contextlib.contextmanager
def _heterogeneous_array_fix() -> Iterator[None]:
    """Give each element of a heterogeneous object array its own class.

    mat-io 1.0.2 labels every element of a mixed array (a network's
    ``Layers``) with the array's base class ``nnet.cnn.layer.Layer``. The real
    class of each element is in the object's own metadata. Delete this once
    mat-io does it itself.
    """
    from matio.subsystem.subsys import MatSubsystem
    from matio.utils.matclass import MatlabOpaque, MatlabOpaqueArray

    original = MatSubsystem.load_mcos_object

    def load_mcos_object(self: Any, metadata: Any, type_system: Any = "MCOS") -> Any:
        result = original(self, metadata, type_system)
        meta = np.atleast_2d(metadata)
        ndims = int(meta[1, 0])
        count = int(np.prod(meta[2 : 2 + ndims, 0]))
        ids = meta[2 + ndims : 2 + ndims + count, 0]
        objs = (
            np.asarray(result).ravel(order="F")
            if isinstance(result, MatlabOpaqueArray)
            else [result]
        )
        for obj, object_id in zip(objs, ids, strict=False):
            if isinstance(obj, MatlabOpaque) and int(object_id) > 0:
                class_id = self.get_object_metadata(int(object_id))[0]
                obj.classname = self.get_classname(int(class_id))
        return result

    MatSubsystem.load_mcos_object = load_mcos_object
    try:
        yield
    finally:
        MatSubsystem.load_mcos_object = original


@contextlib.contextmanager
def _parallel_chunks() -> Iterator[None]:
    """Let ``codegen.chunks`` read mat-io's big numeric v7.3 datasets on every
    core (logical arrays, marked by an int-decode attribute, stay with mat-io)."""
    from matio.v7.matreader7 import MatRead7

    original = MatRead7.read_numeric

    def read_numeric(self: Any, obj: Any, is_empty: Any = 0) -> Any:
        if is_empty or "MATLAB_int_decode" in obj.attrs:
            return original(self, obj, is_empty)
        arr = chunks.read(obj)
        return original(self, obj, is_empty) if arr is None else arr.T

    MatRead7.read_numeric = read_numeric
    try:
        yield
    finally:
        MatRead7.read_numeric = original


# --------------------------------------------------------------------------
# plain Python → .mat (used to build the project's own example networks)


def write_mat(path: Path, variables: Mapping[str, Any], version: str = "v7") -> None:
    """Write plain records as MATLAB would save them (``save -v7``/``-v7.3``).

    MatObjects built with ``saveobj=True`` are written like built-in layers and
    networks (an ``any`` struct); lists of MatObjects become object arrays of
    the base class ``nnet.cnn.layer.Layer`` like a network's ``Layers``.
    """
    with _quiet(), _writer_fix():
        from matio import save_to_mat

        mdict = {name: _to_matio(value) for name, value in variables.items()}
        save_to_mat(str(path), mdict, version=version)
    # mat-io stamps the current time into the header; keep files reproducible.
    header = b"MATLAB 5.0 MAT-file, written by mat2torch"
    with open(path, "r+b") as fh:
        fh.write(header.ljust(116))


def _to_matio(value: Any) -> Any:
    from matio.utils.matclass import MatlabOpaque, MatlabOpaqueArray

    if isinstance(value, MatObject):
        fields = {k: _to_matio(v) for k, v in value.fields.items()}
        props = {"any": _struct(fields)} if value.saveobj else fields
        return MatlabOpaque(props, value.classname)
    if (
        isinstance(value, list)
        and value
        and all(isinstance(v, MatObject) for v in value)
    ):
        arr = np.empty((len(value), 1), dtype=object)
        for i, v in enumerate(value):
            arr[i, 0] = _to_matio(v)
        return MatlabOpaqueArray(arr, "nnet.cnn.layer.Layer")
    if isinstance(value, dict):
        return _struct({k: _to_matio(v) for k, v in value.items()})
    if isinstance(value, list):
        arr = np.empty((len(value), 1), dtype=object)
        for i, v in enumerate(value):
            arr[i, 0] = _to_matio(v)
        return arr
    if isinstance(value, str):
        return np.array([value]) if value else np.empty((0, 0), dtype="<U1")
    if isinstance(value, bool):
        return np.array([[value]])
    if isinstance(value, (int, float)):
        return np.array([[float(value)]])
    return value


def _struct(fields: Mapping[str, Any]) -> np.ndarray:
    arr = np.empty((1, 1), dtype=[(k, object) for k in fields])
    for k, v in fields.items():
        arr[0, 0][k] = v
    return arr


@contextlib.contextmanager
def _writer_fix() -> Iterator[None]:
    """Let mat-io 1.0.2 write object arrays and keep their base class.

    Its writer walks an object array as if it were a cell array, turning the
    elements into raw metadata before writing the array itself, and then tags
    the array with the last element's class.
    """
    from matio.subsystem.subsys import MatSubsystem
    from matio.utils.matclass import MatlabOpaqueArray

    nested = MatSubsystem.serialize_nested_props
    array_meta = MatSubsystem.set_mcos_object_metadata

    def serialize_nested_props(self: Any, prop_value: Any) -> Any:
        if isinstance(prop_value, MatlabOpaqueArray):
            return self.set_object_metadata(prop_value)
        return nested(self, prop_value)

    def set_mcos_object_metadata(self: Any, obj: Any) -> Any:
        meta = array_meta(self, obj)
        if isinstance(obj, MatlabOpaqueArray):
            meta[-1, 0] = self.set_class_id(obj.classname)
        return meta

    MatSubsystem.serialize_nested_props = serialize_nested_props
    MatSubsystem.set_mcos_object_metadata = set_mcos_object_metadata
    try:
        yield
    finally:
        MatSubsystem.serialize_nested_props = nested
        MatSubsystem.set_mcos_object_metadata = array_meta
