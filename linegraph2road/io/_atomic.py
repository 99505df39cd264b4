"""Write-then-rename, so an interrupted or failed write never leaves a partial output file."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from linegraph2road.errors import OutputError

__all__ = ["atomic_path", "check_writable"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary file keeps ``path``'s suffix so that libraries choosing a driver by extension
    (rasterio, networkx) behave as for the final name. On any exception the temporary file is
    removed and ``path`` is left exactly as it was (absent, or its previous content).
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{final.stem}.", suffix=f".part{final.suffix}", dir=final.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp creates 0600; give the output the permissions a plain open() would have.
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def check_writable(path: str | os.PathLike[str], *, folder: bool = False) -> Path:
    """Check, before any work, that an output can be written at ``path``; nothing is created.

    The nearest existing ancestor must be a folder in which a file can be created (a probe file
    is created and removed there); a missing folder in between is fine (outputs create it).

    Parameters
    ----------
    path : path
        The output file, or with ``folder`` the output folder.
    folder : bool
        ``path`` is a folder (``--save-masks DIR``, ``--plots DIR``): it may exist as a folder.

    Returns
    -------
    Path

    Raises
    ------
    OutputError
        ``path`` is a folder where a file is expected (or a file where a folder is), a part of
        the path is a file, or the folder is read-only / not permitted.
    """
    target = Path(path)
    if target.is_dir() and not folder:
        raise OutputError(f"{target}: is a folder; give an output file name")
    if target.exists() and not target.is_dir() and folder:
        raise OutputError(f"{target}: is a file; give a folder for this output")
    probe_dir = target if (folder and target.is_dir()) else target.parent
    missing = []
    while not probe_dir.exists():
        missing.append(probe_dir.name)
        if probe_dir.parent == probe_dir:
            break
        probe_dir = probe_dir.parent
    if not probe_dir.is_dir():
        raise OutputError(f"cannot write {target}: {probe_dir} is a file, not a folder")
    try:
        fd, name = tempfile.mkstemp(prefix=".l2r-write-check.", dir=probe_dir)
    except OSError as exc:
        raise OutputError(
            f"cannot write {target}: {probe_dir} is not writable ({exc.strerror or exc})"
        ) from exc
    os.close(fd)
    os.unlink(name)
    return target
