"""The app's road-mask predictors behind one small interface.

A predictor turns the current view and the session's prompts into road probabilities, one
"round" of the RoadGIE loop (SPEC "Interactive path"): ``mask_t = model(image, mask_{t-1},
prompts so far)``. Two implement :class:`Predictor`:

* :class:`~linegraph2road.annotate.classifier.LiveClassifier` -- the default when no checkpoint
  is given: a pixel classifier learned live from the session's prompts;
* :class:`RoadGIEPredictor` -- a trained RoadGIE front-end (``--checkpoint``), through
  :func:`linegraph2road.inference.interactive.predict_round`.

:func:`make_predictor` picks one. Prompts always come in the processed image's pixel
coordinates ``(x, y)`` (the whole project's); each predictor takes what it needs (RoadGIE: the
prompts on the view, shifted into it; the classifier: all of them, as training data).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from linegraph2road.errors import CheckpointError, ParameterError
from linegraph2road.prompts import Prompt

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from linegraph2road.annotate.chunks import Rect

__all__ = ["Predictor", "RoadGIEPredictor", "ViewImage", "make_predictor", "prompts_in_view"]

#: ``read(row0, col0, height, width) -> (image (3, h, w) uint8, valid (h, w) bool)`` of the
#: processed image (:meth:`linegraph2road.inference.RasterSource.read`); reads past the image
#: give zeros and ``valid = False``.
Reader = Callable[[int, int, int, int], "tuple[NDArray[np.uint8], NDArray[np.bool_]]"]


@dataclass(frozen=True, eq=False)
class ViewImage:
    """The view a round runs on.

    Attributes
    ----------
    rect : Rect
        Where the view lies in the processed image (pixels).
    image : (3, height, width) uint8
        Its RGB pixels.
    valid : (height, width) bool
        False at nodata and outside the image.
    """

    rect: Rect
    image: NDArray[np.uint8]
    valid: NDArray[np.bool_]


@runtime_checkable
class Predictor(Protocol):
    """What the app needs from a model.

    ``name`` is short (shown on the page), ``description`` one line (which weights, which
    features). :meth:`predict` returns ``(height, width)`` float32 road probabilities in [0, 1]
    for ``view``, given the previous mask of that view (None in the first round) and every
    active prompt of the project in processed-image pixels.
    """

    name: str

    @property
    def description(self) -> str: ...

    def predict(
        self,
        view: ViewImage,
        previous: NDArray[np.float32] | None,
        prompts: Sequence[Prompt],
    ) -> NDArray[np.float32]: ...


def prompts_in_view(prompts: Sequence[Prompt], rect: Rect) -> list[Prompt]:
    """The prompts on ``rect``, in its pixel frame: clicks inside it, and the parts of scribbles
    inside it (a scribble crossing the view's border is cut there, possibly into several)."""
    import shapely

    out = []
    offset = np.array([rect.col0, rect.row0], dtype=np.float64)
    box = shapely.box(0.0, 0.0, float(rect.width), float(rect.height))
    for p in prompts:
        local = p.points - offset
        if p.kind == "click":
            x, y = local[0]
            if 0 <= x <= rect.width and 0 <= y <= rect.height:
                out.append(Prompt("click", local, p.positive))
            continue
        piece = shapely.intersection(shapely.LineString(local), box)
        for line in shapely.get_parts(piece):
            if isinstance(line, shapely.LineString) and line.length > 0:
                coords = np.clip(shapely.get_coordinates(line), 0.0, [rect.width, rect.height])
                out.append(Prompt("scribble", coords, p.positive))
    return out


class RoadGIEPredictor:
    """A trained RoadGIE front-end (``l2r train`` with the roadgie config).

    Parameters
    ----------
    checkpoint : path
        Front-end checkpoint written by :func:`~linegraph2road.frontends.checkpoint.save_frontend`
        holding the ``roadgie`` front-end.
    device : str, default "cpu"
    precision : {"fp32", "bf16"}, default "fp32"

    Raises
    ------
    InputFileError, CheckpointError
        Missing or unreadable checkpoint, or one of another front-end.
    """

    name = "RoadGIE"

    def __init__(
        self, checkpoint: str | os.PathLike[str], *, device: str = "cpu", precision: str = "fp32"
    ) -> None:
        from linegraph2road.frontends.checkpoint import checkpoint_kind, load_frontend

        path = Path(checkpoint)
        if checkpoint_kind(path) != "frontend":
            raise CheckpointError(
                f"{path.name} is not a RoadGIE front-end checkpoint; l2r annotate --checkpoint "
                "takes a file written by `l2r train roadgie` (leave it out to use the live "
                "classifier)"
            )
        from linegraph2road.frontends.roadgie import RoadGIEFrontend

        loaded = load_frontend(path)
        arch: dict[str, Any] = loaded.frontend.describe()
        if not isinstance(loaded.frontend, RoadGIEFrontend):
            raise CheckpointError(
                f"{path.name} holds the {arch.get('frontend')!r} front-end, not RoadGIE; "
                "l2r annotate needs an interactive (RoadGIE) checkpoint"
            )
        self.model = loaded.frontend
        self.device = device
        self.precision = precision
        self._description = (
            f"RoadGIE {arch.get('size', '?')} from {path.name} "
            f"({sum(p.numel() for p in self.model.parameters()) / 1e6:.1f} M parameters, "
            f"{device} {precision})"
        )

    @property
    def description(self) -> str:
        return self._description

    def predict(
        self,
        view: ViewImage,
        previous: NDArray[np.float32] | None,
        prompts: Sequence[Prompt],
    ) -> NDArray[np.float32]:
        from linegraph2road.inference.interactive import predict_round

        local = prompts_in_view(prompts, view.rect)
        probs = predict_round(
            self.model,
            view.image,
            previous,
            local,
            device=self.device,
            precision=self.precision,
        )
        return np.where(view.valid, probs, 0.0).astype(np.float32)


def make_predictor(
    read: Reader,
    *,
    checkpoint: str | os.PathLike[str] | None = None,
    device: str = "cpu",
    precision: str = "fp32",
    classifier_options: Any = None,
) -> Predictor:
    """RoadGIE from ``checkpoint``, else the live classifier reading pixels with ``read``."""
    if checkpoint is not None:
        if classifier_options is not None:
            raise ParameterError("classifier options apply only without a checkpoint")
        return RoadGIEPredictor(checkpoint, device=device, precision=precision)
    from linegraph2road.annotate.classifier import ClassifierOptions, LiveClassifier

    return LiveClassifier(read, options=classifier_options or ClassifierOptions())
