"""Every notebook in ``notebooks/`` executes headless in a real kernel (nbclient), against the
recorded data in ``../shared/data`` and the simulated exchange, without an error."""

from __future__ import annotations

import pytest
from conftest import REPO

pytestmark = pytest.mark.integration

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
TIMEOUT_S = 120  # per cell
JUPYTER_URL = "http://127.0.0.1:8888/"
MAX_EXECUTED_BYTES = 300_000  # an executed notebook with plots and tables (was 8 MB)


def test_the_four_notebooks_are_there():
    names = [p.stem for p in NOTEBOOKS]
    assert names == ["01_quickstart", "02_live_data", "03_backtest_research", "04_alerts"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, monkeypatch):
    import nbformat  # not at collection: nbformat's imports cost the unit tier seconds
    from nbclient import NotebookClient

    # as in JupyterLab, whose qdash extension tells its kernels the server's URL
    monkeypatch.setenv("QDASH_SERVER_URL", JUPYTER_URL)
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=TIMEOUT_S, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert errors == []
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.get("outputs", []) if o.get("output_type") == "stream")
    for expected in EXPECTED[path.stem]:
        assert expected in text, (expected, text[-2000:])
    assert "'zscore': nan" not in text  # the live notebook waited long enough for a z-score
    # saved as executed, a notebook stays small: BokehJS is a URL of the server, not 8 MB inline
    assert len(nbformat.writes(nb)) < MAX_EXECUTED_BYTES
    if "bokeh" in path.read_text():
        assert f"{JUPYTER_URL}qdash/bokehjs/static/js/bokeh.min.js" in nbformat.writes(nb)


# what each notebook must have printed (its point, checked)
EXPECTED = {
    "01_quickstart": ["24,356 trades", "aligned bars", "Engle-Granger cointegration"],
    "02_live_data": ["trades recorded in", "'zscore': "],
    "03_backtest_research": ["'total_return'", "'trades'"],
    "04_alerts": ["alerts delivered; same as the history replay: True"],
}
