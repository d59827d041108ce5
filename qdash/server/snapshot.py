"""Page snapshots: what a published page paints before Voila's front end starts.

Each kernel of the app writes, every second until its page connects, a snapshot of its market
view to ``<snapshot dir>/<kernel id>.json`` (:mod:`qdash.app.page_snapshot`; the app exports the
directory as ``$QDASH_SNAPSHOT_DIR``). A page request takes a preheated kernel whose notebook has
already run: the page's HTML (the ``qdash`` template) carries :data:`MARKER` in its head, and
:func:`inject` replaces it with that kernel's snapshot as a JSON script element, so building the
page costs the request one file read. The template's script draws it with the BokehJS the page
loads anyway and hands over to the live widgets when they have rendered.

Format of a snapshot file (JSON object, written by one function, read by the template's script):
``version`` (1), ``kernel_ms`` (kernel wall clock when taken, epoch ms), ``head_px`` (height of the
dashboard's header: title, controls, status line), ``title``, ``summary`` (the controls in
words), ``status`` and ``stats`` (HTML of the status line and of the statistics table),
``market`` (Bokeh's embed format of the market view: ``docs_json`` and ``render_items``, its
model ids prefixed so that they never collide with the live document's), ``live_root`` (the id
of the live market view's root model, which the script waits for).

Nothing here imports bokeh or the dashboard: the server reads files only.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

MARKER = "<!--qdash-snapshot-->"
ELEMENT_ID = "qdash-snapshot-data"
_KERNEL_ID = re.compile(r'"kernelId":\s*"([0-9a-fA-F-]{8,64})"')


def snapshot_file(directory: str | os.PathLike, kernel_id: str) -> Path:
    """Where the kernel ``kernel_id`` writes its snapshot under ``directory``."""
    if not re.fullmatch(r"[0-9a-fA-F-]{8,64}", kernel_id):
        raise ValueError(f"snapshot_file: {kernel_id!r} is not a kernel id")
    return Path(directory) / f"{kernel_id}.json"


def write_snapshot(path: Path, text: bytes) -> None:
    """Replace ``path`` by ``text`` atomically (a reader sees the old or the new file whole)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(text)
    os.replace(tmp, path)


def script_element(snapshot: bytes) -> str:
    """The snapshot as a ``<script type="application/json">`` element (``</`` escaped, so the
    text cannot close the element whatever the stats table holds)."""
    body = snapshot.decode().replace("</", "<\\/")
    return f'<script type="application/json" id="{ELEMENT_ID}">{body}</script>'


def inject(html: str, directory: str | os.PathLike | None) -> str:
    """``html`` with :data:`MARKER` replaced by the snapshot of the kernel the page names
    (``"kernelId"`` of Voila's ``jupyter-config-data`` in the same text); unchanged when there
    is no marker, no kernel id yet (a page whose kernel starts after its head was sent) or no
    snapshot (a kernel still running its notebook)."""
    if directory is None or MARKER not in html:
        return html
    found = _KERNEL_ID.search(html)
    if found is None:
        return html
    try:
        snapshot = snapshot_file(directory, found.group(1)).read_bytes()
    except OSError:
        return html
    return html.replace(MARKER, script_element(snapshot), 1)
