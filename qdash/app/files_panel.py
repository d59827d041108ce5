"""The dashboard's files tab: uploads into the store (with a byte progress bar and the load
report) and CSV downloads of what the monitor exports."""

from __future__ import annotations

import html
from collections.abc import Callable

from .controls import DataControls
from .dispatch import Dispatcher
from .monitor import PairMonitor
from .tables import csv_link


class _WidgetBar:
    """A byte-progress bar on a FloatProgress widget, fed from a loader thread."""

    def __init__(self, dispatch: Dispatcher, progress, total: int, desc: str):
        self.dispatch, self.progress = dispatch, progress
        self.total, self.done = max(total, 1), 0
        dispatch(self._show, desc)

    def _show(self, desc: str) -> None:
        self.progress.description = desc[:40]
        self.progress.value = 0.0

    def update(self, n: int) -> None:
        self.done += n
        self.dispatch(setattr, self.progress, "value", min(1.0, self.done / self.total))

    def close(self) -> None:
        self.dispatch(setattr, self.progress, "value", 1.0)


class FilesPanel(DataControls):
    """The files tab of ``monitor``; ``say(text, level)`` reports in the status line."""

    def __init__(self, monitor: PairMonitor, dispatch: Dispatcher,
                 say: Callable[[str, str], None]):
        super().__init__()
        self.monitor, self.dispatch, self.say = monitor, dispatch, say
        dispatch.on(self.upload, lambda c: self.load_uploads(c["new"]))
        dispatch.click(self.prepare, self.prepare_downloads)

    async def load_uploads(self, uploads) -> None:
        """Load files chosen in the upload widget into the store; show the report."""
        if not uploads:
            return
        files = [(item["name"], item["content"]) for item in uploads]
        reports = await self.monitor.load_files(
            files, progress=lambda path, n, desc: _WidgetBar(self.dispatch, self.progress, n,
                                                            desc))
        for (name, _), report in zip(files, reports):
            if not report.ok:
                self.say(f"{name}: rejected, nothing stored — see the report", "error")
        texts = [str(r) for r in reports]
        self.report.value = "".join(f"<pre style='font-size:11px'>{html.escape(t)}</pre>"
                                    for t in texts)
        if all("rejected" not in t for t in texts):
            self.say(f"loaded {len(uploads)} file(s) into {self.monitor.store.path}", "ok")

    def prepare_downloads(self) -> None:
        """CSV links for candles, analytics, stats over time, backtest trades, alert history."""
        self.downloads.value = "".join(csv_link(name, df)
                                       for name, df in self.monitor.export().items())
