"""A road graph with the per-edge tags that training labels need (bridge, tunnel, layer).

:class:`~linegraph2road.graph.RoadGraph` stays a pure geometry + topology type; the label
builders need to know which edges are bridges or tunnels and on which OSM ``layer`` they lie, to
find overpass/underpass crossings from tags (Algorithm 3 is the fallback when tags are absent).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from linegraph2road.errors import GraphError
from linegraph2road.graph import RoadGraph

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

__all__ = ["TaggedGraph"]


def _column(values: ArrayLike | None, n: int, dtype: Any, fill: Any, name: str) -> NDArray[Any]:
    if values is None:
        out = np.full(n, fill, dtype=dtype)
    else:
        out = np.array(values, dtype=dtype, copy=True).reshape(-1)
        if out.shape != (n,):
            raise GraphError(f"{name} must have one value per edge ({n}), got {out.shape}")
    out.setflags(write=False)
    return out


@dataclass(frozen=True, eq=False)
class TaggedGraph:
    """A :class:`RoadGraph` plus per-edge tags, aligned with ``graph.edges``.

    Parameters
    ----------
    graph : RoadGraph
        Geometry and topology (pixel coordinates, optional georeference).
    bridge, tunnel : (E,) bool
        OSM ``bridge=*`` / ``tunnel=*`` (anything but ``no``), SpaceNet ``bridge_type``.
    layer : (E,) int16
        OSM ``layer`` (default 0; a bridge without a layer tag is taken as layer 1 and a tunnel
        as -1, the OSM convention).
    tagged : bool
        Whether the source carried bridge/tunnel/layer information at all (OSM does, City-scale
        pickles do not). When False, overpass crossings must come from Algorithm 3.
    highway : (E,) object (str) or None
        Road class for filtering and previews (OSM ``highway``), "" when unknown.
    way_id : (E,) int64 or None
        The OSM way each edge was drawn by (``l2r diff`` reports it), -1 when unknown.
    """

    # Columns may be given as None (or any array-like); __post_init__ turns them into read-only
    # (E,) arrays, so after construction they are never None.
    graph: RoadGraph
    bridge: NDArray[np.bool_] = None  # type: ignore[assignment]
    tunnel: NDArray[np.bool_] = None  # type: ignore[assignment]
    layer: NDArray[np.int16] = None  # type: ignore[assignment]
    tagged: bool = False
    highway: NDArray[np.object_] = None  # type: ignore[assignment]
    way_id: NDArray[np.int64] = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        e = self.graph.num_edges
        object.__setattr__(self, "bridge", _column(self.bridge, e, bool, False, "bridge"))
        object.__setattr__(self, "tunnel", _column(self.tunnel, e, bool, False, "tunnel"))
        object.__setattr__(self, "layer", _column(self.layer, e, np.int16, 0, "layer"))
        object.__setattr__(self, "highway", _column(self.highway, e, object, "", "highway"))
        object.__setattr__(self, "way_id", _column(self.way_id, e, np.int64, -1, "way_id"))

    @classmethod
    def untagged(cls, graph: RoadGraph) -> TaggedGraph:
        """A graph from a source without bridge/tunnel/layer tags (benchmark pickles)."""
        return cls(graph, tagged=False)

    def select_edges(self, keep: ArrayLike) -> TaggedGraph:
        """Keep the edges where the (E,) boolean ``keep`` is true, tags following them."""
        m = np.asarray(keep, dtype=bool)
        return TaggedGraph(
            self.graph.subgraph_edges(m),
            self.bridge[m],
            self.tunnel[m],
            self.layer[m],
            self.tagged,
            self.highway[m],
            self.way_id[m],
        )

    def level(self) -> NDArray[np.int16]:
        """(E,) vertical level of each edge: ``layer``, never 0 for a bridge (1) or tunnel (-1)."""
        lv = self.layer.copy()
        lv[(lv == 0) & self.bridge] = 1
        lv[(lv == 0) & self.tunnel] = -1
        return lv
