"""Writing a map diff for review: GeoPackage layers, a JOSM layer, the terminal summary.

GeoPackage (:func:`write_changes_gpkg`)
    One LineString layer per class, in the diff's metric CRS, with the columns of
    :meth:`~.result.MapDiff.layers` (``length_m`` in metres; unknown confidences and OSM way ids
    are null), plus the summary as layer metadata (``l2r_summary``, JSON) of the
    ``missing_from_ref`` layer.

JOSM (:func:`write_josm`)
    The missing roads as an OpenStreetMap XML file, written with pyosmium: new nodes and ways with
    negative ids (how JOSM marks objects that do not exist on the server yet), one way per missing
    road (split every 2000 nodes, the API's limit), roads that meet sharing their node, tagged
    ``highway=road`` (OSM's "road of unknown class, to be reviewed") and
    ``source=linegraph2road (l2r diff)``. The file's ``upload="false"`` makes JOSM warn before
    anyone uploads the layer itself, and ``<bounds>`` is the compared area. Nothing here ever
    talks to a server: a person opens the file in JOSM, checks each road against the imagery,
    and maps what is right.
"""

from __future__ import annotations

import json
import math
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from linegraph2road import __version__
from linegraph2road.georef import WGS84, transform_points
from linegraph2road.io._atomic import atomic_path
from linegraph2road.io.gpkg import GpkgLayer, write_layers
from linegraph2road.mapdiff.frame import project_polygon
from linegraph2road.mapdiff.result import MapDiff

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "JOSM_SOURCE",
    "MAX_WAY_NODES",
    "json_summary",
    "summary_text",
    "write_changes_gpkg",
    "write_josm",
]

#: The ``source`` tag of every way in the JOSM file.
JOSM_SOURCE = "linegraph2road (l2r diff)"
#: OSM API limit of nodes per way.
MAX_WAY_NODES = 2000


def write_changes_gpkg(diff: MapDiff, path: str | os.PathLike[str]) -> None:
    """Write the four class layers of ``diff`` into a new GeoPackage (atomic).

    Layers ``missing_from_ref``, ``matched``, ``confirmed``, ``not_seen`` (see the module
    docstring); a class without features still gets its (empty) layer.
    """
    layers = []
    summary = json.dumps(_json_safe(diff.summary()))
    for name, rec in diff.layers().items():
        fields = {k: v for k, v in rec.items() if k != "geometry"}
        nulls = {}
        if "osm_way_id" in fields:
            nulls["osm_way_id"] = np.asarray(fields["osm_way_id"]) < 0
        meta = {"l2r_summary": summary} if name == "missing_from_ref" else None
        layers.append(GpkgLayer(name, "LineString", rec["geometry"], fields, nulls, meta))
    write_layers(path, layers, crs=diff.crs_code)


def _ways(diff: MapDiff) -> Iterator[tuple[int, list[int]]]:
    """``(road index, node ids)`` of every way: roads cut into runs of at most 2000 nodes."""
    for i, nodes in enumerate(diff.missing.nodes):
        ids = nodes.tolist()
        step = MAX_WAY_NODES - 1
        for k in range(0, max(len(ids) - 1, 1), step):
            yield i, ids[k : k + step + 1]


def write_josm(diff: MapDiff, path: str | os.PathLike[str]) -> None:
    """Write the missing roads of ``diff`` as a JOSM-ready ``.osm`` file (atomic; see the module
    docstring)."""
    import osmium
    import osmium.io

    used = (
        np.unique(np.concatenate(diff.missing.nodes))
        if len(diff.missing)
        else np.zeros(0, np.int64)
    )
    xy = diff.pred.node_xy()[used] if len(used) else np.zeros((0, 2))
    lonlat = transform_points(xy, diff.crs, WGS84)
    osm_id = {int(n): -(k + 1) for k, n in enumerate(used.tolist())}
    header = osmium.io.Header()
    header.set("generator", f"linegraph2road {__version__} (l2r diff)")
    header.set("xml_josm_upload", "false")
    b = project_polygon(diff.area, diff.crs, WGS84).bounds
    header.add_box(osmium.osm.Box(osmium.osm.Location(b[0], b[1]), osmium.osm.Location(b[2], b[3])))
    with atomic_path(path) as tmp:
        target = osmium.io.File(str(tmp), "osm")  # XML whatever the file is called
        writer = osmium.SimpleWriter(target, header=header, overwrite=True)
        try:
            for n, (lon, lat) in zip(used.tolist(), lonlat.tolist(), strict=True):
                writer.add_node(osmium.osm.mutable.Node(id=osm_id[n], location=(lon, lat)))
            tags = {"highway": "road", "source": JOSM_SOURCE}
            for k, (_, nodes) in enumerate(_ways(diff)):
                writer.add_way(
                    osmium.osm.mutable.Way(id=-(k + 1), nodes=[osm_id[n] for n in nodes], tags=tags)
                )
        finally:
            writer.close()


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def summary_text(summary: dict[str, Any]) -> str:
    """The terminal table of a :meth:`MapDiff.summary`."""
    km = summary["km"]
    c = summary["counts"]
    conn = summary["missing_roads_by_connection"]
    share = summary["share_of_reference_confirmed"]
    lines = [
        f"compared area    {summary['area_km2']:.3f} km2 ({summary['crs']})",
        f"prediction       {summary['prediction_km']:.3f} km",
        f"  matched          {km['matched']:.3f} km ({c['matched_pieces']} pieces)",
        f"  missing_from_ref {km['missing_from_ref']:.3f} km in {c['missing_roads']} roads "
        f"(both ends connected {conn['both_ends']}, one end {conn['one_end']}, "
        f"isolated {conn['isolated']})",
        f"reference        {summary['reference_km']:.3f} km",
        f"  confirmed        {km['confirmed']:.3f} km ({c['confirmed_pieces']} pieces)",
        f"  not_seen         {km['not_seen']:.3f} km ({c['not_seen_pieces']} pieces)",
        "share of the reference confirmed: "
        + ("n/a" if share is None else f"{100.0 * share:.1f} %"),
    ]
    return "\n".join(lines)


def json_summary(summary: dict[str, Any]) -> str:
    """``summary`` as indented JSON (NaN -> null)."""
    return json.dumps(_json_safe(summary), indent=2)
