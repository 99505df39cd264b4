"""Fixtures of the annotation app's tests: a synthetic road raster and a real server process."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from affine import Affine
from scipy import ndimage

from linegraph2road.rasterize import draw_segments

UTM = "EPSG:32611"
#: The roads of :func:`road_raster`: (x0, y0, x1, y1) pixel segments.
ROADS = ((0.0, 100.5, 400.0, 100.5), (250.5, 0.0, 250.5, 320.0), (20.0, 300.0, 240.0, 140.0))
SHAPE = (320, 400)  # (H, W)


def road_image(shape: tuple[int, int] = SHAPE, *, seed: int = 0) -> np.ndarray:
    """``(3, H, W)`` uint8: dark 7 px roads (:data:`ROADS`) on a bright, textured ground."""
    rng = np.random.default_rng(seed)
    h, w = shape
    ground = ndimage.gaussian_filter(rng.normal(0, 1, (h, w)), 2.0)
    ground = 150 + 40 * ground / ground.std()
    a = np.array([r[:2] for r in ROADS])
    b = np.array([r[2:] for r in ROADS])
    road = draw_segments(a, b, shape, width=7)
    img = np.stack([ground, ground * 0.85, ground * 0.7])
    img[:, road] = 60 + rng.normal(0, 4, (3, int(road.sum())))
    return np.clip(img, 0, 255).astype(np.uint8)


def write_tif(path: Path, data: np.ndarray, *, gsd: float = 1.0, **extra: Any) -> Path:
    """A (C, H, W) array as a UTM GeoTIFF at ``gsd`` m/px."""
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": data.shape[2],
        "height": data.shape[1],
        "count": data.shape[0],
        "dtype": data.dtype.name,
        "crs": UTM,
        "transform": Affine(gsd, 0, 500000.0, 0, -gsd, 4000000.0),
        **extra,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


@pytest.fixture
def road_tif(tmp_path: Path) -> Path:
    """A 400 x 320 px, 1 m/px georeferenced RGB GeoTIFF of three roads."""
    return write_tif(tmp_path / "roads.tif", road_image())


@pytest.fixture
def vegas_tif(fixtures_dir: Path) -> Path:
    """The real SpaceNet Las Vegas tile (1300 px at 0.3 m/px -> 352 px at 1 m/px)."""
    path = fixtures_dir / "spacenet_vegas" / "RGB-PanSharpen_AOI_2_Vegas_img0.tif"
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    return path


# -- a real server process -------------------------------------------------------------------
_URL = re.compile(r"serving (http://\S+/\?token=(\S+))")


@dataclass
class Server:
    """An ``l2r annotate`` process: its URL (with token), token, base URL and stderr lines."""

    proc: subprocess.Popen[str]
    url: str
    token: str
    base: str
    lines: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    def stop(self) -> None:
        """Ctrl+C (SIGINT), as a user would; kill after 10 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.close()

    def close(self) -> None:
        """Collect the stderr reader of a process that has ended."""
        if self.reader is not None:
            self.reader.join(timeout=5)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


def start_server(*args: str | os.PathLike[str], timeout: float = 60.0) -> Server:
    """Run ``python -m linegraph2road annotate ARGS --no-browser`` and wait for its URL."""
    cmd = [sys.executable, "-m", "linegraph2road", "annotate", *map(str, args), "--no-browser"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    lines: list[str] = []
    found: list[re.Match[str]] = []

    def pump() -> None:
        if proc.stderr is None:
            return
        for line in proc.stderr:
            lines.append(line.rstrip())
            m = _URL.search(line)
            if m and not found:
                found.append(m)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    while not found:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            Server(proc, "", "", "", lines, reader).close()
            raise RuntimeError(f"l2r annotate did not start: {lines}")
        time.sleep(0.05)
    url, token = found[0].group(1), found[0].group(2)
    return Server(proc, url, token, url.split("/?")[0], lines, reader)


@pytest.fixture
def server_factory() -> Iterator[Any]:
    """``start(*args) -> Server``; every server started is stopped after the test."""
    started: list[Server] = []

    def start(*args: str | os.PathLike[str]) -> Server:
        s = start_server(*args)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


# -- a real browser ------------------------------------------------------------------------------
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def chromium_driver(workdir: Path, *, size: tuple[int, int] = (1100, 820)) -> Any:
    """Debian's headless Chromium under Selenium (None when it is not installed).

    A fresh profile in ``workdir/chromium-profile``, downloads into ``workdir/downloads``
    (``driver.downloads``), no background networking, no GPU, no sandbox (root in CI).
    """
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        return None
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--window-size={size[0]},{size[1]}",
        f"--user-data-dir={workdir / 'chromium-profile'}",
    ):
        options.add_argument(arg)
    downloads = workdir / "downloads"
    downloads.mkdir(exist_ok=True)
    prefs = {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    options.add_experimental_option("prefs", prefs)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    driver.downloads = downloads
    return driver
