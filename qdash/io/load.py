"""``load``: files → the store, with a report of what was read, stored, filtered and rejected.

All-or-nothing per file, with memory bounded by the chunk: a file is parsed and checked in full
before its first write. A file that fits in one chunk is parsed once and written; a larger file is
read twice — a first validating pass (parse and check every row, keep nothing) and then a second
pass that writes chunk by chunk with ``Store.write_ticks`` (each batch one transaction). A
malformed file therefore stores nothing. With ``skip_bad=True`` bad rows are skipped and listed,
so there is a single pass. (A *store* failure mid-file, e.g. a full disk, can leave the earlier
batches of that file stored; loading again is idempotent, so simply retry.)
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataFormatError, QdashError
from ..model import ms_to_index
from ..store import Store
from .candles import _read_bars
from .detect import detect
from .ticks import DEFAULT_CHUNK_ROWS, iter_tick_chunks

log = logging.getLogger(__name__)

MAX_SHOWN_BAD_ROWS = 20


@dataclass
class SymbolReport:
    """Per file and symbol: rows read (trades parsed, including filtered ones), stored (new),
    duplicates (already in the store), filtered by reason, and the time span (ms) of kept rows."""

    read: int = 0
    stored: int = 0
    duplicates: int = 0
    filtered: Counter = field(default_factory=Counter)
    first_ms: int | None = None
    last_ms: int | None = None

    def span(self, first_ms, last_ms) -> None:
        if first_ms is None:
            return
        self.first_ms = first_ms if self.first_ms is None else min(self.first_ms, first_ms)
        self.last_ms = last_ms if self.last_ms is None else max(self.last_ms, last_ms)


@dataclass
class FileReport:
    """One file: its ``format``, ``kind`` (ticks/bars), ``timeframe`` (bars), per-``symbols``
    reports, ``skipped`` (non-trade frames, other symbols), bad rows (``skip_bad``) and, when the
    file was rejected, the ``error`` (nothing from it was stored)."""

    path: str
    format: str | None = None
    kind: str | None = None
    timeframe: str | None = None
    symbols: dict[str, SymbolReport] = field(default_factory=dict)
    skipped: Counter = field(default_factory=Counter)
    bad_rows: list[str] = field(default_factory=list)
    bad_count: int = 0
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    def symbol(self, s: str) -> SymbolReport:
        return self.symbols.setdefault(s, SymbolReport())

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class LoadReport:
    """What :func:`load` did, file by file. ``ok`` is False when a file was rejected;
    ``exit_code`` is 0 when ok, 1 otherwise. ``str(report)`` is a readable table."""

    files: list[FileReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.files)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def totals(self) -> dict[str, int]:
        """Rows read, stored, duplicates, filtered and bad over all files."""
        t = Counter()
        for f in self.files:
            t["bad"] += f.bad_count
            for s in f.symbols.values():
                t["read"] += s.read
                t["stored"] += s.stored
                t["duplicates"] += s.duplicates
                t["filtered"] += sum(s.filtered.values())
        return dict(t)

    def __str__(self) -> str:
        head = (f"{'symbol':<12} {'read':>10} {'stored':>10} {'dupl.':>9} {'filtered':>9}"
                "  span (UTC)")
        out = []
        for f in self.files:
            what = f.format or "?"
            if f.timeframe:
                what += f" {f.timeframe}"
            out.append(f"{f.path} [{what}]" + ("" if f.ok else "  REJECTED"))
            if f.error:
                out.append(f"  error: {f.error}")
                continue
            out.append("  " + head)
            for sym, s in sorted(f.symbols.items()):
                span = ""
                if s.first_ms is not None:
                    a, b = ms_to_index([s.first_ms, s.last_ms])
                    span = f"{a:%Y-%m-%d %H:%M:%S.%f}"[:-3] + " → " + \
                        f"{b:%Y-%m-%d %H:%M:%S.%f}"[:-3]
                out.append(f"  {sym:<12} {s.read:>10,} {s.stored:>10,} {s.duplicates:>9,} "
                           f"{sum(s.filtered.values()):>9,}  {span}")
                for reason, n in sorted(s.filtered.items()):
                    out.append(f"    filtered {reason}: {n:,}")
            for reason, n in sorted(f.skipped.items()):
                out.append(f"  skipped {reason}: {n:,}")
            for note in f.notes:
                out.append(f"  note: {note}")
            if f.bad_count:
                out.append(f"  bad rows skipped: {f.bad_count:,}")
                for b in f.bad_rows[:MAX_SHOWN_BAD_ROWS]:
                    out.append(f"    {b}")
                if f.bad_count > MAX_SHOWN_BAD_ROWS:
                    out.append(f"    ... and {f.bad_count - MAX_SHOWN_BAD_ROWS:,} more")
        t = self.totals()
        out.append(f"total: read {t.get('read', 0):,}, stored {t.get('stored', 0):,}, "
                   f"duplicates {t.get('duplicates', 0):,}, filtered {t.get('filtered', 0):,}, "
                   f"bad rows skipped {t.get('bad', 0):,}; "
                   + ("ok" if self.ok else f"{sum(not f.ok for f in self.files)} file(s) rejected"))
        return "\n".join(out)


def load(paths: str | os.PathLike | Iterable[str | os.PathLike], store: Store | str | None = None,
         format: str | None = None, symbol: str | None = None, skip_bad: bool = False,
         progress=True, *, timeframe: str | None = None,
         chunk_rows: int = DEFAULT_CHUNK_ROWS, raise_on_error: bool = True) -> LoadReport:
    """Load tick and candle files into ``store`` (a :class:`Store`, a path, or None for the
    default ``$QDASH_DB``/``./qdash.db``); returns a :class:`LoadReport`.

    Formats are detected per file (``format`` overrides, see :mod:`qdash.io.detect`); ``symbol``
    names the symbol of files that carry none and otherwise selects one; ``timeframe`` overrides
    candle timeframe detection. A malformed file is rejected and nothing from it is stored: with
    ``raise_on_error`` (default) :class:`DataFormatError` is raised at once (its ``report``
    attribute holds the report so far); otherwise the error is recorded in the report and the
    next file is loaded (``report.ok`` False, ``exit_code`` 1). ``skip_bad`` skips malformed rows
    instead, listing them. ``progress``: True shows a tqdm bar of bytes read per file; a
    callable ``progress(path, total_bytes, desc)`` returns a bar of the caller's own (anything
    with ``update(n_bytes)`` and ``close()``, e.g. a dashboard progress widget); False: none.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    own = not isinstance(store, Store)
    st = store if isinstance(store, Store) else Store(store)
    report = LoadReport()
    try:
        for path in paths:
            fr = FileReport(str(path))
            report.files.append(fr)
            try:
                _load_file(Path(path), st, fr, format, symbol, skip_bad, progress, timeframe,
                           chunk_rows)
            except QdashError as e:
                fr.error = str(e)
                fr.symbols.clear()
                log.warning("rejected %s: %s", path, e)
                if raise_on_error:
                    e.report = report
                    raise
    finally:
        if own:
            st.close()
    return report


def _bar(progress, path: Path, desc: str):
    if not progress:
        return None
    if callable(progress):
        return progress(path, path.stat().st_size, desc)
    from tqdm.auto import tqdm

    return tqdm(total=path.stat().st_size, unit="B", unit_scale=True, desc=desc, leave=False)


def _load_file(path: Path, store: Store, fr: FileReport, format, symbol, skip_bad, progress,
               timeframe, chunk_rows) -> None:
    det = detect(path, format)
    fr.format, fr.kind = det.format, det.kind
    if det.kind == "bars":
        _load_bars(path, det, store, fr, symbol, timeframe, skip_bad, progress)
        return
    multi = False
    if not skip_bad:  # validating pass for files larger than one chunk
        bar = _bar(progress, path, f"{path.name} (checking)")
        try:
            it = iter_tick_chunks(path, symbol=symbol, chunk_rows=chunk_rows, bar=bar,
                                  detected=det)
            first = next(it)
            second = next(it, None)
            if second is None:  # one chunk: parsed and checked already, write it
                _write_chunk(store, fr, first)
                return
            multi = True
            del first, second
            for _ in it:
                pass
        finally:
            if bar is not None:
                bar.close()
    bar = _bar(progress, path, path.name)
    try:
        for ch in iter_tick_chunks(path, symbol=symbol, skip_bad=skip_bad, chunk_rows=chunk_rows,
                                   bar=bar, detected=det):
            _write_chunk(store, fr, ch)
    finally:
        if bar is not None:
            bar.close()
    log.info("loaded %s (%s, %s pass%s)", path, det.format, 2 if multi else 1,
             "es" if multi else "")


def _write_chunk(store: Store, fr: FileReport, ch) -> None:
    for s, n in ch.read.items():
        fr.symbol(s).read += n
    for (s, reason), n in ch.filtered.items():
        fr.symbol(s).filtered[reason] += n
    fr.skipped.update(ch.skipped)
    fr.bad_rows += [f"{fr.path}:{b}" for b in ch.bad][:max(0, 1000 - len(fr.bad_rows))]
    fr.bad_count += ch.bad_count
    t = ch.ticks
    if not len(t):
        return
    syms = t["symbol"].to_numpy()
    uniq = np.unique(syms.astype(str))
    for s in uniq:
        part = t if len(uniq) == 1 else t[syms == s]
        res = store.write_ticks(part)
        rep = fr.symbol(s)
        rep.stored += res.stored
        rep.duplicates += res.duplicates
        ts = part["ts"].to_numpy()
        rep.span(int(ts.min()), int(ts.max()))


def _load_bars(path: Path, det, store: Store, fr: FileReport, symbol, timeframe, skip_bad,
               progress) -> None:
    bar = _bar(progress, path, path.name)
    try:
        bars, tf, err = _read_bars(path, det, symbol, timeframe, skip_bad, bar)
    finally:
        if bar is not None:
            bar.close()
    fr.timeframe = tf
    sym = bars.attrs["symbol"]
    rep = fr.symbol(sym)
    rep.filtered.update(bars.attrs["filtered"])
    rep.read = len(bars) + sum(rep.filtered.values())
    fr.bad_rows = [f"{fr.path}:{b}" for b in bars.attrs["bad_rows"]]
    fr.bad_count = int(err.mask.sum())
    for col, fill in (("volume", 0.0), ("trades", 0)):
        missing = bars[col].isna()
        if missing.any():
            fr.notes.append(f"{col} absent in {int(missing.sum())} candles: stored as {fill}")
            bars[col] = bars[col].fillna(fill)
    if len(bars):
        res = store.write_bars(bars, sym, tf)
        rep.stored, rep.duplicates = res.stored, res.duplicates
        ms = bars.index.as_unit("ms").asi8
        rep.span(int(ms.min()), int(ms.max()))


__all__ = ["FileReport", "LoadReport", "SymbolReport", "load", "DataFormatError"]
