"""The live pixel classifier: the app's model when no checkpoint is given (SPEC "Interactive
path").

As in ilastik's pixel classification, a random forest learns road / not road from the pixels the
user's prompts cover, described by the multi-scale filter bank of :mod:`.features`, and predicts
every pixel of the view. It is retrained whenever the prompts change (a few hundred
milliseconds for a session's worth of scribbles), so every correction shows in the next round.
The forest is scikit-learn's extremely randomized trees (Geurts et al. 2006), the random-forest
variant that draws split thresholds at random: it trained about 2x faster than
``RandomForestClassifier`` on the Vegas tile with the same or better IoU against its ground
truth (``bench/bench_annotate.py --quality`` prints both).

Training samples
----------------
* each prompt's pixels (:func:`~linegraph2road.prompts.rasterize_prompts`: click discs,
  scribble strokes) are samples of its class, weight 1;
* a user who only marks roads gives no "not road" examples, so every positive prompt also
  contributes **weak negatives**: random pixels of a window around it that lie farther than
  ``exclusion_radius`` from any positive prompt, ``weak_negatives`` of them per positive sample,
  with weight ``weak_negative_weight``. Roads cover a small part of an image, so most of these
  are right; the few that fall on unmarked roads are outweighed by the real samples, and
  negative prompts correct the rest.

Speed
-----
Features and prediction run on a ``stride`` x ``stride`` decimated grid (default 2: 2 m cells
of the 1 m/px image, still 3-10 cells across a road) and the probabilities are upsampled
bilinearly; the features of the last views are cached, so a round on an unchanged view is a
retrain (when the prompts changed) plus a forest evaluation. Windows are aligned to the stride
and read with :func:`~.features.context_margin` of context, so a pixel's features are the same
in a training window and in a view. The previous mask is not used (the forest sees the prompts
through its training set).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from linegraph2road.annotate.chunks import Rect
from linegraph2road.annotate.features import (
    DEFAULT_SIGMAS,
    context_margin,
    decimate,
    feature_names,
    filter_features,
)
from linegraph2road.errors import ParameterError
from linegraph2road.prompts import Prompt, rasterize_prompts

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from linegraph2road.annotate.predictors import Reader, ViewImage

__all__ = ["ClassifierOptions", "LiveClassifier"]


@dataclass(frozen=True)
class ClassifierOptions:
    """Options of :class:`LiveClassifier` (defaults measured by ``bench/bench_annotate.py``).

    Attributes
    ----------
    stride : int, default 2
        Features and prediction on a grid decimated by this factor (1: every pixel).
    sigmas : tuple of float, default (0.7, 1.6, 3.5, 5.0)
        Filter scales in cells of the decimated grid (ilastik's defaults, see :mod:`.features`).
    forest : {"extra", "random"}, default "extra"
        scikit-learn's ``ExtraTreesClassifier`` or ``RandomForestClassifier``.
    n_estimators : int, default 32
        Trees in the forest.
    max_depth : int, default 14
        Depth limit of each tree (keeps training and prediction fast).
    window_pad : int, default 48
        Pixels around a prompt's bounding box that its weak negatives are drawn from.
    exclusion_radius : float, default 16.0
        Pixels around positive prompts where no weak negative is drawn.
    weak_negatives : float, default 2.0
        Weak negatives per positive sample.
    weak_negative_weight : float, default 0.1
        Sample weight of a weak negative (prompt samples weigh 1). Lighter weak negatives and a
        wider exclusion fit better: IoU 0.42 against the SpaceNet Vegas ground truth after four
        scribbles, against 0.27 at 8 px / 0.25 / 3 per sample (``bench/bench_annotate.py
        --quality``).
    max_samples : int, default 40000
        Samples kept for training (a random subset when there are more).
    seed : int, default 0
        Seed of the sampling and of the forest: the same prompts give the same model.
    n_jobs : int, default 1
        Threads of the forest (scikit-learn ``n_jobs``).
    """

    stride: int = 2
    sigmas: tuple[float, ...] = DEFAULT_SIGMAS
    forest: str = "extra"
    n_estimators: int = 32
    max_depth: int = 14
    window_pad: int = 48
    exclusion_radius: float = 16.0
    weak_negatives: float = 2.0
    weak_negative_weight: float = 0.1
    max_samples: int = 40_000
    seed: int = 0
    n_jobs: int = 1

    def __post_init__(self) -> None:
        checks = {
            "stride": self.stride >= 1,
            "forest": self.forest in ("extra", "random"),
            "n_estimators": self.n_estimators >= 1,
            "max_depth": self.max_depth >= 1,
            "window_pad": self.window_pad >= 0,
            "exclusion_radius": math.isfinite(self.exclusion_radius) and self.exclusion_radius >= 0,
            "weak_negatives": math.isfinite(self.weak_negatives) and self.weak_negatives >= 0,
            "weak_negative_weight": 0 < self.weak_negative_weight <= 1,
            "max_samples": self.max_samples >= 100,
            "n_jobs": self.n_jobs >= 1 or self.n_jobs == -1,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ParameterError(f"invalid classifier options {bad}: {self}")
        object.__setattr__(self, "sigmas", tuple(float(s) for s in self.sigmas))
        context_margin(self.sigmas)  # validates the scales


@dataclass(frozen=True, eq=False)
class _Samples:
    """Training samples of one prompt: features ``(n, F)``, labels ``(n,)``, weights, and the
    decimated-grid cells ``(n, 2)`` (x, y) they come from."""

    features: NDArray[np.float32]
    labels: NDArray[np.uint8]
    weights: NDArray[np.float32]
    cells: NDArray[np.float64]


class LiveClassifier:
    """Road probabilities from a random forest trained on the session's prompts.

    Parameters
    ----------
    read : callable
        ``read(row0, col0, height, width) -> (image, valid)`` of the processed image (see
        :data:`~.predictors.Reader`); used for the context margins and prompt windows.
    options : ClassifierOptions
    """

    name = "live pixel classifier"

    def __init__(self, read: Reader, *, options: ClassifierOptions | None = None) -> None:
        self.read = read
        self.options = options or ClassifierOptions()
        self._margin = context_margin(self.options.sigmas) * self.options.stride
        self._samples: dict[Prompt, _Samples] = {}
        self._views: OrderedDict[Rect, tuple[NDArray[np.float32], NDArray[np.bool_]]]
        self._views = OrderedDict()
        self._model: Any = None
        self._trained_on: tuple[Prompt, ...] | None = None
        self.last_training: dict[str, float] = {}
        import sklearn.ensemble  # noqa: F401  (imported now, not in the user's first round)

    # -- description ----------------------------------------------------------------------------
    @property
    def description(self) -> str:
        o = self.options
        n = len(feature_names(o.sigmas))
        text = (
            f"live pixel classifier: random forest ({o.forest} trees, {o.n_estimators}) on {n} "
            "multi-scale "
            f"filter features (colour, Gaussian, gradient, LoG, structure tensor at sigma "
            f"{', '.join(f'{s:g}' for s in o.sigmas)} x {o.stride} px), learned from your prompts"
        )
        if self.last_training:
            t = self.last_training
            text += (
                f"; trained on {int(t['positive'])} road / {int(t['negative'])} background "
                f"samples in {t['seconds']:.2f} s"
            )
        return text

    # -- features -------------------------------------------------------------------------------
    def _aligned(self, rect: Rect) -> Rect:
        """``rect`` grown to multiples of the stride."""
        s = self.options.stride
        c0, r0 = (rect.col0 // s) * s, (rect.row0 // s) * s
        c1, r1 = -(-rect.col1 // s) * s, -(-rect.row1 // s) * s
        return Rect(c0, r0, c1 - c0, r1 - r0)

    def _features(self, rect: Rect) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
        """Features ``(h, w, F)`` and validity ``(h, w)`` of the decimated cells of an aligned
        rectangle (which may reach outside the image: zeros there, as the reader gives); cut
        from a cached view when it lies inside one (a prompt drawn on the view)."""
        s, m = self.options.stride, self._margin
        for v, (feats, valid) in self._views.items():
            if (
                v.col0 <= rect.col0
                and v.row0 <= rect.row0
                and rect.col1 <= v.col1
                and rect.row1 <= v.row1
            ):
                r, c = (rect.row0 - v.row0) // s, (rect.col0 - v.col0) // s
                h, w = rect.height // s, rect.width // s
                return feats[r : r + h, c : c + w], valid[r : r + h, c : c + w]
        img, valid = self._read(
            rect.row0 - m, rect.col0 - m, rect.height + 2 * m, rect.width + 2 * m
        )
        feats = filter_features(decimate(img, s), sigmas=self.options.sigmas)
        cm = m // s
        h, w = rect.height // s, rect.width // s
        cells_valid = decimate(valid[None], s)[0] > 0.5
        return feats[cm : cm + h, cm : cm + w], cells_valid[cm : cm + h, cm : cm + w]

    def _read(
        self, row0: int, col0: int, height: int, width: int
    ) -> tuple[NDArray[np.uint8], NDArray[np.bool_]]:
        """The reader, allowing negative corners (zeros and invalid there)."""
        image = np.zeros((3, height, width), dtype=np.uint8)
        valid = np.zeros((height, width), dtype=bool)
        r0, c0 = max(row0, 0), max(col0, 0)
        if r0 >= row0 + height or c0 >= col0 + width:
            return image, valid
        img, ok = self.read(r0, c0, row0 + height - r0, col0 + width - c0)
        image[:, r0 - row0 :, c0 - col0 :] = img
        valid[r0 - row0 :, c0 - col0 :] = ok
        return image, valid

    # -- training -------------------------------------------------------------------------------
    def _prompt_samples(self, prompt: Prompt, positives: Sequence[Prompt]) -> _Samples:
        o, s = self.options, self.options.stride
        pts = prompt.points
        pad = o.window_pad
        lo = np.floor(pts.min(axis=0)).astype(int) - pad
        hi = np.ceil(pts.max(axis=0)).astype(int) + pad + 1
        rect = self._aligned(Rect(int(lo[0]), int(lo[1]), int(hi[0] - lo[0]), int(hi[1] - lo[1])))
        feats, valid = self._features(rect)
        offset = np.array([rect.col0, rect.row0], dtype=np.float64)
        maps = rasterize_prompts([Prompt(prompt.kind, pts - offset, prompt.positive)],
                                 (rect.height, rect.width))  # fmt: skip
        own = decimate(maps[0 if prompt.positive else 1][None], s)[0] > 0
        rows, cols = np.nonzero(own & valid)
        labels = np.full(len(rows), 1 if prompt.positive else 0, dtype=np.uint8)
        weights = np.ones(len(rows), dtype=np.float32)
        if prompt.positive and o.weak_negatives > 0:
            near = rasterize_prompts(
                [Prompt(p.kind, p.points - offset, True) for p in positives],
                (rect.height, rect.width),
            )[0]
            near_cells = decimate(near[None], s)[0] > 0
            far = ndimage.distance_transform_edt(~near_cells) * s > o.exclusion_radius
            cand_r, cand_c = np.nonzero(far & valid)
            n = min(len(cand_r), math.ceil(o.weak_negatives * max(len(rows), 1)))
            rng = np.random.default_rng([o.seed, *np.frombuffer(pts.tobytes(), np.uint32)[:8]])
            pick = rng.choice(len(cand_r), size=n, replace=False) if n else np.zeros(0, int)
            rows = np.concatenate([rows, cand_r[pick]])
            cols = np.concatenate([cols, cand_c[pick]])
            labels = np.concatenate([labels, np.zeros(n, np.uint8)])
            weights = np.concatenate([weights, np.full(n, o.weak_negative_weight, np.float32)])
        cells = np.column_stack([cols + rect.col0 // s, rows + rect.row0 // s]).astype(np.float64)
        return _Samples(feats[rows, cols], labels, weights, cells)

    def _train(self, prompts: Sequence[Prompt]) -> None:
        import time

        from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

        key = tuple(prompts)
        if key == self._trained_on:
            return
        start = time.perf_counter()
        o = self.options
        positives = [p for p in prompts if p.positive]
        live = set(prompts)
        self._samples = {p: v for p, v in self._samples.items() if p in live}
        for p in prompts:
            if p not in self._samples:
                self._samples[p] = self._prompt_samples(p, positives)
        parts = [self._samples[p] for p in prompts]
        self._trained_on = key
        if not parts or not any((sp.labels == 1).any() for sp in parts):
            self._model = None
            self.last_training = {}
            return
        x = np.concatenate([sp.features for sp in parts])
        y = np.concatenate([sp.labels for sp in parts])
        wt = np.concatenate([sp.weights for sp in parts])
        cells = np.concatenate([sp.cells for sp in parts])
        # a weak negative near any positive sample (of another prompt) is dropped
        weak = (y == 0) & (wt < 1)
        if weak.any():
            d, _ = cKDTree(cells[y == 1]).query(cells[weak], k=1)
            drop = np.flatnonzero(weak)[d * o.stride <= o.exclusion_radius]
            keep = np.ones(len(y), dtype=bool)
            keep[drop] = False
            x, y, wt = x[keep], y[keep], wt[keep]
        if len(y) > o.max_samples:
            sel = np.random.default_rng(o.seed).choice(len(y), size=o.max_samples, replace=False)
            x, y, wt = x[sel], y[sel], wt[sel]
        if (y == 0).all() or (y == 1).all():
            self._model = float(y[0])  # one class only: a constant prediction
        else:
            kind = ExtraTreesClassifier if o.forest == "extra" else RandomForestClassifier
            forest = kind(
                n_estimators=o.n_estimators,
                max_depth=o.max_depth,
                min_samples_leaf=2,
                n_jobs=o.n_jobs,
                random_state=o.seed,
            )
            forest.fit(x, y, sample_weight=wt)
            self._model = forest
        self.last_training = {
            "positive": float((y == 1).sum()),
            "negative": float((y == 0).sum()),
            "seconds": time.perf_counter() - start,
        }

    # -- prediction -----------------------------------------------------------------------------
    def predict(
        self,
        view: ViewImage,
        previous: NDArray[np.float32] | None,
        prompts: Sequence[Prompt],
    ) -> NDArray[np.float32]:
        """Road probabilities ``(height, width)`` float32 of the view (see the module docstring).

        All zeros until there is at least one positive prompt. ``previous`` is not used.
        """
        rect = view.rect
        s = self.options.stride
        # one cell more each side: every pixel of the view is interpolated between cells, so
        # its value does not depend on where the view starts
        a = self._aligned(rect)
        aligned = Rect(a.col0 - s, a.row0 - s, a.width + 2 * s, a.height + 2 * s)
        cached = self._views.get(aligned)
        if cached is None:
            cached = self._features(aligned)
            self._views[aligned] = cached
            while len(self._views) > 2:
                self._views.popitem(last=False)
        self._views.move_to_end(aligned)
        self._train(prompts)  # after the view: prompts drawn on it reuse its features
        if self._model is None:
            return np.zeros((rect.height, rect.width), dtype=np.float32)
        feats = cached[0]
        h, w = feats.shape[:2]
        if isinstance(self._model, float):
            cells = np.full((h, w), self._model, dtype=np.float32)
        else:
            proba = self._model.predict_proba(feats.reshape(h * w, -1))
            cells = proba[:, list(self._model.classes_).index(1)].reshape(h, w).astype(np.float32)
        full = cells if s == 1 else ndimage.zoom(cells, s, order=1, mode="nearest", grid_mode=True)
        r0, c0 = rect.row0 - aligned.row0, rect.col0 - aligned.col0
        out = full[r0 : r0 + rect.height, c0 : c0 + rect.width]
        return np.where(view.valid, np.clip(out, 0.0, 1.0), 0.0).astype(np.float32)
