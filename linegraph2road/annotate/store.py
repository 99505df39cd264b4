"""The annotation project store: one SQLite file, the single source of truth (SPEC "Interactive
path").

A project folder holds ``project.sqlite`` and, while a server has it open, a ``lock`` file. The
database holds

* ``meta``: schema version, the image's identity (:class:`ImageIdentity`) and path, and a
  ``revision`` counter bumped by every committed change (the page refreshes when it moves);
* ``actions``: the undoable history, one row per prompt, accept, drawn road or deleted edge,
  ``active = 0`` once undone; ids only grow (never reused after the redo stack is dropped);
* ``prompts``: the clicks and scribbles, each tied to its action (a prompt counts while its
  action is active);
* ``chunks``: the current accepted mask (:mod:`.chunks`), and ``chunk_edits`` the chunks each
  mask action changed, before and after, which is what undo and redo put back;
* ``pending``: the latest prediction of a view (not yet accepted), so a reload shows it.

Every change is one transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``) in WAL mode with
``synchronous=FULL``: a method returns only after its change is on disk, so the server
acknowledges only committed state, and ``kill -9`` (or a power cut) at any moment leaves the last
acknowledged state. A new action after an undo drops the undone actions (the redo stack), as
every editor does.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import sqlite3
import time
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from linegraph2road.annotate.chunks import Chunk, ChunkKey, Rect, decode_chunk, encode_chunk
from linegraph2road.errors import FormatError, InputFileError, ParameterError
from linegraph2road.prompts import Prompt

__all__ = ["DB_NAME", "Action", "ImageIdentity", "Pending", "ProjectStore", "StoredPrompt"]

DB_NAME = "project.sqlite"
SCHEMA_VERSION = 1
_HEAD_BYTES = 1 << 20  # bytes of the image file hashed into its identity

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS actions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, payload TEXT NOT NULL,
    active INTEGER NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS prompts (
    id INTEGER PRIMARY KEY, action_id INTEGER NOT NULL UNIQUE REFERENCES actions(id),
    kind TEXT NOT NULL, positive INTEGER NOT NULL, points TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (
    r INTEGER NOT NULL, c INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (r, c));
CREATE TABLE IF NOT EXISTS chunk_edits (
    action_id INTEGER NOT NULL REFERENCES actions(id), r INTEGER NOT NULL, c INTEGER NOT NULL,
    before BLOB, after BLOB, PRIMARY KEY (action_id, r, c));
CREATE TABLE IF NOT EXISTS pending (
    id INTEGER PRIMARY KEY CHECK (id = 1), rect TEXT NOT NULL, probs BLOB NOT NULL,
    model TEXT NOT NULL);
"""


@dataclass(frozen=True)
class ImageIdentity:
    """What makes a project belong to one image (compared when a project is reopened).

    ``name`` and ``size`` (bytes) of the file, SHA-256 of its first MiB, the raster's
    ``width``/``height``, its CRS (WKT) and transform, and the processing ``gsd`` (m/px; None:
    the raster's own). A copy of the same file elsewhere is the same image.
    """

    name: str
    size: int
    head_sha256: str
    width: int
    height: int
    crs: str | None
    transform: tuple[float, ...] | None
    gsd: float | None

    @classmethod
    def of(
        cls,
        path: str | os.PathLike[str],
        *,
        width: int,
        height: int,
        crs: str | None,
        transform: tuple[float, ...] | None,
        gsd: float | None,
    ) -> ImageIdentity:
        p = Path(path)
        with p.open("rb") as f:
            head = hashlib.sha256(f.read(_HEAD_BYTES)).hexdigest()
        tr = None if transform is None else tuple(float(v) for v in transform)
        return cls(p.name, p.stat().st_size, head, width, height, crs, tr, gsd)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ImageIdentity:
        doc = json.loads(text)
        if doc.get("transform") is not None:
            doc["transform"] = tuple(doc["transform"])
        return cls(**doc)

    def differences(self, other: ImageIdentity) -> list[str]:
        """Human-readable differences (empty when the same image and processing)."""
        out = []
        if (self.size, self.head_sha256) != (other.size, other.head_sha256):
            out.append(f"file {other.name} ({other.size} bytes) is not {self.name} ({self.size})")
        if (self.width, self.height) != (other.width, other.height):
            out.append(f"size {other.width}x{other.height} is not {self.width}x{self.height}")
        if (self.crs, self.transform) != (other.crs, other.transform):
            out.append("its georeference differs")
        if self.gsd != other.gsd:
            out.append(f"--gsd {other.gsd} is not the project's {self.gsd}")
        return out


@dataclass(frozen=True)
class Action:
    """One undoable step: ``kind`` in ``prompt``, ``accept``, ``road``, ``delete_edge``."""

    id: int
    kind: str
    payload: dict[str, Any]
    active: bool


@dataclass(frozen=True)
class StoredPrompt:
    """A prompt and the id of the action that added it."""

    id: int
    prompt: Prompt


@dataclass(frozen=True, eq=False)
class Pending:
    """The latest predicted view: ``rect``, ``probs`` ``(height, width)`` float32 in [0, 1]
    (stored quantised to 1/255) and the model that made it."""

    rect: Rect
    probs: np.ndarray
    model: str


class ProjectStore:
    """A project folder's database (see the module docstring).

    Parameters
    ----------
    folder : path
        The project folder; created when ``image`` is given and it does not exist.
    image : ImageIdentity or None
        The image this session works on. A new project records it; an existing one must match
        it (else :class:`ParameterError` naming the differences). None opens an existing project
        as it is (export).
    image_path : path or None
        Recorded with a new project so that ``--export`` finds the image again.
    lock : bool, default True
        Hold an exclusive lock on the folder while open (one server per project; a second one
        is refused). ``kill -9`` releases it with the process.

    Raises
    ------
    InputFileError
        ``image`` is None and the folder holds no project; the folder cannot be created.
    FormatError
        The database is not an l2r project (or of a newer schema).
    ParameterError
        The project was made for another image; another process holds the lock.
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        *,
        image: ImageIdentity | None = None,
        image_path: str | os.PathLike[str] | None = None,
        lock: bool = True,
    ) -> None:
        self.folder = Path(folder)
        db = self.folder / DB_NAME
        if self.folder.exists() and not self.folder.is_dir():
            raise InputFileError(f"{self.folder}: not a folder; give a project folder")
        if not db.is_file():
            if image is None:
                raise InputFileError(
                    f"{self.folder}: no annotation project here (no {DB_NAME}); start one with "
                    "`l2r annotate IMAGE --project DIR`"
                )
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise InputFileError(f"{self.folder}: cannot create the project ({exc})") from exc
        self._lock_file: IO[str] | None = self._take_lock() if lock else None
        self._cache: dict[ChunkKey, Chunk | None] = {}
        try:
            self._db = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._init(image, image_path)
        except sqlite3.DatabaseError as exc:
            self.close()
            raise FormatError(f"{db}: not an l2r annotation project ({exc})") from exc
        except BaseException:
            self.close()
            raise

    # -- opening --------------------------------------------------------------------------------
    def _take_lock(self) -> IO[str]:
        f = (self.folder / "lock").open("a+", encoding="utf-8")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            f.seek(0)
            who = f.read().strip() or "another process"
            f.close()
            raise ParameterError(
                f"{self.folder} is open in another l2r annotate ({who}); stop it first or use "
                "another --project"
            ) from exc
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}")
        f.flush()
        return f

    def _init(self, image: ImageIdentity | None, image_path: Any) -> None:
        self._db.executescript(_SCHEMA)  # idempotent; executescript commits by itself
        meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        if not meta:
            if image is None:
                raise FormatError(f"{self.folder / DB_NAME}: empty project database")
            with self.transaction():
                rows = {
                    "schema": str(SCHEMA_VERSION),
                    "image": image.to_json(),
                    "image_path": str(Path(image_path).resolve()) if image_path else "",
                    "revision": "0",
                    "created": str(time.time()),
                }
                self._db.executemany("INSERT INTO meta VALUES (?, ?)", rows.items())
            meta = rows
        if meta.get("schema") != str(SCHEMA_VERSION):
            raise FormatError(
                f"{self.folder / DB_NAME}: project schema {meta.get('schema')!r}, this l2r reads "
                f"{SCHEMA_VERSION}"
            )
        self.image = ImageIdentity.from_json(meta["image"])
        self.image_path = meta.get("image_path") or None
        if image is not None:
            diff = self.image.differences(image)
            if diff:
                raise ParameterError(
                    f"{self.folder} is a project for {self.image.name}, not this image: "
                    + "; ".join(diff)
                    + ". Open it with its image or give another --project folder"
                )

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (rollback on any exception)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        """Close the database and release the lock."""
        db = getattr(self, "_db", None)
        if db is not None:
            db.close()
            self._db = None  # type: ignore[assignment]
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def __enter__(self) -> ProjectStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- revision -------------------------------------------------------------------------------
    @property
    def revision(self) -> int:
        """Bumped by every committed change."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'revision'").fetchone()
        return int(row[0])

    def _bump(self) -> None:
        self._db.execute(
            "UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) "
            "WHERE key = 'revision'"
        )

    # -- history --------------------------------------------------------------------------------
    def _new_action(self, kind: str, payload: dict[str, Any]) -> int:
        """Drop the redo stack and insert an active action (inside a transaction)."""
        gone = "SELECT id FROM actions WHERE active = 0"
        self._db.execute(f"DELETE FROM prompts WHERE action_id IN ({gone})")
        self._db.execute(f"DELETE FROM chunk_edits WHERE action_id IN ({gone})")
        self._db.execute("DELETE FROM actions WHERE active = 0")
        cur = self._db.execute(
            "INSERT INTO actions (kind, payload, active, created) VALUES (?, ?, 1, ?)",
            (kind, json.dumps(payload), time.time()),
        )
        self._bump()
        return int(cur.lastrowid or 0)

    def actions(self, *, active_only: bool = True) -> list[Action]:
        """The history in order (only the active actions by default)."""
        sql = "SELECT id, kind, payload, active FROM actions"
        sql += " WHERE active = 1 ORDER BY id" if active_only else " ORDER BY id"
        return [Action(i, k, json.loads(p), bool(a)) for i, k, p, a in self._db.execute(sql)]

    def can_undo(self) -> bool:
        return (
            self._db.execute("SELECT 1 FROM actions WHERE active = 1 LIMIT 1").fetchone()
            is not None
        )

    def can_redo(self) -> bool:
        return (
            self._db.execute("SELECT 1 FROM actions WHERE active = 0 LIMIT 1").fetchone()
            is not None
        )

    def undo(self) -> Action | None:
        """Undo the last active action; None when there is none."""
        return self._step("SELECT id FROM actions WHERE active = 1 ORDER BY id DESC", undo=True)

    def redo(self) -> Action | None:
        """Redo the first undone action; None when there is none."""
        return self._step("SELECT id FROM actions WHERE active = 0 ORDER BY id", undo=False)

    def _step(self, find: str, *, undo: bool) -> Action | None:
        with self.transaction():
            row = self._db.execute(find + " LIMIT 1").fetchone()
            if row is None:
                return None
            aid = int(row[0])
            column = "before" if undo else "after"
            edits = self._db.execute(
                f"SELECT r, c, {column} FROM chunk_edits WHERE action_id = ?", (aid,)
            ).fetchall()
            for r, c, blob in edits:
                self._write_chunk_row((int(r), int(c)), blob)
            self._db.execute("UPDATE actions SET active = ? WHERE id = ?", (0 if undo else 1, aid))
            self._bump()
            kind, payload = self._db.execute(
                "SELECT kind, payload FROM actions WHERE id = ?", (aid,)
            ).fetchone()
        for r, c, _ in edits:
            self._cache.pop((int(r), int(c)), None)
        return Action(aid, kind, json.loads(payload), not undo)

    # -- prompts --------------------------------------------------------------------------------
    def add_prompt(self, prompt: Prompt) -> StoredPrompt:
        """Store a prompt as a new action; returns it with its id once committed."""
        if not isinstance(prompt, Prompt):
            raise ParameterError(f"expected a Prompt, got {type(prompt).__name__}")
        payload = {"kind": prompt.kind, "positive": prompt.positive, "n": len(prompt.points)}
        with self.transaction():
            aid = self._new_action("prompt", payload)
            self._db.execute(
                "INSERT INTO prompts (action_id, kind, positive, points) VALUES (?, ?, ?, ?)",
                (aid, prompt.kind, int(prompt.positive), json.dumps(prompt.points.tolist())),
            )
        return StoredPrompt(aid, prompt)

    def prompts(self) -> list[StoredPrompt]:
        """The active prompts, oldest first."""
        rows = self._db.execute(
            "SELECT p.action_id, p.kind, p.positive, p.points FROM prompts p "
            "JOIN actions a ON a.id = p.action_id WHERE a.active = 1 ORDER BY p.action_id"
        ).fetchall()
        return [
            StoredPrompt(int(aid), Prompt(kind, np.array(json.loads(pts)), bool(pos)))
            for aid, kind, pos, pts in rows
        ]

    # -- mask -----------------------------------------------------------------------------------
    def chunk(self, key: ChunkKey) -> Chunk | None:
        """The accepted mask chunk ``(chunk_row, chunk_col)``; None when empty."""
        if key not in self._cache:
            row = self._db.execute(
                "SELECT data FROM chunks WHERE r = ? AND c = ?", (int(key[0]), int(key[1]))
            ).fetchone()
            self._cache[key] = None if row is None else decode_chunk(row[0])
        return self._cache[key]

    def chunk_index(self) -> list[ChunkKey]:
        """Keys of all non-empty chunks, row-major."""
        return [
            (int(r), int(c)) for r, c in self._db.execute("SELECT r, c FROM chunks ORDER BY r, c")
        ]

    def _write_chunk_row(self, key: ChunkKey, blob: bytes | None) -> None:
        if blob is None:
            self._db.execute("DELETE FROM chunks WHERE r = ? AND c = ?", key)
        else:
            self._db.execute("INSERT OR REPLACE INTO chunks VALUES (?, ?, ?)", (*key, blob))

    def edit_mask(
        self,
        kind: str,
        payload: dict[str, Any],
        chunks: dict[ChunkKey, Chunk],
        *,
        clear_pending: bool = False,
    ) -> Action:
        """Replace chunks as one undoable action (``accept``, ``road``, ``delete_edge``).

        ``chunks`` maps keys to their new content (an empty chunk is deleted). The previous
        content of each is kept for undo. ``clear_pending`` drops the pending prediction in the
        same transaction (an accept). Returns the committed action.
        """
        with self.transaction():
            aid = self._new_action(kind, payload)
            if clear_pending:
                self._db.execute("DELETE FROM pending")
            for key, new in chunks.items():
                r, c = int(key[0]), int(key[1])
                if r < 0 or c < 0:
                    raise ParameterError(f"chunk key {key} is outside the image")
                row = self._db.execute(
                    "SELECT data FROM chunks WHERE r = ? AND c = ?", (r, c)
                ).fetchone()
                before = None if row is None else row[0]
                after = None if new.is_empty() else encode_chunk(new)
                self._db.execute(
                    "INSERT INTO chunk_edits VALUES (?, ?, ?, ?, ?)", (aid, r, c, before, after)
                )
                self._write_chunk_row((r, c), after)
        for key in chunks:
            self._cache.pop((int(key[0]), int(key[1])), None)
        return Action(aid, kind, payload, True)

    # -- pending prediction ---------------------------------------------------------------------
    def set_pending(self, rect: Rect, probs: np.ndarray, model: str) -> None:
        """Store the latest prediction of a view (replacing the previous one)."""
        p = np.asarray(probs, dtype=np.float32)
        if p.shape != (rect.height, rect.width):
            raise ParameterError(f"prediction shape {p.shape} is not the view's {rect}")
        q = np.rint(np.clip(np.nan_to_num(p), 0.0, 1.0) * 255).astype(np.uint8)
        with self.transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO pending VALUES (1, ?, ?, ?)",
                (json.dumps(rect.as_list()), zlib.compress(q.tobytes(), 1), model),
            )
            self._bump()

    def clear_pending(self) -> None:
        with self.transaction():
            self._db.execute("DELETE FROM pending")
            self._bump()

    def pending(self) -> Pending | None:
        row = self._db.execute("SELECT rect, probs, model FROM pending WHERE id = 1").fetchone()
        if row is None:
            return None
        rect = Rect.from_list(json.loads(row[0]))
        q = np.frombuffer(zlib.decompress(row[1]), dtype=np.uint8)
        probs = q.reshape(rect.height, rect.width).astype(np.float32) / 255.0
        return Pending(rect, probs, str(row[2]))
