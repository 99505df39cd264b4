"""The restricted unpickler: plain data loads, anything that could run code is refused."""

from __future__ import annotations

import os
import pickle
import subprocess
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from linegraph2road.errors import FormatError, InputFileError, UnsafePickleError
from linegraph2road.io import safe_load_pickle
from linegraph2road.io._unpickle import BASE_ALLOW, GPICKLE_ALLOW


class _OsSystem:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch {self.marker}",))


class _Eval:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (eval, (f"open({str(self.marker)!r}, 'w').close()",))


class _Subprocess:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (subprocess.call, (["touch", str(self.marker)],))


@pytest.mark.parametrize("payload", [_OsSystem, _Eval, _Subprocess])
@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_code_running_pickles_are_refused_before_running(
    tmp_path: Path, payload: type, protocol: int
) -> None:
    marker = tmp_path / "pwned"
    data = pickle.dumps({(1, 2): [payload(marker)]}, protocol=protocol)
    with pytest.raises(UnsafePickleError, match=r"refusing to load it \(pickles can run code"):
        safe_load_pickle(data)
    path = tmp_path / "evil.p"
    path.write_bytes(data)
    with pytest.raises(UnsafePickleError, match=r"evil\.p: pickle refers to"):
        safe_load_pickle(path)
    assert not marker.exists()


def test_message_names_the_global(tmp_path: Path) -> None:
    data = pickle.dumps(_OsSystem(tmp_path / "m"))
    with pytest.raises(UnsafePickleError) as info:
        safe_load_pickle(data)
    assert f"{os.system.__module__}.system" in str(info.value)
    assert "\n" not in str(info.value)


def test_getattr_and_allowed_module_other_names_are_refused() -> None:
    # builtins is allowed for containers, but not for getattr / __import__.
    data = b"cbuiltins\ngetattr\n(cbuiltins\ndict\nS'keys'\ntR."
    with pytest.raises(UnsafePickleError, match=r"builtins\.getattr"):
        safe_load_pickle(data)
    with pytest.raises(UnsafePickleError, match=r"numpy\.load"):
        safe_load_pickle(b"cnumpy\nload\n(S'x'\ntR.")


def test_persistent_ids_are_refused() -> None:
    with pytest.raises(UnsafePickleError, match="persistent id"):
        safe_load_pickle(b"P123\n.")


def test_plain_data_and_numpy_scalars_load() -> None:
    obj = {(np.int64(3), np.int64(4)): [(np.float64(1.5), 2)], "s": {1, 2}, "f": frozenset()}
    for protocol in range(6):
        assert safe_load_pickle(pickle.dumps(obj, protocol=protocol)) == obj


def test_python2_names_and_numpy1_paths_are_mapped() -> None:
    # Protocol 0 written by Python 2 names __builtin__; numpy 1 pickles name numpy.core.
    data = pickle.dumps({1, 2}, protocol=0)
    assert b"__builtin__" in data
    assert safe_load_pickle(data) == {1, 2}
    scalar = pickle.dumps(np.int64(7), protocol=0)
    old = scalar.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"numpy.core.multiarray" in old
    value = safe_load_pickle(old)
    assert value == 7 and isinstance(value, np.int64)


def test_arrays_and_graphs_need_their_allow_list() -> None:
    with pytest.raises(UnsafePickleError):
        safe_load_pickle(pickle.dumps(np.arange(3)))
    G = nx.MultiGraph([(0, 1)])
    data = pickle.dumps(G, protocol=4)
    with pytest.raises(UnsafePickleError, match="networkx"):
        safe_load_pickle(data)
    assert safe_load_pickle(data, allow=GPICKLE_ALLOW).number_of_edges() == 1
    assert BASE_ALLOW < GPICKLE_ALLOW


@pytest.mark.parametrize(
    "data",
    [
        pickle.dumps({(1, 2): [(3, 4)]}, protocol=2)[:-4],
        pickle.dumps({(1, 2): [(3, 4)]}, protocol=0)[:-3],
        b"this is not a pickle at all",
        b"\x80\x04\x95",
    ],
)
def test_truncated_or_garbage_is_a_format_error(data: bytes) -> None:
    with pytest.raises(FormatError, match="truncated or corrupt pickle") as info:
        safe_load_pickle(data, name="x.p")
    assert not isinstance(info.value, UnsafePickleError)
    assert str(info.value).startswith("x.p: ")


def test_empty_missing_and_directory(tmp_path: Path) -> None:
    empty = tmp_path / "empty.p"
    empty.write_bytes(b"")
    with pytest.raises(FormatError, match=r"empty\.p: empty file"):
        safe_load_pickle(empty)
    with pytest.raises(InputFileError, match="no such file"):
        safe_load_pickle(tmp_path / "missing.p")
    with pytest.raises(InputFileError, match="is a directory"):
        safe_load_pickle(tmp_path)
