"""Import ``segment_anything.modeling`` without running ``segment_anything/__init__.py``.

Why
---
The ``segment-anything`` distribution's top-level ``__init__`` imports ``SamPredictor`` and
``SamAutomaticMaskGenerator``, which import ``torchvision``. The torchvision wheels a registry
offers for this torch are CUDA builds that fail to import on the CPU torch used here, and the
library must never depend on torchvision. The network parts we need (``ImageEncoderViT``,
``MaskDecoder``, ``TwoWayTransformer``, ``PromptEncoder``, ``Sam``) live in the ``modeling``
sub-package, which needs only torch and numpy.

How
---
``import segment_anything.modeling`` would execute the parent package first. Instead:

1. :func:`importlib.util.find_spec` locates the parent package *without executing it* (for a
   top-level name it only consults the path finders);
2. a bare :class:`types.ModuleType` named ``segment_anything`` with the real ``__path__`` and
   ``__spec__`` is put into :data:`sys.modules`, so the import system treats the parent as
   already imported and resolves sub-packages from the real directory;
3. ``segment_anything.modeling`` is imported normally (its ``__init__`` imports all its
   submodules, which use only relative imports inside ``modeling``);
4. the stand-in parent is removed again from :data:`sys.modules`, so a later
   ``import segment_anything`` elsewhere in the process behaves exactly as it would have
   (it runs the real ``__init__``, which then finds the already imported ``modeling``).

If the real package is already imported (torchvision present and someone imported it), its
``modeling`` module is simply returned.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types

__all__ = ["sam_modeling"]

_PARENT = "segment_anything"
_MODELING = "segment_anything.modeling"


def sam_modeling() -> types.ModuleType:
    """Return the ``segment_anything.modeling`` module without importing its parent's ``__init__``.

    Returns
    -------
    types.ModuleType
        The real ``segment_anything.modeling`` module (classes ``ImageEncoderViT``,
        ``MaskDecoder``, ``PromptEncoder``, ``TwoWayTransformer``, ``Sam``).

    Raises
    ------
    ImportError
        If the ``segment-anything`` distribution is not installed.
    """
    loaded = sys.modules.get(_MODELING)
    if loaded is not None:
        return loaded
    if _PARENT in sys.modules:  # the real package (or someone else's stand-in) is present
        return importlib.import_module(_MODELING)
    spec = importlib.util.find_spec(_PARENT)
    if spec is None or spec.submodule_search_locations is None:
        raise ImportError(
            "the 'segment-anything' package is not installed; install it with "
            "`pip install segment-anything` (torchvision is not needed)"
        )
    stand_in = types.ModuleType(_PARENT, doc="stand-in parent; see linegraph2road.frontends")
    stand_in.__path__ = list(spec.submodule_search_locations)
    stand_in.__spec__ = spec
    stand_in.__package__ = _PARENT
    stand_in.__file__ = spec.origin
    sys.modules[_PARENT] = stand_in
    try:
        return importlib.import_module(_MODELING)
    finally:
        if sys.modules.get(_PARENT) is stand_in:
            del sys.modules[_PARENT]
