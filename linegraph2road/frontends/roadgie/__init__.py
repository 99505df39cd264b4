"""RoadGIE (paper 004): interactive road segmentation from clicks and scribbles.

* :class:`RoadGIEFrontend` (:mod:`.model`): the lightweight UNet whose input is the image, the
  previous mask and the prompt maps, with the Directional Aggregation Module
  (:class:`DirectionalAggregation`, :mod:`.dam`) at the decoder output; sizes in
  :data:`ROADGIE_SIZES`, built by :func:`build_roadgie` (registered as ``"roadgie"``).
* :mod:`.simulation`: the simulated user (error regions, centre-biased clicks, centre / line /
  Bezier scribbles, expert-guided positive prompts).
* :mod:`.loss`: focal + Dice + prompt-excluded skeleton recall (eq. 6).
* :mod:`.instantiate`: topo-semantic road instantiation (4.3) on top of ``mask2graph``.
* :mod:`.uncertainty`: the expert uncertainty map (eq. 4).

Prompts themselves are :class:`linegraph2road.prompts.Prompt`; rounds on images and rasters
are :mod:`linegraph2road.inference.interactive`.
"""

from __future__ import annotations

from linegraph2road.frontends.roadgie.build import build_roadgie
from linegraph2road.frontends.roadgie.dam import DIRECTIONS, DirectionalAggregation
from linegraph2road.frontends.roadgie.model import ROADGIE_SIZES, RoadGIEFrontend, RoadGIESpec

__all__ = [
    "DIRECTIONS",
    "ROADGIE_SIZES",
    "DirectionalAggregation",
    "RoadGIEFrontend",
    "RoadGIESpec",
    "build_roadgie",
]
