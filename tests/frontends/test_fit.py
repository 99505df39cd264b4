from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from linegraph2road.frontends import build_frontend
from linegraph2road.frontends.fit import fit, random_crops


def test_random_crops_keep_image_and_targets_aligned() -> None:
    image = np.zeros((3, 40, 50), dtype=np.uint8)
    targets = np.zeros((1, 40, 50), dtype=bool)
    image[0, 10, 20] = 255
    targets[0, 10, 20] = True
    for imgs, tgts in random_crops(image, targets, size=32, batch_size=4, steps=5, seed=1):
        assert imgs.shape == (4, 3, 32, 32) and tgts.shape == (4, 1, 32, 32)
        np.testing.assert_array_equal((imgs[:, 0] > 0).numpy(), (tgts[:, 0] > 0).numpy())


def test_fit_lowers_the_loss_on_a_fixed_batch() -> None:
    torch.manual_seed(0)
    frontend = build_frontend("sam", "tiny", window_size=32)
    image = np.random.default_rng(0).integers(0, 256, (3, 32, 32), dtype=np.uint8)
    targets = np.zeros((1, 32, 32), dtype=bool)
    targets[0, 14:18] = True
    batches = random_crops(image, targets, size=32, batch_size=2, steps=30, rotate=False)
    opt = torch.optim.Adam(frontend.parameters(), lr=1e-3)
    log = fit(frontend, batches, loss_fn=F.binary_cross_entropy_with_logits, optimizer=opt)
    assert len(log.losses) == 30
    assert np.mean(log.losses[-5:]) < 0.7 * np.mean(log.losses[:5])
