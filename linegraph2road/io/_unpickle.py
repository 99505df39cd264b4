"""A pickle loader that refuses to run code.

Loading a pickle can call any importable function (``os.system``, ``builtins.eval``...): the
pickle names a global, the unpickler imports it and calls it. :class:`RestrictedUnpickler` looks
every global up in an explicit allow-list *before* importing anything, and raises
:class:`~linegraph2road.errors.UnsafePickleError` for the rest, so a hostile file fails without
side effects.

Allow-lists
-----------
``BASE_ALLOW``
    What City-scale / Global-scale / SAM-Road graph pickles need: builtin containers and scalars,
    ``collections.defaultdict`` / ``OrderedDict``, ``_codecs.encode`` (how Python 3 stores bytes
    in protocols 0-2), and numpy scalar reconstruction
    (``numpy.core.multiarray.scalar`` + ``numpy.dtype``; numpy 2 moved ``numpy.core`` to
    ``numpy._core``, so the old path is mapped onto the new one).
``GPICKLE_ALLOW``
    ``BASE_ALLOW`` plus networkx graph and view classes and shapely geometry classes, for the
    networkx pickles of CosmiQ's APLS (used by the ``gpickle`` format only).

Pickles written by Python 2 (protocols 0-2) are read with ``encoding="latin1"``, which numpy
documents as the way to read Python 2 numpy scalars; Python 2 module names (``__builtin__``,
``copy_reg``) are mapped to their Python 3 names.
"""

from __future__ import annotations

import importlib
import io
import os
import pickle
import struct
from collections.abc import Iterable
from typing import Any

from linegraph2road.errors import FormatError, InputFileError, UnsafePickleError
from linegraph2road.io._files import check_input_file

__all__ = [
    "BASE_ALLOW",
    "GPICKLE_ALLOW",
    "RestrictedUnpickler",
    "safe_load_pickle",
]

_BUILTINS = (
    "dict",
    "list",
    "tuple",
    "set",
    "frozenset",
    "int",
    "float",
    "complex",
    "bool",
    "str",
    "bytes",
    "bytearray",
)

BASE_ALLOW: frozenset[tuple[str, str]] = frozenset(
    {("builtins", n) for n in _BUILTINS}
    | {
        # Python 3 writes bytes (numpy scalar payloads included) as _codecs.encode(str, "latin1")
        # in protocols 0-2; it only converts text to bytes.
        ("_codecs", "encode"),
        ("collections", "OrderedDict"),
        ("collections", "defaultdict"),
        ("numpy", "dtype"),
        ("numpy._core.multiarray", "scalar"),
    }
)

_NX_CLASSES = {
    "networkx.classes.graph": ("Graph",),
    "networkx.classes.digraph": ("DiGraph",),
    "networkx.classes.multigraph": ("MultiGraph",),
    "networkx.classes.multidigraph": ("MultiDiGraph",),
    "networkx.classes.reportviews": (
        "NodeView",
        "NodeDataView",
        "DegreeView",
        "EdgeView",
        "EdgeDataView",
        "OutEdgeView",
        "InEdgeView",
        "MultiEdgeView",
        "OutMultiEdgeView",
        "InMultiEdgeView",
    ),
    "networkx.classes.coreviews": (
        "AtlasView",
        "AdjacencyView",
        "MultiAdjacencyView",
    ),
}
_SHAPELY_CLASSES = {
    "shapely.geometry.point": ("Point",),
    "shapely.geometry.linestring": ("LineString",),
    "shapely.geometry.polygon": ("Polygon", "LinearRing"),
    "shapely.geometry.multipoint": ("MultiPoint",),
    "shapely.geometry.multilinestring": ("MultiLineString",),
    "shapely.geometry.multipolygon": ("MultiPolygon",),
    "shapely.geometry.collection": ("GeometryCollection",),
    "shapely.io": ("from_wkb",),
    "shapely.wkb": ("loads",),
}

GPICKLE_ALLOW: frozenset[tuple[str, str]] = BASE_ALLOW | frozenset(
    (module, name)
    for table in (_NX_CLASSES, _SHAPELY_CLASSES)
    for module, names in table.items()
    for name in names
)

_MODULE_RENAMES = {"__builtin__": "builtins", "copy_reg": "copyreg"}


def _canonical(module: str, name: str) -> tuple[str, str]:
    """Map Python 2 and numpy 1 module paths onto the names this interpreter uses."""
    module = _MODULE_RENAMES.get(module, module)
    if module == "numpy.core" or module.startswith("numpy.core."):
        module = "numpy._core" + module[len("numpy.core") :]
    return module, name


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler whose ``find_class`` only returns globals from an allow-list.

    Parameters
    ----------
    file : binary file object
        The pickle stream.
    allow : iterable of (module, name)
        The globals the pickle may refer to, in their Python 3 / numpy 2 spelling.
    source : str
        How the stream is named in error messages (usually the file name).
    """

    def __init__(
        self, file: io.BufferedIOBase, *, allow: Iterable[tuple[str, str]], source: str
    ) -> None:
        super().__init__(file, encoding="latin1", fix_imports=False)
        self._allow = frozenset(_canonical(m, n) for m, n in allow)
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        key = _canonical(module, name)
        if key not in self._allow:
            raise UnsafePickleError(
                f"{self._source}: pickle refers to {module}.{name}; refusing to load it "
                "(pickles can run code, and only plain data types are allowed here)"
            )
        obj: Any = importlib.import_module(key[0])
        for part in key[1].split("."):
            obj = getattr(obj, part)
        return obj

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(
            f"{self._source}: pickle uses a persistent id ({pid!r}); refusing to load it"
        )


_LOAD_ERRORS = (
    pickle.UnpicklingError,
    EOFError,
    ValueError,
    TypeError,
    IndexError,
    KeyError,
    AttributeError,
    UnicodeDecodeError,
    OverflowError,
    struct.error,
    ImportError,
)


def safe_load_pickle(
    source: str | os.PathLike[str] | bytes,
    *,
    allow: Iterable[tuple[str, str]] = BASE_ALLOW,
    name: str | None = None,
) -> Any:
    """Unpickle a file or a bytes object without letting it run arbitrary code.

    Parameters
    ----------
    source : path or bytes
        A pickle file, or the pickle's bytes.
    allow : iterable of (module, name), keyword-only
        Globals the pickle may refer to (default :data:`BASE_ALLOW`: containers, scalars, numpy
        scalars). Use :data:`GPICKLE_ALLOW` for networkx graph pickles.
    name : str, optional
        How to name the data in error messages (default: the path, or ``"<bytes>"``).

    Returns
    -------
    object
        The unpickled object.

    Raises
    ------
    InputFileError
        ``source`` is a path that does not exist, is a directory or cannot be read.
    UnsafePickleError
        The pickle refers to a global outside ``allow``; nothing from it was called.
    FormatError
        The data is truncated or not a pickle.
    """
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        label = name or "<bytes>"
    else:
        path = check_input_file(source)
        label = name or str(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputFileError(f"{path}: cannot read file ({exc.strerror})") from exc
    if not data:
        raise FormatError(f"{label}: empty file, expected a pickle")
    try:
        return RestrictedUnpickler(io.BytesIO(data), allow=allow, source=label).load()
    except UnsafePickleError:
        raise
    except _LOAD_ERRORS as exc:
        raise FormatError(
            f"{label}: truncated or corrupt pickle ({type(exc).__name__}: {exc})"
        ) from exc
