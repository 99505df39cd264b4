"""``l2r annotate``: map roads on your own raster in the browser (SPEC "Interactive path").

The library side of the annotation app: the project store (:mod:`.store`, SQLite, the single
source of truth), the accepted mask's chunks (:mod:`.chunks`), the predictors (:mod:`.predictors`:
RoadGIE from a checkpoint, or the live pixel classifier of :mod:`.classifier` on the filter bank
of :mod:`.features`), graph edits as mask edits (:mod:`.edits`), the graph of the accepted mask
(:mod:`.vectorize`), map tiles (:mod:`.tiles`), the session tying them together
(:mod:`.session`) and the thin web server (:mod:`.server`, with the page in ``static/``).
"""

from __future__ import annotations

from linegraph2road.annotate.chunks import CHUNK, Chunk, Rect
from linegraph2road.annotate.classifier import ClassifierOptions, LiveClassifier
from linegraph2road.annotate.predictors import (
    Predictor,
    RoadGIEPredictor,
    ViewImage,
    make_predictor,
)
from linegraph2road.annotate.session import AnnotationSession, SessionOptions, StaleGraphError
from linegraph2road.annotate.store import ImageIdentity, ProjectStore

__all__ = [
    "CHUNK",
    "AnnotationSession",
    "Chunk",
    "ClassifierOptions",
    "ImageIdentity",
    "LiveClassifier",
    "Predictor",
    "ProjectStore",
    "Rect",
    "RoadGIEPredictor",
    "SessionOptions",
    "StaleGraphError",
    "ViewImage",
    "make_predictor",
]
