"""``FrameBokehModel.snapshot``: the page's whole-state answer is built once per structural change
of the document and carries every source's current data (no kernel: the widget's comm is idle)."""

import json

from bokeh.core.json_encoder import serialize_json
from bokeh.models import ColumnDataSource
from bokeh.plotting import figure

from qdash.app.bokeh_widget import FrameBokehModel


def _docs(bundle: dict) -> dict:
    """The one document's JSON (its id is new at each serialization)."""
    (doc,) = json.loads(serialize_json(bundle["docs_json"])).values()
    return doc


def test_the_snapshot_equals_a_full_serialization_and_is_built_once_while_only_data_change(
        monkeypatch):
    source = ColumnDataSource({"t": [1.0, 2.0], "y": [3.0, float("nan")]})
    other = ColumnDataSource({"t": [1.0], "z": [0.5]})
    p = figure(title="spread")
    p.line("t", "y", source=source)
    p.scatter("t", "z", source=other)
    view = FrameBokehModel(p)  # its comm opened with a first snapshot
    builds = []
    full = FrameBokehModel._model_to_traits
    monkeypatch.setattr(FrameBokehModel, "_model_to_traits",
                        classmethod(lambda cls, model: builds.append(1) or full(model)))
    source.stream({"t": [3.0], "y": [5.0]})      # what a live frame does
    source.patch({"y": [(1, 4.0)]})
    other.data = {"t": [2.0], "z": [-1.5]}
    bundle = view.snapshot()
    assert builds == []  # data changes only: the document was not serialized again
    assert _docs(bundle) == _docs(full(p))
    assert bundle["render_items"][0]["root_ids"] == full(p)["render_items"][0]["root_ids"]

    p.title.text = "spread (log)"                # a structural change: built again
    bundle = view.snapshot()
    assert len(builds) == 1
    assert _docs(bundle) == _docs(full(p))
    assert "spread (log)" in serialize_json(bundle["docs_json"])


def test_a_whole_state_request_answers_with_the_snapshot():
    source = ColumnDataSource({"t": [1.0], "y": [2.0]})
    p = figure()
    p.line("t", "y", source=source)
    view = FrameBokehModel(p)
    source.stream({"t": [2.0], "y": [3.0]})
    sent = json.loads(view.get_state()["render_bundle"])  # as the page receives it
    assert _docs(sent) == _docs(FrameBokehModel._model_to_traits(p))
    assert len(_docs(sent)["roots"]) == 1
