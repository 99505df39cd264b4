"""The full model (tiny size): training forward, inference helpers, optimiser groups, files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file

from linegraph2road.errors import InputFileError, ParameterError
from linegraph2road.frontends import build_frontend
from linegraph2road.model import (
    CheckpointError,
    LineGraph2Road,
    TopologyHead,
    build_model,
    load_checkpoint,
    load_weights,
    save_checkpoint,
)
from linegraph2road.model import linegraph2road as lg2r_module

WINDOW = 64


def batch() -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (2, 3, WINDOW, WINDOW), generator=gen).to(torch.uint8)
    verts = [
        torch.tensor([[8.5, 8.5], [40.5, 8.5], [40.5, 40.5], [8.5, 40.5]], dtype=torch.float64),
        torch.tensor([[3.5, 60.5], [30.5, 50.5], [60.5, 3.5]], dtype=torch.float64),
    ]
    edges = [torch.tensor([[0, 1], [1, 2], [2, 3], [0, 3], [0, 2]]), torch.tensor([[0, 1], [1, 2]])]
    return images, verts, edges


def tiny(**head: object) -> LineGraph2Road:
    torch.manual_seed(0)
    return build_model("tiny", window_size=WINDOW, **head)


def test_training_forward_shapes_and_gradients() -> None:
    model = tiny().train()
    images, verts, edges = batch()
    out = model(images, verts, edges)
    assert out.mask_logits.shape == (2, 3, WINDOW, WINDOW)
    assert [e.shape for e in out.edge_logits] == [(5,), (2,)]
    masks = torch.rand(2, 3, WINDOW, WINDOW).round()
    labels = torch.tensor([1.0, 1, 1, 1, 0, 1, 0])
    loss = F.binary_cross_entropy_with_logits(out.mask_logits, masks)
    loss = loss + 0.1 * F.binary_cross_entropy_with_logits(torch.cat(out.edge_logits), labels)
    loss.backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert not [n for n, p in trainable if p.grad is None]  # DDP-ready: no unused parameters
    for part in (
        "frontend.image_encoder.",
        "frontend.mask_decoder.",
        "frontend.feature_proj.",
        "head.",
    ):
        assert any(n.startswith(part) and p.grad.abs().sum() > 0 for n, p in trainable), part


def test_inference_helpers_agree_with_forward() -> None:
    model = tiny().eval()
    images, verts, edges = batch()
    with torch.no_grad():
        ref = model(images, verts, edges)
    pred = model.predict_window(images)
    assert pred.mask_probs.dtype == torch.float32 and not pred.mask_probs.requires_grad
    torch.testing.assert_close(pred.mask_probs, torch.sigmoid(ref.mask_logits))
    assert pred.features.shape == (2, 16, WINDOW // 16, WINDOW // 16) and pred.stride == 16
    probs = model.score_edges(pred.features, verts, edges)
    for p, logit in zip(probs, ref.edge_logits, strict=True):
        torch.testing.assert_close(p, torch.sigmoid(logit))
    single = model.predict_window(images[1])  # (3, H, W) works too
    torch.testing.assert_close(single.mask_probs, pred.mask_probs[1:])


def test_bf16_autocast_runs() -> None:
    model = tiny().eval()
    images, verts, edges = batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        pred = model.predict_window(images)
        probs = model.score_edges(pred.features, verts, edges)
    assert pred.mask_probs.dtype == torch.float32 and probs[0].dtype == torch.float32
    assert torch.isfinite(pred.mask_probs).all()


def test_param_groups() -> None:
    model = tiny()
    groups = model.param_groups(1e-3)
    assert [g["name"] for g in groups] == ["encoder", "rest"]
    assert groups[0]["lr"] == pytest.approx(5e-5) and groups[1]["lr"] == 1e-3
    encoder_ids = {id(p) for p in model.frontend.image_encoder.parameters()}
    assert {id(p) for p in groups[0]["params"]} == encoder_ids
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids))
    assert set(ids) == {id(p) for p in model.parameters() if p.requires_grad}
    torch.optim.Adam(groups, lr=1e-3)  # accepted as is


def test_build_model_options() -> None:
    model = tiny(n_sampled=2, gnn="mlp", use_line_graph=False, hidden_dim=32)
    assert model.head.describe()["feature_dim"] == 16
    assert model.describe()["frontend"]["size"] == "tiny"
    assert model.weights_description == "random init (no checkpoint)"
    with pytest.raises(ParameterError, match="feature_dim"):
        LineGraph2Road(
            frontend=build_frontend("sam", "tiny", window_size=WINDOW), head=TopologyHead()
        )


def test_checkpoint_roundtrip(tmp_path: Path) -> None:
    model = tiny().eval()
    images, verts, edges = batch()
    path = tmp_path / "ckpt" / "model.safetensors"
    config = {"epochs": 10, "data": tmp_path, "lr": 1e-3}
    assert save_checkpoint(model, path, config) == path
    assert [p.name for p in path.parent.iterdir()] == ["model.safetensors"]  # no temp file left
    loaded, cfg = load_checkpoint(path)
    assert cfg == {"epochs": 10, "data": str(tmp_path), "lr": 1e-3}
    assert not loaded.training and loaded.weights_description == "l2r checkpoint model.safetensors"
    with torch.no_grad():
        a, b = model(images, verts, edges), loaded(images, verts, edges)
    torch.testing.assert_close(a.mask_logits, b.mask_logits, rtol=0, atol=0)
    torch.testing.assert_close(a.edge_logits, b.edge_logits, rtol=0, atol=0)
    other = tiny()
    assert load_weights(other, path) == cfg
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in other.state_dict().items())


def test_non_overpass_checkpoint_records_its_variant(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model("tiny", window_size=WINDOW, overpass=False).eval()
    assert (model.variant, model.trained_channels) == ("no-overpass", (0, 1))
    path = save_checkpoint(model, tmp_path / "ours.safetensors")
    loaded, _ = load_checkpoint(path)
    assert loaded.variant == "no-overpass"
    images, verts, edges = batch()
    with torch.no_grad():
        a, b = model(images, verts, edges), loaded(images, verts, edges)
    torch.testing.assert_close(a.mask_logits, b.mask_logits, rtol=0, atol=0)
    with pytest.raises(CheckpointError, match="no overpass head"):
        load_weights(tiny(), path)  # the 3-head model is another architecture
    # checkpoints written before the variant existed have no "overpass" key: the 3-head model
    old = tmp_path / "old.safetensors"
    save_checkpoint(tiny(), old)
    with safe_open(str(old), framework="pt") as f:
        meta, state = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    arch = json.loads(meta["architecture"])
    del arch["frontend"]["overpass"]
    save_file(state, str(old), metadata={**meta, "architecture": json.dumps(arch)})
    assert load_checkpoint(old)[0].variant == "overpass"
    load_weights(tiny(), old)


def test_failed_save_keeps_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = tiny()
    path = tmp_path / "model.safetensors"
    save_checkpoint(model, path, {"run": 1})
    before = path.read_bytes()

    def broken(*args: object, **kwargs: object) -> None:
        Path(str(args[1])).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(lg2r_module, "save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(model, path, {"run": 2})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]


def test_wrong_architecture_refused(tmp_path: Path) -> None:
    path = tmp_path / "tiny.safetensors"
    save_checkpoint(tiny(), path)
    with pytest.raises(CheckpointError) as err:
        load_weights(build_model("small", window_size=WINDOW), path)
    assert "is sam/tiny (window 64)" in str(err.value) and "model is sam/small" in str(err.value)
    with pytest.raises(CheckpointError, match="head differs"):
        load_weights(tiny(n_sampled=2), path)
    with pytest.raises(CheckpointError, match="window 32"):
        load_weights(build_model("tiny", window_size=32), path)


def test_bad_checkpoint_files(tmp_path: Path) -> None:
    with pytest.raises(InputFileError):
        load_checkpoint(tmp_path / "missing.safetensors")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        load_checkpoint(garbage)
    sam_pth = tmp_path / "sam.pth"
    torch.save({"image_encoder.pos_embed": torch.zeros(1)}, sam_pth)
    with pytest.raises(CheckpointError):
        load_checkpoint(sam_pth)
    from safetensors.torch import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(CheckpointError, match="--sam-checkpoint"):
        load_checkpoint(foreign)
    unknown = tmp_path / "unknown.safetensors"
    arch = {"frontend": {"frontend": "sam", "size": "vit_z", "window_size": 64}, "head": {}}
    meta = {"format": "linegraph2road", "format_version": "1", "architecture": json.dumps(arch)}
    save_file({"w": torch.zeros(2)}, str(unknown), metadata=meta)
    with pytest.raises(CheckpointError, match="cannot build"):
        load_checkpoint(unknown)
    truncated = tmp_path / "truncated.safetensors"
    save_checkpoint(tiny(), truncated)
    truncated.write_bytes(truncated.read_bytes()[:-1000])
    with pytest.raises(CheckpointError):
        load_checkpoint(truncated)
