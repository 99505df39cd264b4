"""Sliding-window layouts: where the model's square windows go on an image.

Two named layouts (:data:`WINDOW_LAYOUTS`):

``"auto"`` (the default, fast)
    Windows evenly spread along each axis, the first at 0 and the last flush with the far
    border; per axis the fewest whose neighbours overlap by at least ``min_overlap`` pixels. With
    ``min_overlap = d_nei + 1`` every candidate edge (two vertices at most ``d_nei`` apart) lies
    entirely inside at least one window, so the topology head sees every candidate edge. On a
    2048 px tile: 5 x 5 windows of 512 px, a stride of 384 px, an overlap of 128 px: the paper's
    reduced layout (appendix G, "the smallest number of sliding windows that fully covers the
    image with an overlap greater than d_nei"; 8.03-10.51 s per image instead of 67-87 s on an
    A100, Table 8, at about the same scores, Table 7). It is not SAM-Road's layout.
``"sam-road"`` (the paper's headline numbers)
    SAM-Road's inference layout (``inferencer.py`` with ``get_patch_info_one_img`` of its
    ``dataset.py``): per axis ``n`` windows (``INFER_PATCHES_PER_EDGE``, 16 by default) whose
    origins are ``round(linspace(margin, length - window - margin, n))`` with its City-scale
    ``SAMPLE_MARGIN`` of 64 px. On a 2048 px tile: 16 x 16 windows of 512 px at 64, 158, 252, ...,
    1472 (a stride of about 94 px), the layout behind the paper's City-scale and Global-scale
    results (section 4.3). No window covers the outer ``margin`` pixels: as in SAM-Road, they
    get no mask, no vertex and no edge.

An axis shorter than a window gets one window at 0 that reaches past the image (``"auto"``): the
extraction pads such an image with invalid (nodata) pixels and masks them out of the outputs.

Coordinates: window origins are ``(row0, col0)`` integer pixels of the processed image; a window
covers rows ``[row0, row0 + window)`` and columns ``[col0, col0 + window)``.
"""

from __future__ import annotations

import itertools
import math

from linegraph2road.errors import ParameterError

__all__ = [
    "DEFAULT_MIN_OVERLAP",
    "SAM_ROAD_MARGIN",
    "SAM_ROAD_WINDOWS",
    "WINDOW_LAYOUTS",
    "axis_offsets",
    "check_window_count",
    "layout_grid",
    "margin_offsets",
    "n_windows_for",
    "window_grid",
]

#: Default least overlap in pixels: the paper's d_nei = 64 plus one.
DEFAULT_MIN_OVERLAP = 64 + 1
#: Named window layouts (see the module docstring).
WINDOW_LAYOUTS = ("auto", "sam-road")
#: SAM-Road's windows per axis (``INFER_PATCHES_PER_EDGE``) and border margin in pixels
#: (``SAMPLE_MARGIN`` of its City-scale config).
SAM_ROAD_WINDOWS = 16
SAM_ROAD_MARGIN = 64


def _check_positive(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ParameterError(f"{name} must be a positive integer, got {value!r}")
    return value


def axis_offsets(length: int, *, window: int, n: int) -> list[int]:
    """Start offsets of ``n`` windows of ``window`` px spread evenly over ``length`` px.

    Parameters
    ----------
    length : int
        Image size along the axis, pixels.
    window : int
        Window side, pixels.
    n : int
        Number of windows along the axis (1 when ``length <= window``).

    Returns
    -------
    list of int
        ``n`` offsets, increasing, the first 0 and the last ``length - window`` (0 when the image
        is not longer than a window); offset ``i`` is ``round(i * (length - window) / (n - 1))``.

    Raises
    ------
    ParameterError
        ``n`` windows leave pixels uncovered (``n * window < length``), repeat a window, or more
        than one window is asked for on an axis no longer than a window.
    """
    _check_positive("length", length)
    _check_positive("window", window)
    _check_positive("n", n)
    span = max(length - window, 0)
    if n == 1:
        if span:
            raise ParameterError(
                f"one window of {window} px cannot cover {length} px; use more windows"
            )
        return [0]
    if span == 0:
        raise ParameterError(
            f"{n} windows requested on an axis of {length} px, no longer than one window "
            f"({window} px); use 1"
        )
    offsets = [round(i * span / (n - 1)) for i in range(n)]
    gap = max(b - a for a, b in itertools.pairwise(offsets)) - window
    if gap > 0:
        need = n_windows_for(length, window=window, min_overlap=0)
        raise ParameterError(
            f"{n} windows of {window} px cannot cover {length} px (gaps of {gap} px between "
            f"them): use at least {need} windows per axis, or leave the number unset for the "
            "automatic layout"
        )
    if len(set(offsets)) != n:
        raise ParameterError(
            f"{n} windows of {window} px on {length} px would repeat windows; use fewer windows"
        )
    return offsets


def n_windows_for(length: int, *, window: int = 512, min_overlap: int = DEFAULT_MIN_OVERLAP) -> int:
    """The fewest windows along an axis whose neighbours overlap by ``>= min_overlap`` px.

    Parameters
    ----------
    length : int
        Image size along the axis, pixels.
    window : int
        Window side, pixels (default 512).
    min_overlap : int
        Least overlap of neighbouring windows, pixels (default 65 = d_nei + 1); must be smaller
        than ``window``.

    Returns
    -------
    int
        1 when ``length <= window``; 5 for 2048 px with 512 px windows and the default overlap.
    """
    _check_positive("length", length)
    _check_positive("window", window)
    if not 0 <= min_overlap < window:
        raise ParameterError(
            f"min_overlap must lie in [0, window = {window}) pixels, got {min_overlap}"
        )
    span = length - window
    if span <= 0:
        return 1
    n = max(2, math.ceil(span / (window - min_overlap)) + 1)
    # Rounded offsets can make one step a pixel longer than span / (n - 1): check the real layout.
    while True:
        offsets = axis_offsets(length, window=window, n=n)
        if max(b - a for a, b in itertools.pairwise(offsets)) <= window - min_overlap:
            return n
        n += 1


def window_grid(
    height: int,
    width: int,
    *,
    window: int = 512,
    n: int | None = None,
    min_overlap: int = DEFAULT_MIN_OVERLAP,
) -> list[tuple[int, int]]:
    """Origins of the sliding windows over a ``height x width`` image, row by row.

    Parameters
    ----------
    height, width : int
        Image size in pixels (rows, columns).
    window : int
        Window side in pixels (default 512, the model's window).
    n : int or None
        Windows per axis. None (default): per axis, the fewest whose overlap is at least
        ``min_overlap`` (:func:`n_windows_for`; 5 x 5 for 2048 x 2048). An explicit ``n`` is
        used on every axis longer than a window (axes not longer than a window get 1); it must
        cover the image (else :class:`~linegraph2road.errors.ParameterError` names the least
        number that does), and it may give an overlap below ``min_overlap``, and then candidate
        edges that fit in no window get no score.
    min_overlap : int
        Least overlap in pixels when ``n`` is None (default 65 = d_nei + 1).

    Returns
    -------
    list of (int, int)
        ``(row0, col0)`` of each window, row-major (all windows of the first window row first).
        Windows never start outside the image; on an axis shorter than ``window`` the single
        window reaches past the image (the caller pads).
    """
    _check_positive("height", height)
    _check_positive("width", width)
    if n is not None:
        _check_positive("n", n)

    def count(length: int) -> int:
        if length <= window:
            return 1
        return n if n is not None else n_windows_for(length, window=window, min_overlap=min_overlap)

    rows = axis_offsets(height, window=window, n=count(height))
    cols = axis_offsets(width, window=window, n=count(width))
    return [(r, c) for r in rows for c in cols]


def check_window_count(
    shape: tuple[int, int], *, window: int, n: int | None, layout: str = "auto"
) -> None:
    """Refuse, before any work, a layout that does not fit a ``(H, W)`` image: ``n`` windows
    per axis that cannot cover it (auto), an image too small for the sam-road layout.

    Raises
    ------
    ParameterError
        As :func:`axis_offsets` (the message names the least number of windows that covers) or
        :func:`margin_offsets`.
    """
    if layout != "auto":
        layout_grid(shape[0], shape[1], window=window, layout=layout, n=n)
    elif n is not None:
        window_grid(max(shape[0], window), max(shape[1], window), window=window, n=n)


def margin_offsets(
    length: int, *, window: int = 512, n: int = SAM_ROAD_WINDOWS, margin: int = SAM_ROAD_MARGIN
) -> list[int]:
    """SAM-Road's window origins along one axis: ``round(linspace(margin, length - window -
    margin, n))`` (Python's round, half to even, as its ``get_patch_info_one_img``).

    Parameters
    ----------
    length : int
        Image size along the axis, pixels.
    window : int
        Window side, pixels.
    n : int
        Windows along the axis (SAM-Road: 16).
    margin : int
        Pixels left uncovered at both ends (SAM-Road's City-scale ``SAMPLE_MARGIN``: 64).

    Returns
    -------
    list of int
        ``n`` offsets, increasing; 64, 158, 252, ..., 1472 for 2048 px, 512 px windows, 16.

    Raises
    ------
    ParameterError
        The axis is shorter than ``window + 2 margin``, or ``n`` windows would repeat one or
        leave gaps between them.
    """
    _check_positive("length", length)
    _check_positive("window", window)
    _check_positive("n", n)
    if isinstance(margin, bool) or not isinstance(margin, int) or margin < 0:
        raise ParameterError(f"margin must be an integer >= 0 pixels, got {margin!r}")
    span = length - window - 2 * margin
    if span < 0:
        raise ParameterError(
            f"the sam-road layout needs at least window + 2 x margin = {window + 2 * margin} px "
            f"per axis, the image has {length}; use the auto layout"
        )
    if n == 1:  # linspace(a, b, 1) is [a]: one window at the margin
        if span:
            raise ParameterError(
                f"one window of {window} px cannot cover {length - 2 * margin} px between the "
                "margins; use more windows"
            )
        return [margin]
    offsets = [round(margin + i * span / (n - 1)) for i in range(n)]
    if len(set(offsets)) != n:
        raise ParameterError(
            f"{n} windows of {window} px between {margin} and {length - margin} px would repeat "
            "windows; use fewer windows"
        )
    gap = max(b - a for a, b in itertools.pairwise(offsets)) - window
    if gap > 0:
        raise ParameterError(
            f"{n} windows of {window} px leave gaps of {gap} px between {margin} and "
            f"{length - margin} px; use more windows"
        )
    return offsets


def layout_grid(
    height: int,
    width: int,
    *,
    window: int = 512,
    layout: str = "auto",
    n: int | None = None,
    min_overlap: int = DEFAULT_MIN_OVERLAP,
    margin: int = SAM_ROAD_MARGIN,
) -> list[tuple[int, int]]:
    """Origins of the windows of a named layout over a ``height x width`` image, row by row.

    Parameters
    ----------
    height, width : int
        Image size in pixels (rows, columns).
    window : int
        Window side in pixels (the model's).
    layout : {"auto", "sam-road"}
        ``"auto"``: :func:`window_grid` (``n`` windows per axis, None = the fewest with overlap
        ``>= min_overlap``: 5 x 5 on 2048 px). ``"sam-road"``: :func:`margin_offsets` on both
        axes with ``n`` per axis (None = 16) and ``margin``.
    n : int or None
        Windows per axis (see ``layout``).
    min_overlap : int
        Least overlap of the auto layout, pixels (default 65 = d_nei + 1).
    margin : int
        Uncovered border of the sam-road layout, pixels (default 64).

    Returns
    -------
    list of (int, int)
        ``(row0, col0)`` of each window, row-major.

    Raises
    ------
    ParameterError
        An unknown layout, or one that does not fit the image (the message says why).
    """
    if layout not in WINDOW_LAYOUTS:
        raise ParameterError(f"unknown window layout {layout!r}; choose one of {WINDOW_LAYOUTS}")
    if layout == "auto":
        return window_grid(height, width, window=window, n=n, min_overlap=min_overlap)
    count = SAM_ROAD_WINDOWS if n is None else n
    rows = margin_offsets(height, window=window, n=count, margin=margin)
    cols = margin_offsets(width, window=window, n=count, margin=margin)
    return [(r, c) for r in rows for c in cols]
