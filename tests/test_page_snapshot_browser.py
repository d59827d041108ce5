"""The first paint from the kernel's snapshot, in headless Chromium, on the real ``qdash demo``
(simulated exchange + the Voila app, 1s bars, a 10-bar window) and on a dashboard notebook of the
user's own served by the same app.

Checked: the snapshot's canvases show candles before Voila's front end has started (its bundle
is blocked); a page whose kernel never connects keeps the snapshot and says so, with a reload
link and no console error; when the live view takes the snapshot's place every figure keeps its
box (within 2 px), the z-scores shown do not change, and they equal the kernel's.
"""

from __future__ import annotations

import io
import json
import math
import re
import time

import numpy as np
import pytest
from dashboard_support import (
    JS_SNAPSHOT_SHOWS,
    KERNEL_DUMP,
    App,
    PageLog,
    find_source,
    kernel_id,
    notebook,
    run_in_kernel,
    sources,
    wait_until,
)

pytestmark = pytest.mark.browser

STATE = "() => window.qdashSnapshot && window.qdashSnapshot.state"
VOILA_BUNDLE = re.compile(r".*/voila/static/voila\.js(\?.*)?$")
UP, DOWN = (0x26, 0xA6, 0x9A), (0xEF, 0x53, 0x50)  # qdash.app.plots: candle colours
# every plot view under the market view's roots (the snapshot's: its first screen and the figures
# below it; or the live one), by title, with its bounding box, and the z-scores its pair source
# holds ({t: z})
JS_FIGURES = """(snapshot) => {
  const state = window.qdashSnapshot;
  const roots = (snapshot ? state.roots : [state.live_root]).map((id) => Bokeh.index[id]);
  if (roots.some((root) => !root)) return null;
  const root = roots[0];
  const boxes = {};
  const walk = (v) => {
    const title = v.model.title?.text;
    if (title !== undefined && v.el) {
      const r = v.el.getBoundingClientRect();
      boxes[title] = [r.x, r.y, r.width, r.height];
    }
    for (const c of v.child_views ?? []) walk(c);
  };
  for (const r of roots) walk(r);
  const z = {};
  for (const m of root.model.document.all_models) {
    const d = m.data;
    if (!d || typeof d !== "object") continue;
    const get = (k) => (d instanceof Map ? d.get(k) : d[k]);
    if (get("z") && get("spread")) {
      const t = get("t"), zs = get("z");
      for (let i = 0; i < t.length; i++) if (Number.isFinite(zs[i])) z[t[i]] = zs[i];
    }
  }
  return {boxes, z};
}"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("snapdemo")
    app = App("demo", tmp, tmp / "demo.db", args=["--rate", "300", "--timeframe", "1s"],
              env={"QDASH_WINDOW": "10"})
    yield app
    app.stop()


def _ready(app: App) -> None:
    """Wait until the app's preheated kernel ran its notebook (its snapshot is written then)."""
    wait_until(lambda: (app.health() or {}).get("kernels_ready") == 1, timeout=180,
               what="the preheated kernel")


def _open(browser, app: App, init_script: str | None = None, block_voila: bool = False):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    if init_script:
        page.add_init_script(init_script)
    if block_voila:  # Voila's front end never starts (an empty script: no load error either)
        page.route(VOILA_BUNDLE, lambda route: route.fulfill(
            status=200, content_type="application/javascript", body=""))
    log = PageLog(page)
    page.goto(app.url, wait_until="commit")
    return page, log


def _swap(page) -> tuple[dict, dict]:
    """The market view's figures (:data:`JS_FIGURES`) at the first frame the whole snapshot is
    drawn (its first screen, then the figures below it), and once the live view took its place;
    every figure kept its box (within 2 px)."""
    before = page.wait_for_function(
        f"() => ({STATE})() === 'drawn' && ({JS_FIGURES})(true)", polling="raf",
        timeout=60_000).json_value()
    times = page.evaluate("() => window.qdashSnapshot")
    assert len(times["roots"]) == 2 and times["painted_ms"] <= times["drawn_ms"]
    page.wait_for_function(f"() => ({STATE})() === 'live'", timeout=120_000)
    after = page.evaluate(f"({JS_FIGURES})(false)")
    assert len(before["boxes"]) == 7 and set(before["boxes"]) == set(after["boxes"])
    for title, box in before["boxes"].items():
        assert all(abs(a - b) <= 2 for a, b in zip(box, after["boxes"][title])), (
            title, box, after["boxes"][title])
    return before, after


def _colour_pixels(png: bytes, rgb: tuple[int, int, int], tol: int = 12) -> int:
    """Pixels of ``png`` within ``tol`` of ``rgb`` in every channel."""
    from PIL import Image

    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=int)
    return int((np.abs(img - np.array(rgb)) <= tol).all(axis=2).sum())


def test_before_voila_starts_the_snapshot_shows_candles_and_stays_if_the_kernel_never_connects(
        browser, demo):
    _ready(demo)
    time.sleep(12)  # a dozen 1s candles and z-scores in the preheated kernel
    page, log = _open(browser, demo, "window.qdashConnectTimeoutMs = 8000", block_voila=True)
    try:
        page.wait_for_function(f"() => ['painted', 'drawn'].includes(({STATE})())",
                               timeout=60_000)
        assert "connecting" in page.locator(".qdash-snap-badge").text_content()
        shown = page.evaluate(JS_SNAPSHOT_SHOWS)
        assert shown["candles"] >= 10 and shown["z"] >= 1, shown
        # Voila's front end has not started: no widget, its cells still hidden
        assert page.locator(".jupyter-widgets").count() == 0
        assert page.evaluate("() => getComputedStyle("
                             "document.getElementById('rendered_cells')).display") == "none"
        png = page.locator("#qdash-snapshot-market").screenshot()
        assert _colour_pixels(png, UP) > 100 and _colour_pixels(png, DOWN) > 100  # candles drawn

        page.wait_for_function(f"() => ({STATE})() === 'stale'", timeout=30_000)
        badge = page.locator(".qdash-snap-badge")
        assert "did not connect" in badge.text_content()
        assert badge.locator("a", has_text="reload").get_attribute("href") == demo.url
        assert page.locator("#qdash-snapshot-market").is_visible()
        assert log.errors() == [] and log.external() == []
    finally:
        page.close()


def test_the_live_view_takes_the_snapshots_place_and_shows_the_kernels_z(browser, demo):
    _ready(demo)
    page, log = _open(browser, demo)
    try:
        before, after = _swap(page)
        assert page.locator("#qdash-snapshot").count() == 0
        assert page.evaluate(f"({JS_FIGURES})(true)") is None  # the snapshot's views are gone
        # the numbers did not change at the swap (closed bars only; new bars may have closed)
        common = set(before["z"]) & set(after["z"])
        assert len(common) >= 1 and all(before["z"][t] == after["z"][t] for t in common)

        # the z shown equals the kernel's, bar for bar
        kc = demo.kernel_client(kernel_id(page))
        try:
            kernel = json.loads(run_in_kernel(kc, KERNEL_DUMP))
        finally:
            kc.stop_channels()
        (k_pair,) = find_source(kernel, "z", "spread")
        (b_pair,) = find_source(sources(page), "z", "spread")
        k_z = {t: z for t, z in zip(k_pair["t"], k_pair["z"]) if z is not None and math.isfinite(z)}
        b_z = {t: z for t, z in zip(b_pair["t"], b_pair["z"]) if z is not None and math.isfinite(z)}
        last = max(b_z)
        assert last in k_z and b_z[last] == pytest.approx(k_z[last], rel=1e-12, abs=1e-12)
        assert log.errors() == []
    finally:
        page.close()


USER_NOTEBOOK = notebook(
    ["import math  # a cell with no output before"],
    ["from qdash.app import Dashboard\n",
     "d = Dashboard(source='hub', symbols=['BTCUSDT', 'ETHUSDT'], timeframe='1s')\n",
     "d = await d.show().start().ready()\n"])


def test_a_dashboard_notebook_of_the_users_own_gets_the_same_first_paint(
        browser, demo, tmp_path):
    demo.stop()  # one streaming app at a time on this machine
    notebook = tmp_path / "mine" / "mine.ipynb"
    notebook.parent.mkdir()
    notebook.write_text(json.dumps(USER_NOTEBOOK))
    app = App("mine", notebook.parent, tmp_path / "mine.db", notebook=notebook)
    try:
        _ready(app)
        page, log = _open(browser, app)
        try:
            _swap(page)
            assert log.errors() == []
        finally:
            page.close()
    finally:
        app.stop()
