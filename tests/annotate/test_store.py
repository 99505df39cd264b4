from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from linegraph2road.annotate.chunks import CHUNK, Chunk, Rect
from linegraph2road.annotate.store import DB_NAME, ImageIdentity, ProjectStore
from linegraph2road.errors import FormatError, InputFileError, ParameterError
from linegraph2road.prompts import Prompt


@pytest.fixture
def identity(tmp_path: Path) -> ImageIdentity:
    image = tmp_path / "image.tif"
    image.write_bytes(b"pretend raster bytes")
    return ImageIdentity.of(image, width=100, height=80, crs=None, transform=None, gsd=1.0)


def road_chunk(row: int) -> Chunk:
    c = Chunk.empty()
    c.road[row, :] = True
    c.covered[:] = True
    return c


def test_prompts_survive_reopening(tmp_path: Path, identity: ImageIdentity) -> None:
    s = ProjectStore(tmp_path / "p", image=identity)
    a = s.add_prompt(Prompt.scribble([[1.5, 2.0], [30.0, 40.25]]))
    b = s.add_prompt(Prompt.click(5.0, 6.0, positive=False))
    assert (a.id, b.id) == (1, 2) and s.revision == 2
    s.close()
    s = ProjectStore(tmp_path / "p", image=identity)
    assert [p.prompt for p in s.prompts()] == [a.prompt, b.prompt]
    assert s.revision == 2
    s.close()


def test_undo_redo_and_a_new_action_drops_the_redo_stack(
    tmp_path: Path, identity: ImageIdentity
) -> None:
    s = ProjectStore(tmp_path / "p", image=identity)
    s.add_prompt(Prompt.click(1.0, 1.0))
    s.edit_mask("accept", {"rect": [0, 0, 10, 10]}, {(0, 0): road_chunk(3)})
    s.edit_mask("road", {}, {(0, 0): road_chunk(7)})
    assert s.chunk((0, 0)) is not None and s.chunk((0, 0)).road[7].all()  # type: ignore[union-attr]
    assert s.undo().kind == "road"  # type: ignore[union-attr]
    assert s.chunk((0, 0)).road[3].all() and not s.chunk((0, 0)).road[7].any()  # type: ignore[union-attr]
    assert s.undo().kind == "accept"  # type: ignore[union-attr]
    assert s.chunk((0, 0)) is None and s.chunk_index() == []
    assert s.redo().kind == "accept"  # type: ignore[union-attr]
    assert s.chunk_index() == [(0, 0)]
    assert s.can_redo()
    s.add_prompt(Prompt.click(2.0, 2.0))  # drops the undone "road"
    assert not s.can_redo() and s.redo() is None
    assert [a.kind for a in s.actions()] == ["prompt", "accept", "prompt"]
    assert s.undo().kind == "prompt"  # type: ignore[union-attr]
    assert len(s.prompts()) == 1
    s.close()


def test_a_failed_edit_changes_nothing(tmp_path: Path, identity: ImageIdentity) -> None:
    s = ProjectStore(tmp_path / "p", image=identity)
    s.edit_mask("accept", {}, {(0, 0): road_chunk(1)})
    rev = s.revision
    with pytest.raises(ParameterError):
        s.edit_mask("road", {}, {(1, 1): road_chunk(2), (-1, 0): road_chunk(2)})
    assert s.revision == rev and s.chunk_index() == [(0, 0)] and len(s.actions()) == 1
    s.close()


def test_pending_prediction_and_accept_clears_it(tmp_path: Path, identity: ImageIdentity) -> None:
    s = ProjectStore(tmp_path / "p", image=identity)
    rect = Rect(3, 4, 20, 10)
    probs = np.linspace(0, 1, 200, dtype=np.float32).reshape(10, 20)
    s.set_pending(rect, probs, "model")
    got = s.pending()
    assert got is not None and got.rect == rect and got.model == "model"
    assert np.abs(got.probs - probs).max() <= 0.5 / 255 + 1e-6
    with pytest.raises(ParameterError):
        s.set_pending(rect, probs.T, "model")
    s.edit_mask("accept", {}, {(0, 0): road_chunk(1)}, clear_pending=True)
    assert s.pending() is None
    s.close()


def test_another_image_is_refused(tmp_path: Path, identity: ImageIdentity) -> None:
    ProjectStore(tmp_path / "p", image=identity).close()
    other = dataclasses.replace(identity, size=identity.size + 1, name="other.tif")
    with pytest.raises(ParameterError, match=r"project for image\.tif"):
        ProjectStore(tmp_path / "p", image=other)
    with pytest.raises(ParameterError, match="gsd"):
        ProjectStore(tmp_path / "p", image=dataclasses.replace(identity, gsd=0.5))


def test_one_server_per_project(tmp_path: Path, identity: ImageIdentity) -> None:
    s = ProjectStore(tmp_path / "p", image=identity)
    with pytest.raises(ParameterError, match="open in another"):
        ProjectStore(tmp_path / "p", image=identity)
    reader = ProjectStore(tmp_path / "p", lock=False)  # export reads while a server runs
    assert reader.image == identity
    reader.close()
    s.close()
    ProjectStore(tmp_path / "p", image=identity).close()


def test_not_a_project(tmp_path: Path, identity: ImageIdentity) -> None:
    with pytest.raises(InputFileError, match="no annotation project"):
        ProjectStore(tmp_path / "empty")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / DB_NAME).write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(FormatError, match="not an l2r annotation project"):
        ProjectStore(bad, image=identity)
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputFileError, match="not a folder"):
        ProjectStore(tmp_path / "file", image=identity)
    assert CHUNK == 256
