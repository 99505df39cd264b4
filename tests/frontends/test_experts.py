"""Location-specific experts (paper 003): networks, k-means, router, losses, checkpoints, learning.

Shapes and gradients at the paper's 512 px patch run on the *tiny* variant (one ResNet block per
stage, narrow decoders): the full ResNet34 networks take 10-15 s per forward/backward on a small
CPU, so their 512 px check is in ``bench/learn_experts.py --shapes``; here only their exact
layout (2048-d embedding, 5x5 pooling of the 16x16 bottleneck) is checked without running them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from linegraph2road.errors import CheckpointError, ParameterError
from linegraph2road.frontends import build_frontend
from linegraph2road.frontends.experts import (
    EMPTY_LOGIT,
    EmbeddingNet,
    EmbeddingSpec,
    ExpertsFrontend,
    UNetExpert,
    kmeans,
    load_experts,
    nearest_centroid,
    parse_size,
    random_expert,
    save_experts,
    segmentation_loss,
    soft_jaccard,
    train_location_experts,
    train_single_model,
    triplet_margin_loss,
)
from linegraph2road.frontends.experts.losses import poly_scheduler
from linegraph2road.frontends.experts.recipe import sample_triplets
from tests.frontends.test_base import check_contract


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny convolutions run faster on one thread, and OpenMP workers spin-wait badly when the
    CPU is shared (10-20x slower under load); the previous thread count is restored."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _tiny(size: str = "tiny", window: int = 64) -> ExpertsFrontend:
    torch.manual_seed(0)
    fe = build_frontend("experts", size, window_size=window)
    assert isinstance(fe, ExpertsFrontend)
    return fe


# ---------------------------------------------------------------- networks at the paper's size


def test_paper_sizes_layout() -> None:
    spec = parse_size("resnet34")
    assert spec.k == 3 and parse_size("resnet34-k5").k == 5
    emb = EmbeddingNet(spec=spec.embedding)
    assert spec.embedding.input_size == 512 and spec.embedding.pool == 5
    assert emb.fc[0].in_features == 512 * 3 * 3  # 16x16 bottleneck, 5x5 pooling -> 3x3
    assert emb.fc[-1].out_features == 2048
    assert [len(s) for s in (emb.encoder.layer1, emb.encoder.layer4)] == [3, 3]  # ResNet34
    assert spec.expert.layers == (3, 4, 6, 3) and spec.expert.feature_dim == 128


def test_embedding_net_and_expert_forward_backward_at_512() -> None:
    torch.manual_seed(0)
    tiny = parse_size("tiny")
    net = EmbeddingNet(spec=EmbeddingSpec(**{**tiny.embedding.__dict__, "input_size": 512}))
    x = torch.randn(1, 3, 512, 512)
    recon, emb = net(x)
    assert recon.shape == (1, 3, 512, 512) and emb.shape == (1, 16)
    (recon.square().mean() + emb.square().mean()).backward()
    assert all(p.grad is not None for p in net.parameters())
    expert = UNetExpert(spec=tiny.expert)
    logits, features = expert(x)
    assert logits.shape == (1, 3, 512, 512) and features.shape == (1, 16, 128, 128)
    (logits.square().mean() + features.square().mean()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in expert.parameters())
    with pytest.raises(ParameterError, match="256, 256"):
        net.embed(torch.randn(1, 3, 256, 256))


# ---------------------------------------------------------------- k-means and the router


def _blobs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0, 0.0], [10.0, 0.0, 0.0], [0.0, 10.0, 5.0]])
    truth = np.repeat(np.arange(3), 20)
    return centres[truth] + rng.normal(scale=0.3, size=(60, 3)), truth


def test_kmeans_finds_three_blobs_deterministically() -> None:
    x, truth = _blobs()
    result = kmeans(x, 3, seed=7)
    # Same partition as the truth, up to a relabelling.
    mapping = {int(t): int(lab) for t, lab in zip(truth, result.labels, strict=True)}
    assert len(set(mapping.values())) == 3
    np.testing.assert_array_equal(result.labels, [mapping[int(t)] for t in truth])
    for t in range(3):
        np.testing.assert_allclose(result.centroids[mapping[t]], x[truth == t].mean(0))
    again = kmeans(x, 3, seed=7)
    np.testing.assert_array_equal(again.centroids, result.centroids)
    np.testing.assert_array_equal(nearest_centroid(x, result.centroids), result.labels)
    with pytest.raises(ParameterError, match="k must be"):
        kmeans(x, 61)


def test_router_picks_the_nearest_centroid() -> None:
    fe = _tiny()
    centroids = torch.zeros(3, 16)
    centroids[0, 0], centroids[1, 5], centroids[2, 9] = 4.0, 4.0, 4.0
    fe.centroids.copy_(centroids)
    gen = torch.Generator().manual_seed(1)
    want = torch.tensor([2, 0, 1, 1, 2, 0])
    embeddings = centroids[want] + 0.5 * torch.randn(6, 16, generator=gen)
    torch.testing.assert_close(fe.assign(embeddings), want)


class _MeanColour(torch.nn.Module):
    """Stub embedding network: the embedding is the image's mean colour, padded to 16-d."""

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.pad(x.mean(dim=(2, 3)), (0, 13))


def test_images_are_routed_to_their_cluster_end_to_end() -> None:
    torch.manual_seed(0)
    spec = parse_size("tiny")
    centroids = torch.zeros(3, 16)
    centroids[:, :3] = 2.0 * torch.eye(3)  # cluster c = "channel c is bright"
    fe = ExpertsFrontend(spec=spec, window_size=64, embedder=_MeanColour(), centroids=centroids)
    fe.eval()
    raw = torch.zeros(4, 3, 64, 64)
    for i, c in enumerate([2, 0, 1, 2]):
        raw[i, c] = 255.0
    x = fe.normalize(raw)
    torch.testing.assert_close(fe.route(x), torch.tensor([2, 0, 1, 2]))
    assert fe.route_image(raw[2]) == 1
    with torch.no_grad():
        out = fe(x)
        for i, c in enumerate([2, 0, 1, 2]):
            logits, features = fe.experts[c](x[i : i + 1])
            torch.testing.assert_close(out.masks[i : i + 1], logits)
            torch.testing.assert_close(out.features[i : i + 1], features)
    fe.pin_expert(0)
    torch.testing.assert_close(fe.route(x), torch.zeros(4, dtype=torch.int64))


def test_nearest_routing_trains_only_the_routed_experts() -> None:
    fe = _tiny()  # zero centroids: every window goes to expert 0
    out = fe(fe.normalize(torch.rand(2, 3, 64, 64) * 255))
    (out.masks.square().mean() + out.features.square().mean()).backward()
    assert all(p.grad is not None for p in fe.experts[0].parameters())
    assert all(p.grad is None for c in (1, 2) for p in fe.experts[c].parameters())
    assert not any(p.requires_grad for p in fe.embedder.parameters())


# ---------------------------------------------------------------- contract and baselines


def test_contract_single_model_and_pinned_expert() -> None:
    check_contract(_tiny("tiny-k1"))  # baseline 1: one model for all
    pinned = _tiny()
    pinned.pin_expert(1)
    check_contract(pinned)
    check_contract(_tiny("tiny-k1-road", window=32))


def test_road_only_experts_fill_the_other_channels() -> None:
    fe = _tiny("tiny-road").eval()
    with torch.no_grad():
        out = fe(torch.randn(1, 3, 64, 64))
    assert out.masks.shape == (1, 3, 64, 64)
    assert (out.masks[:, [0, 2]] == EMPTY_LOGIT).all()
    assert fe.describe()["out_channels"] == 1


def test_random_expert_baseline_shares_the_experts() -> None:
    fe = _tiny()
    rnd = random_expert(fe, seed=3)
    assert rnd.routing == "random" and rnd.experts[2] is fe.experts[2]
    x = torch.zeros(30, 3, 64, 64)
    picks = rnd.route(x)
    assert set(picks.tolist()) == {0, 1, 2}
    torch.testing.assert_close(random_expert(fe, seed=3).route(x), picks)
    assert set(fe.route(x).tolist()) == {0}  # the original keeps nearest-centroid routing
    with pytest.raises(ParameterError, match="routing"):
        fe.with_routing("oracle")


def test_parse_size() -> None:
    assert parse_size("tiny-k3").name == "tiny"
    assert parse_size("tiny-k2-road").expert.out_channels == 1
    for bad in ("huge", "tiny-k0", "tiny-road-k2"):
        with pytest.raises(ParameterError):
            parse_size(bad)


# ---------------------------------------------------------------- losses and schedule


def test_soft_jaccard_is_iou_on_binary_masks() -> None:
    pred = torch.zeros(1, 1, 8, 8)
    target = torch.zeros(1, 1, 8, 8)
    pred[..., :4, :4] = 1.0  # 16 px
    target[..., 2:6, 2:6] = 1.0  # 16 px, overlap 4 px -> IoU 4 / 28
    torch.testing.assert_close(soft_jaccard(pred, target), torch.tensor(4 / 28))
    logits = (pred * 2 - 1) * 50  # saturated: sigmoid is exactly the binary mask
    loss = segmentation_loss(logits, target, alpha=0.0)
    torch.testing.assert_close(loss, torch.tensor(1 - 4 / 28))
    with pytest.raises(ParameterError):
        segmentation_loss(logits, target, alpha=1.5)


def test_poly_learning_rate() -> None:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    sched = poly_scheduler(opt, total_steps=10)
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    np.testing.assert_allclose(lrs, [1e-3 * (1 - s / 10) ** 0.9 for s in range(10)])
    assert opt.param_groups[0]["lr"] == 0.0


def test_triplet_loss() -> None:
    a = torch.tensor([[1.0, 0.0]])
    far = triplet_margin_loss(a, torch.tensor([[2.0, 0.1]]), torch.tensor([[-1.0, 0.0]]))
    assert far.item() == 0.0
    # d(a, p) = 1 (orthogonal), d(a, n) = 0 (same direction): 1 - 0 + margin 1 = 2.
    near = triplet_margin_loss(a, torch.tensor([[0.0, 3.0]]), torch.tensor([[5.0, 0.0]]))
    torch.testing.assert_close(near, torch.tensor(2.0))


def test_triplets_take_positives_from_the_anchors_location() -> None:
    loc = np.array([0, 0, 0, 1, 1, 2, 2])
    t = sample_triplets(loc, 50, rng=np.random.default_rng(0))
    assert (loc[t[:, 0]] == loc[t[:, 1]]).all() and (t[:, 0] != t[:, 1]).all()
    assert (loc[t[:, 0]] != loc[t[:, 2]]).all()
    with pytest.raises(ParameterError, match="locations"):
        sample_triplets(np.zeros(5, dtype=int), 3, rng=np.random.default_rng(0))


# ---------------------------------------------------------------- checkpoints


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    fe = _tiny("tiny-k2")
    fe.centroids.copy_(torch.randn(2, 16))
    path = save_experts(fe, tmp_path / "experts.safetensors", clusters=[5, 7])
    back = load_experts(path)
    assert back.describe() == fe.describe()
    assert back.weights_description == "experts checkpoint experts.safetensors"
    for key, value in fe.state_dict().items():
        torch.testing.assert_close(back.state_dict()[key], value)
    x = torch.randn(2, 3, 64, 64)
    fe.eval()
    with torch.no_grad():
        torch.testing.assert_close(back(x).masks, fe(x).masks)
    built = build_frontend("experts", "tiny-k2", window_size=64, checkpoint=path)
    torch.testing.assert_close(built.state_dict()["centroids"], fe.centroids)
    with pytest.raises(CheckpointError, match="size 'tiny-k2' but the model is 'tiny'"):
        build_frontend("experts", "tiny", window_size=64, checkpoint=path)


def test_missing_expert_is_one_clear_error(tmp_path: Path) -> None:
    path = save_experts(_tiny(), tmp_path / "m.safetensors")
    with safe_open(path, framework="pt") as f:
        meta = f.metadata()
    kept = {k: v for k, v in load_file(path).items() if not k.startswith("experts.2.")}
    save_file(kept, tmp_path / "m.safetensors", metadata=meta)
    with pytest.raises(CheckpointError) as err:
        load_experts(path)
    assert (
        str(err.value) == "experts checkpoint m.safetensors has 3 clusters but expert 2 is missing"
    )


def test_other_checkpoints_are_refused(tmp_path: Path) -> None:
    other = tmp_path / "sam.safetensors"
    arch = {"frontend": {"frontend": "sam", "size": "tiny"}, "head": {}}
    meta = {"format": "linegraph2road", "format_version": "1", "architecture": json.dumps(arch)}
    save_file({"x": torch.zeros(1)}, other, metadata=meta)
    with pytest.raises(CheckpointError, match="'sam' front-end"):
        load_experts(other)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not safetensors"):
        load_experts(junk)


# ---------------------------------------------------------------- learning


def test_the_method_clusters_locations_and_trains_experts() -> None:
    """Two synthetic 'locations' (dark and bright scenes); k = 2 recovers them."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 80, (16, 3, 64, 64)).astype(np.uint8)
    images[8:] += 150
    targets = np.zeros((16, 1, 64, 64), dtype=np.float32)
    targets[:, :, 28:36] = 1.0
    locations = np.repeat([0, 1], 8)
    run = train_location_experts(
        images, targets, locations, size="tiny-k2-road", window_size=64,
        embedding_steps=3, expert_steps=2, batch_size=2, lr=1e-3,
    )  # fmt: skip
    assert sorted(run.clusters) == [8, 8]
    assert len(set(run.labels[:8])) == 1 and run.labels[0] != run.labels[8]
    x = run.frontend.normalize(torch.from_numpy(images[[0, 8]]))
    assert run.frontend.route(x).tolist() == [int(run.labels[0]), int(run.labels[8])]
    single, log = train_single_model(
        images, targets, size="tiny-road", window_size=64, steps=2, batch_size=2
    )
    assert single.spec.k == 1 and len(log.losses) == 2


def _vegas_crops(root: Path, n: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    import rasterio

    from linegraph2road.io import read_graph
    from linegraph2road.io.raster import read_georef
    from linegraph2road.rasterize import render_road_mask

    tif = root / "spacenet_vegas" / "RGB-PanSharpen_AOI_2_Vegas_img0.tif"
    with rasterio.open(tif) as src:
        image = src.read([1, 2, 3])
    graph = read_graph(
        root / "spacenet_vegas" / "AOI_2_Vegas_img0_gt.geojson", like=read_georef(tif)
    )
    mask = render_road_mask(graph, image.shape[1:], width=20)
    rng = np.random.default_rng(0)
    rows, cols = rng.integers(0, 1300 - size, (2, n))
    crops = np.stack(
        [image[:, r : r + size, c : c + size] for r, c in zip(rows, cols, strict=True)]
    )
    masks = np.stack(
        [mask[None, r : r + size, c : c + size] for r, c in zip(rows, cols, strict=True)]
    )
    return crops, masks.astype(np.float32)


def test_an_expert_learns_roads_on_the_vegas_tile(fixtures_dir: Path) -> None:
    """Short version of bench/learn_experts.py: one tiny road expert (the k = 1 baseline, to keep
    the test to ~10 s; clustering and routing are tested above), 60 steps on 64 px crops of the
    real tile. Its loss falls by at least 10 % (16-25 % over seeds 0-1 and lr 3e-3 / 1e-2)."""
    crops, masks = _vegas_crops(fixtures_dir, 24, 64)
    _, log = train_single_model(
        crops, masks, size="tiny-road", window_size=64, steps=60, batch_size=4, lr=1e-2
    )
    assert len(log.losses) == 60
    assert np.mean(log.losses[-8:]) < 0.9 * np.mean(log.losses[:4])
