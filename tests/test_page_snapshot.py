"""The page snapshot (``qdash.app.page_snapshot``, ``qdash.server.snapshot``): what a kernel writes,
and how the page's HTML gets it, without a browser."""

from __future__ import annotations

import asyncio
import json
import re

import orjson
import pytest
from bokeh.core.json_encoder import serialize_json

from qdash.app.bokeh_widget import FrameBokehModel
from qdash.app.page_snapshot import (
    BELOW_ID,
    ELEMENT_ID,
    ID_PREFIX,
    PageSnapshot,
    market_item,
    without_tools,
)
from qdash.app.plots import PairFigures
from qdash.server import snapshot

KERNEL = "0f3c2a4e-5b6d-4e8f-9a0b-1c2d3e4f5a6b"
PAGE = ("<html><head><script defer src='bokeh.min.js'></script>" + snapshot.MARKER +
        "</head><body><script id=\"jupyter-config-data\" type=\"application/json\">"
        '{"baseUrl": "/", "kernelId": "' + KERNEL + '"}</script></body></html>')


@pytest.mark.unit
def test_the_page_gets_the_snapshot_of_the_kernel_it_names(tmp_path):
    other = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
    snapshot.write_snapshot(snapshot.snapshot_file(tmp_path, other), b'{"who": "other"}')
    snapshot.write_snapshot(snapshot.snapshot_file(tmp_path, KERNEL),
                            b'{"who": "mine", "stats": "<td>a</td></script><b>"}')
    page = snapshot.inject(PAGE, tmp_path)
    assert snapshot.MARKER not in page
    body = re.search(r'<script type="application/json" id="qdash-snapshot-data">(.*?)</script>',
                     page, re.S).group(1)
    assert "</script>" not in body  # the stats' text cannot close the element
    assert json.loads(body) == {"who": "mine", "stats": "<td>a</td></script><b>"}
    assert list(tmp_path.iterdir()) and not list(tmp_path.glob(".*.tmp"))  # atomic writes


@pytest.mark.unit
def test_no_snapshot_leaves_the_page_as_it_was(tmp_path):
    assert snapshot.inject(PAGE, tmp_path) == PAGE            # kernel still running its notebook
    assert snapshot.inject(PAGE, None) == PAGE                # not the published app
    head_only = PAGE.split("<body>")[0]                       # kernel not known yet
    snapshot.write_snapshot(snapshot.snapshot_file(tmp_path, KERNEL), b"{}")
    assert snapshot.inject(head_only, tmp_path) == head_only


@pytest.mark.unit
@pytest.mark.parametrize("bad", ["../etc/passwd", "", "x" * 10, KERNEL + "/.."])
def test_a_snapshot_file_is_named_by_a_kernel_id_only(tmp_path, bad):
    with pytest.raises(ValueError, match="not a kernel id"):
        snapshot.snapshot_file(tmp_path, bad)


@pytest.mark.unit
@pytest.mark.parametrize("split", [False, True])
def test_the_snapshot_is_the_live_views_own_document_with_its_ids_prefixed(split):
    """The live view's own models, ids renamed, tools left out; with ``split``, the figures
    after the z-score in a second column (``below``) of the same settings."""
    figures = PairFigures("ETHUSDT", "BTCUSDT")
    figures.candles["y"].data = {**{k: [1.0, 2.0] for k in figures.candles["y"].data},
                                 "color": ["#26a69a", "#ef5350"]}
    figures.pair.stream({k: [0.5] for k in figures.pair.data})
    view = FrameBokehModel(figures.layout())
    bundle = view.snapshot()
    market, root = market_item(bundle, figures.zscore.id if split else None)
    live_root = bundle["render_items"][0]["root_ids"][0]
    assert root == live_root
    below = f"{ID_PREFIX}{live_root}-below"
    roots = {ID_PREFIX + live_root: ELEMENT_ID, **({below: BELOW_ID} if split else {})}
    assert market["render_items"] == [{"docid": bundle["render_items"][0]["docid"],
                                       "roots": roots, "root_ids": list(roots)}]
    assert ("below" in market) == split
    assert "below" not in market_item(bundle, "no-such-child")[0]  # nothing moved
    text = orjson.dumps({"d": market["docs_json"], "b": market.get("below")}).decode()
    live = serialize_json(bundle["docs_json"])
    ids = set(re.findall(r'"id":"(p\d+)"', live))
    assert ids and not set(re.findall(r'"id":"(p\d+)"', text))  # no id of the live document
    # one definition: the same figures, model for model, with the ids renamed and the tools
    # (and the overlays only they hold) left out
    shot = _models(json.loads(text.replace(f'"id":"{ID_PREFIX}', '"id":"')))
    models = _models(json.loads(live))
    tools = {i for i, (name, _) in models.items() if name in TOOL_MODELS}
    assert len(tools) >= 7 * 6
    if split:  # the root column's children: the first screen's, then below's
        name, column = shot.pop(below.removeprefix(ID_PREFIX))
        top = shot[live_root][1]
        assert name == "Column" and column.pop("children") == models[live_root][1]["children"][3:]
        assert top["children"] == models[live_root][1]["children"][:3]  # candles, spread, z
        assert top["children"][-1] == {"id": figures.zscore.id}
        assert column == {k: v for k, v in top.items() if k != "children"}  # same settings
        top["children"] = models[live_root][1]["children"]  # one column in the live view
    assert set(shot) == set(models) - tools
    for i, (name, attributes) in shot.items():
        if name == "Toolbar" and "tools" in attributes:
            assert attributes.pop("tools") == [] and models[i][1].pop("tools")
        assert (name, attributes) == models[i], name


TOOL_MODELS = {"PanTool", "WheelZoomTool", "BoxZoomTool", "ResetTool", "SaveTool", "HoverTool",
               "BoxAnnotation", "BoxInteractionHandles", "AreaVisuals"}


def _models(tree) -> dict[str, tuple[str, dict]]:
    """Every model of a serialized Bokeh document: id -> (name, attributes with the models in
    them as ``{"id"}``), each defined once."""
    found: dict[str, tuple[str, dict]] = {}

    def flat(node):
        if isinstance(node, dict):
            if node.get("type") == "object" and "id" in node:
                attributes = {k: flat(v) for k, v in node.get("attributes", {}).items()}
                assert node["id"] not in found, f"{node['id']} defined twice"
                found[node["id"]] = (node["name"], attributes)
                return {"id": node["id"]}
            return {k: flat(v) for k, v in node.items()}
        if isinstance(node, list):
            return [flat(v) for v in node]
        return node

    flat(tree)
    refs = set(re.findall(r'"id": ?"(p\d+)"', json.dumps(tree)))
    assert refs <= set(found)  # no reference without its definition
    return found


@pytest.mark.unit
def test_leaving_the_tools_out_defines_a_model_where_it_is_next_used():
    """A renderer first defined inside a hover tool (a toolbar serialized before the plot's
    renderers) is defined at the renderers' reference once the tools are gone."""
    renderer = {"type": "object", "name": "GlyphRenderer", "id": "p3", "attributes": {"x": 1}}
    doc = {"d": {"roots": [{"type": "object", "name": "Figure", "id": "p1", "attributes": {
        "toolbar": {"type": "object", "name": "Toolbar", "id": "p2", "attributes": {"tools": [
            {"type": "object", "name": "HoverTool", "id": "p4",
             "attributes": {"renderers": [renderer]}}]}},
        "renderers": [{"id": "p3"}], "below": [{"id": "p3"}]}}]}}
    out = without_tools(doc)
    figure = out["d"]["roots"][0]["attributes"]
    assert figure["toolbar"]["attributes"]["tools"] == []
    assert figure["renderers"] == [renderer]  # defined here now
    assert figure["below"] == [{"id": "p3"}]  # and referenced after


@pytest.mark.integration  # builds the whole dashboard (Bokeh, ipywidgets): seconds
def test_a_kernel_writes_its_snapshot_until_its_page_asks_for_the_market_view(
        tmp_path, db_path, monkeypatch):
    from qdash.app import Dashboard

    monkeypatch.setenv("QDASH_SNAPSHOT_DIR", str(tmp_path))
    monkeypatch.setenv("VOILA_KERNEL_ID", KERNEL)

    async def scenario():
        d = Dashboard(source="store", db=str(db_path))
        writer = PageSnapshot.for_page(d)
        assert writer is not None
        d.status.value = "<span>history: 125 bars</span>"
        writer.write()
        first = json.loads(snapshot.snapshot_file(tmp_path, KERNEL).read_bytes())
        assert first["status"] == d.status.value and first["stats"] == d.stats.value
        sent = json.loads(d.charts.market_view.get_state()["render_bundle"])  # a page asks
        assert first["live_root"] == sent["render_items"][0]["root_ids"][0]
        writer.write()  # ... ends the writing: the page is past its snapshot
        assert not snapshot.snapshot_file(tmp_path, KERNEL).exists()
        await d.close()

    asyncio.run(scenario())


@pytest.mark.unit
def test_outside_the_published_app_no_snapshot_is_written(monkeypatch):
    monkeypatch.delenv("QDASH_SNAPSHOT_DIR", raising=False)
    monkeypatch.setenv("VOILA_KERNEL_ID", KERNEL)
    assert PageSnapshot.for_page(object()) is None
