"""The issue's scenario in a real browser: Debian's headless Chromium driven by Selenium.

One test walks it on the real SpaceNet Las Vegas GeoTIFF: scribble along a road, wait for the
prediction overlay, take a screenshot, accept, delete an edge, reload, check the state survived,
export GeoJSON and check it opens with pyogrio inside the raster's bounds.

Skips when chromium / chromedriver are missing (``.ci/run`` installs them with apt-get). Set
``L2R_SCREENSHOT=path.png`` to keep the screenshot (the README's picture comes from here).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import numpy as np
import pytest
from PIL import Image

from linegraph2road.io.raster import read_georef
from tests.annotate.conftest import chromium_driver


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    driver = chromium_driver(tmp_path)
    if driver is None:
        pytest.skip("chromium/chromedriver missing: apt-get install chromium chromium-driver")
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(check: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def body(driver: Any, name: str) -> str | None:
    return driver.execute_script(f"return document.body.dataset.{name} || null")


def idle(driver: Any) -> bool:
    return body(driver, "busy") in (None, "0")


def orange(png: Path) -> int:
    """Pixels of a screenshot coloured like the prediction overlay (orange over the image)."""
    rgb = np.asarray(Image.open(png).convert("RGB")).astype(int)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return int(((r > 150) & (r - b > 110) & (g < 0.7 * r) & (g > 0.35 * r)).sum())


def screen_offset(driver: Any, canvas: Any, x: float, y: float) -> tuple[int, int]:
    """Selenium's pointer offset (from the canvas centre) of image pixel ``(x, y)``."""
    sx, sy = driver.execute_script("return window.l2r.toScreen(arguments[0], arguments[1])", x, y)
    size = canvas.size
    return round(sx - size["width"] / 2), round(sy - size["height"] / 2)


def test_scribble_accept_delete_reload_export(
    browser: Any, vegas_tif: Path, tmp_path: Path, server_factory: Any
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    project = tmp_path / "project"
    server = server_factory(vegas_tif, "--project", project)
    driver = browser
    driver.get(server.url)
    wait_for(lambda: body(driver, "ready") == "1", "the page")
    model = driver.find_element(By.ID, "model").text
    assert "live pixel classifier" in model  # the page says which model runs
    driver.execute_script("window.l2r.setView(176, 176, 2.0)")
    canvas = driver.find_element(By.ID, "canvas")
    wait_for(lambda: idle(driver) and driver.execute_script("return window.l2r.tilesLoaded()"),
             "the image tiles")  # fmt: skip
    before = tmp_path / "before.png"
    assert driver.save_screenshot(str(before))

    # a positive scribble along the boulevard at the top of the tile (image row ~112)
    actions = ActionChains(driver, duration=10)
    actions.move_to_element_with_offset(canvas, *screen_offset(driver, canvas, 15, 112))
    actions.click_and_hold()
    for x in range(40, 340, 20):
        actions.move_to_element_with_offset(canvas, *screen_offset(driver, canvas, x, 112))
    actions.release().perform()
    wait_for(lambda: body(driver, "pending") == "1" and idle(driver), "the prediction overlay")
    assert driver.execute_script("return window.l2rLastRoundTrip.total_ms") > 0

    shot = tmp_path / "after_scribble.png"
    assert driver.save_screenshot(str(shot))
    if os.environ.get("L2R_SCREENSHOT"):
        shutil.copy(shot, os.environ["L2R_SCREENSHOT"])
    assert orange(shot) > orange(before) + 2000, "no prediction overlay in the screenshot"

    rev = int(body(driver, "revision") or 0)
    driver.find_element(By.ID, "btn-accept").click()
    wait_for(lambda: int(body(driver, "revision") or 0) > rev and idle(driver), "the accept")
    edges = int(body(driver, "graphEdges") or 0)
    assert edges > 0, "accepting the prediction gave no graph"

    # select the longest edge and delete it with the Delete key
    graph = driver.execute_script("return window.l2r.graph()")
    nodes = np.array(graph["nodes"])
    pairs = np.array(graph["edges"])
    lengths = np.hypot(*(nodes[pairs[:, 0]] - nodes[pairs[:, 1]]).T)
    k = int(np.argmax(lengths))
    mid = nodes[pairs[k]].mean(axis=0)
    driver.find_element(By.ID, "tool-select").click()
    ActionChains(driver).move_to_element_with_offset(
        canvas, *screen_offset(driver, canvas, *mid)
    ).click().perform()
    wait_for(lambda: body(driver, "selected") not in (None, "-1"), "the edge selection")
    rev = int(body(driver, "revision") or 0)
    ActionChains(driver).send_keys(Keys.DELETE).perform()
    wait_for(lambda: int(body(driver, "revision") or 0) > rev and idle(driver), "the deletion")
    after = driver.execute_script("return window.l2r.graph()")
    a, b = np.array(after["nodes"])[np.array(after["edges"])].transpose(1, 0, 2)
    t = np.clip(((mid - a) * (b - a)).sum(1) / np.maximum(((b - a) ** 2).sum(1), 1e-9), 0, 1)
    assert np.hypot(*(a + (b - a) * t[:, None] - mid).T).min() > 3.0, "the edge is still there"

    # reload: the page shows exactly the acknowledged state
    state = httpx2.get(f"{server.base}/api/state", params={"token": server.token}).json()
    before = (state["revision"], len(after["edges"]), len(state["prompts"]))
    driver.refresh()
    wait_for(lambda: body(driver, "ready") == "1" and idle(driver), "the reloaded page")
    again = driver.execute_script("return window.l2r.graph()")
    assert (int(body(driver, "revision") or -1), len(again["edges"]), 1) == before
    assert again == after

    # export GeoJSON from the page
    driver.find_element(By.ID, "btn-export").click()
    path = Path(wait_for(lambda: body(driver, "exported"), "the export"))
    import pyogrio

    info = pyogrio.read_info(path)
    assert info["features"] == len(after["edges"]) and info["geometry_type"] == "LineString"
    _, bounds = pyogrio.read_bounds(path)
    georef = read_georef(vegas_tif)
    assert georef is not None
    corners = georef.pixel_to_lonlat([[0, 0], [1300, 1300]])
    lo, hi = corners.min(axis=0) - 1e-9, corners.max(axis=0) + 1e-9
    assert (bounds[0] >= lo[0]).all() and (bounds[2] <= hi[0]).all()
    assert (bounds[1] >= lo[1]).all() and (bounds[3] <= hi[1]).all()
    downloaded = wait_for(lambda: list(driver.downloads.glob("*.geojson")), "the download", 20)
    assert downloaded[0].read_bytes() == path.read_bytes()
