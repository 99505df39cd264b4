"""SAM-Road's plain NMS behind the strip interface of the streaming coupled NMS (private helper of
``extract.py``; the Table 4 ablation "w/ NMS").

:func:`linegraph2road.nms.plain_nms` merges the keypoint and road vertices with a second NMS in
which every keypoint outranks every road vertex, wherever they lie; a strip-by-strip version
would need its own undecided-state bookkeeping. This ablation option keeps the stitched masks of
the whole image instead (``3 x H x W`` float32) and decides every vertex once the last strip is
in. Until then no row is final (:attr:`WholeImagePlainNMS.final_rows` is 0), so
:func:`~linegraph2road.inference.extract_graph` keeps the feature maps of all windows and scores
them at the end: memory grows with the image area, unlike the default coupled NMS.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from linegraph2road.nms import Vertices, plain_nms

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["WholeImagePlainNMS"]


class WholeImagePlainNMS:
    """Plain NMS on masks pushed in row strips, with the methods extract.py calls.

    Parameters
    ----------
    height, width : int
        Mask size in pixels.
    t_k, t_r, t_o : float
        Keypoint, road and overpass thresholds (pixels ``> t`` are candidates).
    d_k, d_r : float
        Per-mask suppression radii (keypoint / overpass and road); the merge uses ``d_r``.
    overpass : bool
        False: the model has no overpass head; its channel is ignored.
    """

    def __init__(
        self,
        *,
        height: int,
        width: int,
        t_k: float,
        t_r: float,
        t_o: float,
        d_k: float,
        d_r: float,
        overpass: bool = True,
    ) -> None:
        self.height, self.width = int(height), int(width)
        self.params: dict[str, Any] = {"t_k": t_k, "t_r": t_r, "t_o": t_o, "d_k": d_k, "d_r": d_r}
        self.overpass = bool(overpass)
        self.masks = np.zeros((3, self.height, self.width), dtype=np.float32)
        self.rows_seen = 0
        self.vertices: Vertices | None = None
        self.pix = np.zeros(0, dtype=np.int64)

    @property
    def final_rows(self) -> int:
        """0 until the last strip is in, then every row."""
        return self.height if self.vertices is not None else 0

    def push(self, masks: NDArray[np.float32], *, row0: int, last: bool = False) -> None:
        """Store finished rows ``[row0, row0 + h)`` of the ``(3, h, width)`` masks; after the
        last strip, run :func:`~linegraph2road.nms.plain_nms` on the whole masks."""
        if self.vertices is not None or row0 != self.rows_seen or masks.shape[2] != self.width:
            raise ValueError("strips must be consecutive rows of the declared width, before last")
        self.masks[:, row0 : row0 + masks.shape[1]] = masks
        self.rows_seen = row0 + masks.shape[1]
        if last:
            k, r, o = self.masks
            self.vertices = plain_nms(k, r, o if self.overpass else None, **self.params)
            cols = np.floor(self.vertices.points[:, 0]).astype(np.int64)
            rows = np.floor(self.vertices.points[:, 1]).astype(np.int64)
            self.pix = rows * self.width + cols
            self.masks = np.zeros((3, 0, self.width), dtype=np.float32)  # no longer needed

    def vertices_between(self, row_start: int, row_stop: int) -> tuple[NDArray[Any], NDArray[Any]]:
        """Vertices in rows ``[row_start, row_stop)``: ``pix (K,) int64``, ``kind (K,) int8``."""
        if self.vertices is None:
            raise ValueError("no vertex is final before the last strip")
        sel = (self.pix >= row_start * self.width) & (self.pix < row_stop * self.width)
        return self.pix[sel], self.vertices.kind[sel]

    def result(self) -> tuple[Vertices, NDArray[np.int64]]:
        """All vertices (keypoint, overpass, road; see :func:`~linegraph2road.nms.plain_nms`)
        and the row-major pixel index of each."""
        if self.vertices is None:
            raise ValueError("push the last strip (last=True) before asking for the result")
        return self.vertices, self.pix
