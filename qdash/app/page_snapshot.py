"""The dashboard's page snapshot: its market view as the kernel holds it, for the page to paint
before Voila's front end starts (the format and the server side: :mod:`qdash.server.snapshot`).

The figures are not drawn twice: the snapshot is the live market view's own Bokeh document
(:meth:`FrameBokehModel.snapshot`, the render bundle a page's widget manager gets, in Bokeh's
standalone embed format), with its model ids prefixed, plus the HTML of the status line and of the
statistics table. Inside the published app (``$QDASH_SNAPSHOT_DIR`` set, and Voila's
``$VOILA_KERNEL_ID``), :meth:`PageSnapshot.for_page` writes it every :data:`EVERY_S` seconds
while the kernel waits in Voila's pool for its page, and stops once the page's widget manager
asked for the market view's state (the page is then past its snapshot), removing the file.
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
_MODEL_ID = re.compile(rb'"id":"(p\d+)"')


def market_item(bundle: dict) -> tuple[orjson.Fragment, list[dict], str]:
    """(docs_json as JSON text, render_items, the live root id) of a render bundle of the market
    view, its model ids prefixed with :data:`ID_PREFIX`, the root embedded into
    :data:`ELEMENT_ID`."""
    (item,) = bundle["render_items"]
    (root,) = item["root_ids"]
    text = orjson.dumps(bundle["docs_json"], option=orjson.OPT_SERIALIZE_NUMPY)
    text = _MODEL_ID.sub(rb'"id":"' + ID_PREFIX.encode() + rb'\1"', text)
    items = [{"docid": item["docid"], "roots": {ID_PREFIX + root: ELEMENT_ID},
              "root_ids": [ID_PREFIX + root]}]
    return orjson.Fragment(text), items, root


def snapshot_bytes(dashboard) -> bytes:
    """The snapshot of ``dashboard``'s first screen, as JSON (format:
    :mod:`qdash.server.snapshot`)."""
    mon = dashboard.monitor
    docs_json, render_items, root = market_item(dashboard.charts.market_view.snapshot())
    summary = (f"{mon.source} · {mon.y} / {mon.x} · {mon.timeframe} bars · {mon.method}, "
               f"window {mon.window} · entry ±{mon.entry_z:g}, exit {mon.exit_z:g}"
               + (f", stop ±{mon.stop_z:g}" if mon.stop_z else ""))
    return orjson.dumps({
        "version": 1, "kernel_ms": int(time.time() * 1000), "head_px": HEAD_PX,
        "title": "qdash — pair monitor", "summary": summary,
        "status": dashboard.status.value, "stats": dashboard.stats.value,
        "market": {"docs_json": docs_json, "render_items": render_items}, "live_root": root})


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
