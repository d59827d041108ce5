"""The book's ``report.html`` opened from disk in headless Chromium with every network request
refused: it renders its plots (one canvas each, titles as written) without a console error and
without asking for anything but the file itself."""

import pytest
from book_result_support import book_result
from dashboard_support import JS_TITLES, PageLog

from qdash.book.report import read_provenance

pytestmark = pytest.mark.browser

TITLES = ("equity against the baselines", "drawdown", "net exposure per symbol",
          "per-pair attribution", "holding time against the pair's half-life")
# at least n drawn canvases (Bokeh's are inside shadow roots)
CANVASES = """(n) => {
  let c = 0;
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      if (el.tagName === 'CANVAS' && el.width > 0 && el.height > 0) c++;
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  walk(document);
  return c >= n;
}"""


def test_the_report_renders_its_plots_offline(browser, tmp_path):
    result = book_result()
    path = result.report(tmp_path / "report.html")
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    log = PageLog(page)
    refused = []

    def offline(route):
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    page.route("**/*", offline)
    try:
        page.goto(path.as_uri(), wait_until="load")
        page.wait_for_function(
            "() => window.Bokeh !== undefined && Bokeh.documents.length >= 1"
            " && Object.keys(Bokeh.index).length >= 1", timeout=30_000)
        page.wait_for_function(CANVASES, arg=len(TITLES), timeout=30_000)
        titles = page.evaluate(JS_TITLES)
        for want in TITLES:
            assert any(t.startswith(want) for t in titles), (want, titles)
        prov = page.evaluate(
            "() => JSON.parse(document.getElementById('qdash-book-provenance').textContent)")
        assert prov == read_provenance(path.read_text())
        assert prov["fingerprint"] == result.fingerprint and prov["spec"]["timeframe"] == "5m"
        assert log.errors() == [] and refused == []
        assert all(u.startswith(("file://", "data:", "blob:")) for u in log.requests), log.requests
    finally:
        page.close()
