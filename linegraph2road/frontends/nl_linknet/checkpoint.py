"""Weights for NL-LinkNet: a user's ResNet34 encoder, or a whole trained network.

No weights are bundled or downloaded (ImageNet ResNet34 cannot be fetched here): a front-end
starts from random initialisation and says so in ``weights_description`` until one of these
loads something.

Accepted files (read with ``torch.load(weights_only=True)``, or safetensors by extension)
------------------------------------------------------------------------------------------
* :func:`load_encoder_weights`: a torchvision-layout ``resnet34`` state dict (``conv1.weight``,
  ``layer1.0.conv1.weight``...; ``fc.*`` ignored), optionally wrapped as ``{"state_dict": ...}``.
  Only the full-width encoder (widths 64..512) can take it.
* :func:`load_nl_linknet_checkpoint`:

  - ``"l2r"``: this package's own ``NLLinkNetFrontend.state_dict()`` (``net.*``,
    ``feature_proj.*``), or the network alone (``NLLinkNet.state_dict()``: ``encoder.*``,
    ``decoder4.*``...);
  - ``"official"``: the authors' ``weights/*.th`` (``torch.save`` of a ``DataParallel``
    state dict: ``module.firstconv.weight``, ``module.encoder1.0.conv1.weight``,
    ``module.nonlocal3.g.0.weight``, ``module.nonlocal3.W.1.weight``...), D-LinkNet's as well.
    Their unused modules (the pairwise-function models carry ``seb_conv*`` and an unused
    ``dblock``) are ignored when the target has no such module.
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from linegraph2road.errors import CheckpointError, InputFileError

if TYPE_CHECKING:
    from linegraph2road.frontends.nl_linknet.model import NLLinkNetFrontend

__all__ = [
    "load_encoder_weights",
    "load_nl_linknet_checkpoint",
    "official_to_l2r",
    "read_state_dict",
]

_OFFICIAL_RENAMES = (
    (r"^firstconv\.", "encoder.conv1."),
    (r"^firstbn\.", "encoder.bn1."),
    (r"^encoder([1-4])\.", r"encoder.layer\1."),
    (r"^(nonlocal[34])\.(g|phi)\.0\.", r"\1.\2."),
    (r"^(nonlocal[34])\.W\.0\.", r"\1.out_conv."),
    (r"^(nonlocal[34])\.W\.1\.", r"\1.out_bn."),
)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.pth``/``.th``/``.pt`` or ``.safetensors`` file, unwrapped.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    dict of str to torch.Tensor
        The state dict (``{"state_dict": sd}`` and ``{"model": sd}`` wrappers removed).

    Raises
    ------
    InputFileError
        Missing file.
    CheckpointError
        Unreadable, or not a mapping of names to tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"checkpoint not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj: object = load_file(os.fspath(path))
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except (
        RuntimeError,
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        OSError,
        zipfile.BadZipFile,
    ) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"cannot read checkpoint {path}: {first}") from e
    for wrapper in ("state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(wrapper), Mapping):
            obj = obj[wrapper]
    if not isinstance(obj, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    ):
        raise CheckpointError(f"{path} is not a state dict of tensors (got {type(obj).__name__})")
    return dict(obj)


def official_to_l2r(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename the authors' (NLLinkNet / D-LinkNet repository) keys to :class:`NLLinkNet`'s.

    ``module.`` prefixes are dropped; ``firstconv``/``firstbn``/``encoderK`` become
    ``encoder.conv1``/``encoder.bn1``/``encoder.layerK``; a non-local block's ``g.0``, ``phi.0``,
    ``W.0``, ``W.1`` become ``g``, ``phi``, ``out_conv``, ``out_bn``; other names are unchanged.
    """
    out = {}
    for key, value in state.items():
        name = key.removeprefix("module.")
        for pattern, repl in _OFFICIAL_RENAMES:
            name = re.sub(pattern, repl, name)
        out[name] = value
    return out


def _layout(state: Mapping[str, torch.Tensor]) -> str:
    keys = list(state)
    if any(k.startswith(("net.encoder.", "feature_proj.")) for k in keys):
        return "l2r"
    if any(k.startswith("encoder.") and ".layer" in k for k in keys):
        return "l2r-net"
    if any(k.removeprefix("module.").startswith("firstconv.") for k in keys):
        return "official"
    some = ", ".join(sorted(keys)[:3]) or "none"
    raise CheckpointError(
        "not an NL-LinkNet checkpoint: expected net.encoder.* (l2r) or firstconv.* (the "
        f"authors' NLLinkNet/D-LinkNet code); keys start with: {some}"
    )


def load_nl_linknet_checkpoint(frontend: NLLinkNetFrontend, path: str | Path) -> str:
    """Load a whole NL-LinkNet into ``frontend`` (in place); return the layout found.

    Parameters
    ----------
    frontend : NLLinkNetFrontend
        Target; its size, variant and ``mask_channels`` must match the checkpoint (an official
        checkpoint has one output: build with ``mask_channels=1``). Its ``weights_description``
        is updated.
    path : str or Path
        See the module docstring for the accepted layouts.

    Returns
    -------
    str
        ``"l2r"``, ``"l2r-net"`` or ``"official"``. ``feature_proj`` keeps its initialisation
        unless the checkpoint is an ``"l2r"`` front-end state dict.

    Raises
    ------
    InputFileError, CheckpointError
        Missing/unreadable file, another model's checkpoint, or another size/variant (the
        message names the first mismatching tensor).
    """
    path = Path(path)
    state = read_state_dict(path)
    layout = _layout(state)
    if layout == "official":
        state = {f"net.{k}": v for k, v in official_to_l2r(state).items()}
    elif layout == "l2r-net":
        state = {f"net.{k}": v for k, v in state.items()}
    own = frontend.state_dict()
    net = frontend.net
    unused = ("net.seb_", "net.dblock.") if net.dblock is None else ("net.seb_",)
    new = {}
    for key, value in state.items():
        if key not in own:
            if key.startswith(unused) or key.endswith("num_batches_tracked"):
                continue
            raise CheckpointError(
                f"checkpoint {path.name} has {key} {tuple(value.shape)}, which the model "
                f"({frontend.spec.name}: {frontend.describe()}) does not have; build the "
                "matching size/variant"
            )
        if value.shape != own[key].shape:
            hint = " (official checkpoints need mask_channels=1)" if "finalconv3" in key else ""
            raise CheckpointError(
                f"checkpoint tensor {key} has shape {tuple(value.shape)} but the model "
                f"({frontend.spec.name}) needs {tuple(own[key].shape)}{hint}"
            )
        new[key] = value.to(own[key].dtype)
    missing = [k for k in own if k not in new and not k.endswith("num_batches_tracked")]
    if layout != "l2r":
        missing = [k for k in missing if not k.startswith("feature_proj.")]
    if missing:
        raise CheckpointError(
            f"checkpoint {path.name} lacks {len(missing)} tensors the model "
            f"({frontend.spec.name}) needs, e.g. {missing[0]}"
        )
    frontend.load_state_dict(new, strict=False)
    kind = {"official": "authors' NLLinkNet", "l2r": "l2r", "l2r-net": "l2r network"}[layout]
    frontend.weights_description = (
        f"NL-LinkNet {frontend.spec.name} from {path.name} ({kind} layout)"
    )
    return layout


def load_encoder_weights(frontend: NLLinkNetFrontend, path: str | Path) -> list[str]:
    """Load a torchvision-layout ResNet34 state dict into ``frontend``'s encoder (in place).

    Parameters
    ----------
    frontend : NLLinkNetFrontend
        Full-width target (widths 64..512). Afterwards ``encoder_parameters()`` lists the
        encoder (pre-trained) and ``weights_description`` says where it came from; non-local
        blocks, decoder and feature projection keep their initialisation.
    path : str or Path
        ``resnet34`` state dict (``fc.*`` ignored).

    Returns
    -------
    list of str
        Encoder tensor names loaded.

    Raises
    ------
    InputFileError, CheckpointError
        Missing/unreadable file, a tensor missing or of another shape (e.g. a ResNet18/50).
    """
    path = Path(path)
    state = {k.removeprefix("module."): v for k, v in read_state_dict(path).items()}
    own = frontend.net.encoder.state_dict()
    new = {}
    for key, target in own.items():
        if key not in state:
            if key.endswith("num_batches_tracked"):
                continue
            raise CheckpointError(
                f"{path.name} is not a torchvision-layout ResNet34 state dict: it lacks {key}"
            )
        if state[key].shape != target.shape:
            raise CheckpointError(
                f"{path.name}: {key} has shape {tuple(state[key].shape)} but the encoder of "
                f"{frontend.spec.name} needs {tuple(target.shape)} (a ResNet34 of widths "
                f"{frontend.spec.widths}, layers {frontend.spec.layers})"
            )
        new[key] = state[key].to(target.dtype)
    frontend.net.encoder.load_state_dict(new, strict=False)
    frontend.encoder_pretrained = True
    frontend.weights_description = (
        f"ResNet34 encoder from {path.name}; non-local blocks and decoder random init"
    )
    return sorted(new)
