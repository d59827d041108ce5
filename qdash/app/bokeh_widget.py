"""A Bokeh layout as one ipywidget that sends at most one patch message set per frame.

``jupyter_bokeh.BokehModel`` sends every Bokeh document event (each ``ColumnDataSource.stream``,
``patch`` or property change) as its own PATCH-DOC message: 3 comm messages, plus 2 for every
binary buffer. A dashboard with a dozen sources updated at 10 Hz would exceed what the Jupyter
server forwards (it drops IOPub above 1000 msg/s) and what the browser keeps up with.
:class:`FrameBokehModel` queues the events and :meth:`flush` sends them all as ONE PATCH-DOC
message, so the render loop costs 3 comm messages per frame whatever it changed. Stream data is
sent as lists (inline JSON, no binary buffers), so the count stays 3.

The browser side of ``jupyter_bokeh`` echoes every event it applied from a patch back to the kernel
(it queues them while the patch is applied, then sends them), and ``BokehModel`` applies them
again: each ``stream`` would be appended twice to the kernel's copy of the data, whose row count
then no longer matches the browser's (later ``patch`` indices miss), and an echo of an older
``data`` value can overwrite a newer one. Data only ever flows kernel → browser here, so
:meth:`_sync_model` drops ``ColumnsStreamed``/``ColumnsPatched`` and ``data`` changes coming
from the browser; everything else (ranges, selections, tool events) is applied as usual.

It also sends a full snapshot whenever a front-end asks for the widget's whole state — which the
widget manager of a freshly loaded page (Voila, a reloaded JupyterLab tab) does before it creates
the view. Patches sent before a view exists are lost for that view: the ones before the answer
are in the snapshot, but the page creates the view some time *after* the answer, and patches sent
in between would be lost (the view's data would then lag the kernel's for good, and later patch
indices would miss). Worse, each patch is three comm messages (header, metadata, content) read by
a per-view protocol receiver: a view created between two of them reads every later patch out of
phase and silently stops updating. So after a whole-state request :meth:`flush` holds patches
for ``HOLD_S`` (the page creates its view meanwhile), then resends the whole data of every
``ColumnDataSource`` (again at each ``RESYNC_AFTER_S``), as ``data`` changes in the PATCH-DOC:
they travel in order with the other patches (a ``render_bundle`` update would not: the widget
manager applies state updates asynchronously, custom messages at once) and keep zoom and pan.
"""

from __future__ import annotations

import json
import logging
import time

from bokeh.core.serialization import Serializer
from bokeh.document.events import (
    ColumnDataChangedEvent,
    ColumnsPatchedEvent,
    ColumnsStreamedEvent,
    ModelChangedEvent,
)
from bokeh.models import ColumnDataSource
from bokeh.protocol import Protocol
from jupyter_bokeh import BokehModel

log = logging.getLogger(__name__)

HOLD_S = 1.5                 # no patch this long after a whole-state request (s)
RESYNC_AFTER_S = (1.5, 6.0)  # whole data again this long after a whole-state request (s)


def bokeh_resources():
    """BokehJS for the page, inline (offline): only the core library. The dashboard uses plots
    only, no Bokeh widgets, tables, WebGL or MathJax; ``bokeh.resources.INLINE`` would put all
    five components in the page, 3.9 MB of script instead of 1.3 MB for the browser to parse
    before the first paint."""
    from bokeh.resources import Resources

    return Resources(mode="inline", components=["bokeh"])


def notebook_resources(server_url: str | None = None):
    """The BokehJS a notebook's output loads: from the :data:`~qdash.server.bokehjs.ROOT` route
    (:mod:`qdash.server.bokehjs`) of the qdash server at ``server_url`` (default
    ``$QDASH_SERVER_URL``, which the Jupyter server extension gives the kernels it starts): the
    output then holds a script URL, a few kB; without a server, :func:`bokeh_resources` inline
    (offline, 1.3 MB). ``bokeh.resources.INLINE`` put 3.9 MB of script in the output, twice (as
    JavaScript and as Bokeh's load bundle): 8 MB in every saved notebook with a plot."""
    from bokeh.resources import Resources

    from ..config import Settings
    from ..server import bokehjs

    base = server_url or Settings.from_env().server_url
    if not base:
        return bokeh_resources()
    return Resources(mode="server", root_url=base.rstrip("/") + "/" + bokehjs.ROOT,
                     components=["bokeh"])


def load_bokehjs() -> None:
    """Make this notebook's Bokeh output work (``bokeh.io.output_notebook``), as light as it
    can be: nothing when the published app's page loads BokehJS itself, else
    :func:`notebook_resources`."""
    from bokeh.io import output_notebook

    from ..server import bokehjs

    if not bokehjs.page_has_bokehjs():
        output_notebook(resources=notebook_resources(), hide_banner=True)


class FrameBokehModel(BokehModel):
    """``BokehModel`` whose document events go out in one message set per :meth:`flush`."""

    def __init__(self, model, **kwargs):
        self._queued: list = []
        self._resync_at: list[float] = []  # monotonic times of the pending snapshots
        self._hold_until = 0.0
        self._snapshot: tuple[dict, list] | None = None  # (bundle, its data slots): snapshot()
        self.messages_sent = 0  # comm messages sent by flush(), for rate accounting
        self.state_requests = 0  # whole-state requests of a front end (not the widget's opening)
        super().__init__(model, **kwargs)

    def update_from_model(self, model) -> None:
        self._snapshot = None
        super().update_from_model(model)

    def _document_patched(self, event) -> None:
        if not _is_data_event(event):  # a title, a range, a renderer... (from either side)
            self._snapshot = None
        if event.setter is self:  # the change came from the browser: do not echo it back
            return
        self._queued.append(event)

    def snapshot(self) -> dict:
        """The render bundle of the document as it is now. Serializing the market view's 511
        models takes 0.4 s, and a page waits for it before its first paint; while only data
        changes (all a live dashboard does between control changes), the document's structure
        stays as serialized, so the bundle is built once per structural change and each call
        only encodes every ``ColumnDataSource``'s current data into it."""
        if self._snapshot is None:
            bundle = self._model_to_traits(self._model)
            self._snapshot = (bundle, _data_slots(bundle, self._model))
        bundle, slots = self._snapshot
        encode = Serializer(deferred=False).encode
        for source, attributes in slots:
            attributes["data"] = encode(source.data)
        return bundle

    def _sync_model(self, model, content, buffers) -> None:
        """Apply browser events, except echoes of the kernel's own data changes (module doc)."""
        kind = content.get("kind") if isinstance(content, dict) else None
        if kind in ("ColumnsStreamed", "ColumnsPatched") or (
                kind == "ModelChanged" and content.get("attr") == "data"):
            return
        super()._sync_model(model, content, buffers)

    def flush(self) -> int:
        """Send every queued document event as one PATCH-DOC message (with every source's whole
        data when a resync is due, module doc); returns comm messages sent."""
        now = time.monotonic()
        if now < self._hold_until:
            return 0
        if self._resync_at and now >= self._resync_at[0] and self.comm is not None:
            self._resync_at.pop(0)
            doc = self._document
            self._queued += [ModelChangedEvent(doc, src, "data", dict(src.data))
                             for src in self._model.select({"type": ColumnDataSource})]
        if not self._queued or self.comm is None:
            self._queued.clear()
            return 0
        events, self._queued = self._queued, []
        msg = Protocol().create("PATCH-DOC", events)
        parts = [msg.header_json, msg.metadata_json, msg.content_json]
        for part in parts:
            self.send({"msg": "patch", "payload": part})
        sent = len(parts)
        for buffer in msg.buffers:
            self.send({"msg": "patch", "payload": json.dumps(buffer.ref)})
            self.send({"msg": "patch"}, [buffer.to_bytes()])
            sent += 2
        self.messages_sent += sent
        return sent

    def get_state(self, key=None, drop_defaults=False):
        """Whole-state requests get a fresh snapshot of the Bokeh document (see module doc)."""
        if key is None and getattr(self, "_model", None) is not None:
            if self.comm is not None:  # a page asks (the widget's own opening has no comm yet)
                self.state_requests += 1
            self.flush()  # views that exist get what they miss; the snapshot includes it all
            self._trait_values["render_bundle"] = self.snapshot()
            now = time.monotonic()
            self._hold_until = now + HOLD_S
            self._resync_at = [now + delay for delay in RESYNC_AFTER_S]
        return super().get_state(key=key, drop_defaults=drop_defaults)


def _is_data_event(event) -> bool:
    """Whether ``event`` changes only a ``ColumnDataSource``'s data."""
    if isinstance(event, ColumnsStreamedEvent | ColumnsPatchedEvent | ColumnDataChangedEvent):
        return True
    return (isinstance(event, ModelChangedEvent) and event.attr == "data"
            and isinstance(event.model, ColumnDataSource))


def _data_slots(bundle: dict, root) -> list[tuple[ColumnDataSource, dict]]:
    """(source, the ``attributes`` of its object in ``bundle``'s document JSON) for every
    ``ColumnDataSource`` under ``root`` (each object is written out once, where first met)."""
    sources = {s.id: s for s in root.select({"type": ColumnDataSource})}
    slots, stack = [], [bundle["docs_json"]]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("type") == "object" and node.get("id") in sources:
                slots.append((sources[node["id"]], node.setdefault("attributes", {})))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return slots
