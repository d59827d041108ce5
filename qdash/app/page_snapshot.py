"""The dashboard's page snapshot: its market view as the kernel holds it, for the page to paint
before Voila's front end starts (the format and the server side: :mod:`qdash.server.snapshot`).

The figures are not drawn twice: the snapshot is the live market view's own Bokeh document
(:meth:`FrameBokehModel.snapshot`, the render bundle a page's widget manager gets, in Bokeh's
standalone embed format), with its model ids prefixed and its toolbars' tools left out, plus the
HTML of the status line and of the statistics table. A picture takes no pan or zoom, and its
toolbars keep their place (the figures' frames do not move), but the tools were a quarter of its
models: 64 fewer models (tools, their overlays) took 60-110 ms off the page's first paint. The
figures below the z-score (below the first screen) come in a second root that the page draws
right after the first screen (:func:`market_item`).

Inside the published app (``$QDASH_SNAPSHOT_DIR`` set, and Voila's ``$VOILA_KERNEL_ID``),
:meth:`PageSnapshot.for_page` writes it every :data:`EVERY_S` seconds while the kernel waits in
Voila's pool for its page, and stops once the page's widget manager asked for the market view's
state (the page is then past its snapshot), removing the file.
"""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path

import orjson

from ..config import Settings
from ..periodic import PeriodicTask

log = logging.getLogger(__name__)

HEAD_PX = 202  # the dashboard's header (title, controls, status line), fixed: the snapshot's too
EVERY_S = 1.0          # how often a waiting kernel refreshes its snapshot
ID_PREFIX = "qs-"      # the snapshot's model ids: never those of the live document
ELEMENT_ID = "qdash-snapshot-market"  # the element the template's script embeds the view into
BELOW_ID = ELEMENT_ID + "-below"  # ... and the figures below the first screen, right under it
_MODEL_ID = re.compile(rb'"id":"(p\d+)"')


def without_tools(docs_json: dict) -> dict:
    """``docs_json`` (Bokeh's serialized documents, a tree where a model is defined in full,
    ``{"type": "object", "name", "id", "attributes"}``, where it first appears and referenced as
    ``{"id"}`` after) with every ``Toolbar``'s tools left out. A model that was first defined
    inside a tool and is used elsewhere too (a hover tool's renderers) is defined at its next
    reference instead. Changes the toolbars of ``docs_json`` itself: pass a copy."""
    full: dict[str, dict] = {}  # id -> the model's full definition

    def collect(node) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" and "id" in node:
                full.setdefault(node["id"], node)
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    defined: set[str] = set()

    def relink(node):
        if isinstance(node, dict):
            if node.keys() == {"id"} and node["id"] not in defined and node["id"] in full:
                node = full[node["id"]]  # its definition was inside a tool: define it here
            if node.get("type") == "object" and "id" in node:
                defined.add(node["id"])
            return {key: relink(value) for key, value in node.items()}
        if isinstance(node, list):
            return [relink(value) for value in node]
        return node

    collect(docs_json)
    for model in full.values():
        if model.get("name") == "Toolbar" and "tools" in model.get("attributes", {}):
            model["attributes"]["tools"] = []
    return relink(docs_json)


def market_item(bundle: dict, first_screen_ends: str | None = None) -> tuple[dict, str]:
    """(the snapshot's ``market``, the live root id) of a render bundle of the market view: its
    model ids prefixed with :data:`ID_PREFIX`, its tools left out (:func:`without_tools`), the
    root embedded into :data:`ELEMENT_ID`. The bundle is left as it was (the live view answers
    pages from it).

    With ``first_screen_ends`` (the id of a child of the root column), the children after it
    are not in ``docs_json`` but in ``below``: a second column of the same document, embedded
    into :data:`BELOW_ID` right under the first, that the page draws once the first screen is
    on it (the figures below the fold were a quarter of the first paint's work)."""
    (item,) = bundle["render_items"]
    (root,) = item["root_ids"]
    text = orjson.dumps(bundle["docs_json"], option=orjson.OPT_SERIALIZE_NUMPY)
    tree = without_tools(orjson.loads(text))
    below = _split(tree, first_screen_ends, ID_PREFIX + root + "-below")
    roots = {ID_PREFIX + root: ELEMENT_ID}
    market = {"docs_json": _prefixed(tree)}
    if below is not None:
        roots[below["id"]] = BELOW_ID
        market["below"] = _prefixed(below)
    market["render_items"] = [{"docid": item["docid"], "roots": roots, "root_ids": list(roots)}]
    return market, root


def _prefixed(tree) -> orjson.Fragment:
    """``tree`` as JSON text, its model ids ``p<n>`` prefixed with :data:`ID_PREFIX`."""
    text = orjson.dumps(tree)
    return orjson.Fragment(_MODEL_ID.sub(rb'"id":"' + ID_PREFIX.encode() + rb'\1"', text))


def _split(docs_json: dict, after: str | None, below_id: str) -> dict | None:
    """Move the children of ``docs_json``'s root column after the child ``after`` into a new
    column ``below_id`` with the same settings; returns its definition (None, nothing moved:
    no child ``after``, or nothing after it)."""
    (doc,) = docs_json.values()
    (top,) = doc["roots"]
    children = top.get("attributes", {}).get("children", [])
    ids = [child.get("id") for child in children]
    if after not in ids or ids.index(after) + 1 == len(children):
        return None
    at = ids.index(after) + 1
    top["attributes"]["children"] = children[:at]
    settings = {k: v for k, v in top["attributes"].items()
                if k != "children" and not isinstance(v, (dict, list))}
    return {"type": "object", "name": top["name"], "id": below_id,
            "attributes": {**settings, "children": children[at:]}}


def snapshot_bytes(dashboard) -> bytes:
    """The snapshot of ``dashboard``'s first screen, as JSON (format:
    :mod:`qdash.server.snapshot`); the first paint ends with the z-score."""
    mon, charts = dashboard.monitor, dashboard.charts
    market, root = market_item(charts.market_view.snapshot(), charts.figures.zscore.id)
    summary = (f"{mon.source} · {mon.y} / {mon.x} · {mon.timeframe} bars · {mon.method}, "
               f"window {mon.window} · entry ±{mon.entry_z:g}, exit {mon.exit_z:g}"
               + (f", stop ±{mon.stop_z:g}" if mon.stop_z else ""))
    return orjson.dumps({
        "version": 1, "kernel_ms": int(time.time() * 1000), "head_px": HEAD_PX,
        "title": "qdash — pair monitor", "summary": summary,
        "status": dashboard.status.value, "stats": dashboard.stats.value,
        "market": market, "live_root": root})


class PageSnapshot:
    """Writes ``dashboard``'s snapshot to ``path`` every ``every_s`` seconds until the page
    asked for the market view's state (module doc)."""

    def __init__(self, dashboard, path: Path, every_s: float = EVERY_S):
        self.dashboard, self.path = dashboard, Path(path)
        self.writes = 0
        self._task = PeriodicTask(self.write, every_s, name="page snapshot")

    @classmethod
    def for_page(cls, dashboard) -> PageSnapshot | None:
        """A started writer when this kernel serves a page of the published app, else None."""
        from ..server.snapshot import snapshot_file

        directory = Settings.from_env().snapshot_dir
        kernel_id = os.environ.get("VOILA_KERNEL_ID")
        if not directory or not kernel_id:
            return None
        writer = cls(dashboard, snapshot_file(directory, kernel_id))
        writer._task.start()
        return writer

    def write(self) -> None:
        """Write the snapshot now, or stop when the page has connected."""
        from ..server.snapshot import write_snapshot

        if self.dashboard.charts.market_view.state_requests:
            self.stop()
            return
        write_snapshot(self.path, snapshot_bytes(self.dashboard))
        self.writes += 1

    def stop(self) -> None:
        """Stop writing and remove the file."""
        self._task.stop()
        self.path.unlink(missing_ok=True)
