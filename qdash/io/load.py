"""``load``: files → the store, with a report of what was read, stored, filtered and rejected.

All-or-nothing per file, with memory bounded by the chunk (``chunk_rows``). A file of up to
``transaction_rows`` rows (2M by default, a few seconds of writing) is read once and written in ONE
transaction, chunk by chunk, while a child process parses the next chunks
(:mod:`qdash.io.prefetch`); a malformed row anywhere rolls the whole file back. A larger file would
hold the store's write lock too long for one transaction, so it is read twice: a checking pass
(parse every row, keep nothing), then a writing pass in transactions of ``transaction_rows`` rows.
With ``skip_bad=True`` bad rows are skipped and listed, so a file is never rejected and is read
once, in transactions of ``transaction_rows`` rows. (A *store* failure, e.g. a full disk, in a
file of more than ``transaction_rows`` rows can leave its earlier transactions stored; loading
again is idempotent, so simply retry.)
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from ..errors import DataFormatError, QdashError
from ..model import ms_to_index
from ..store import Store
from .candles import _read_bars
from .detect import FORMAT_TITLES, detect
from .prefetch import can_fork, parsed_chunks
from .ticks import DEFAULT_CHUNK_ROWS, TickChunk

# Rows of a file written in one transaction (while it runs, other writers wait: ~5 s at 400k/s).
FILE_TRANSACTION_ROWS = 2_000_000

log = logging.getLogger(__name__)

MAX_SHOWN_BAD_ROWS = 20


@dataclass
class SymbolReport:
    """Per file and symbol: rows read (trades parsed, including filtered ones), stored (new),
    duplicates (already in the store; of them ``matched``: id-less rows that are trades stored
    with their exchange id), filtered by reason, and the time span (ms) of kept rows."""

    read: int = 0
    stored: int = 0
    duplicates: int = 0
    matched: int = 0
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
                t["matched"] += s.matched
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
                if s.matched:
                    out.append(f"    duplicates without trade id, matched to stored exchange "
                               f"trades (same time, price, size): {s.matched:,}")
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
         chunk_rows: int = DEFAULT_CHUNK_ROWS, transaction_rows: int = FILE_TRANSACTION_ROWS,
         parallel: bool | None = None, raise_on_error: bool = True) -> LoadReport:
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
    ``chunk_rows`` bounds the rows parsed at a time, ``transaction_rows`` the rows of one write
    transaction (see the module doc); ``parallel`` parses in a child process (None: when this
    process has a single thread, see :mod:`qdash.io.prefetch`).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if parallel is None:  # decided before a progress bar starts a thread of its own
        parallel = can_fork()
    own = not isinstance(store, Store)
    st = store if isinstance(store, Store) else Store(store)
    report = LoadReport()
    try:
        for path in paths:
            fr = FileReport(str(path))
            report.files.append(fr)
            try:
                _load_file(Path(path), st, fr, format, symbol, skip_bad, progress, timeframe,
                           dict(chunk_rows=chunk_rows, parallel=parallel), transaction_rows)
                _require_trades(fr, symbol)
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


def _require_trades(fr: FileReport, symbol: str | None) -> None:
    """A tick file from which no trade was read is an error naming the format it looked like
    (nothing of it was stored: there was nothing to store). A file with trades of other symbols
    only, when ``symbol`` selects one, is not."""
    if fr.kind != "ticks" or any(s.read for s in fr.symbols.values()):
        return
    if symbol is not None and fr.skipped.get("rows of other symbols"):
        return
    skipped = "; ".join(f"skipped {reason}: {n:,}" for reason, n in sorted(fr.skipped.items()))
    raise DataFormatError(
        f"no trade recognised in it: it looked like {FORMAT_TITLES[fr.format]} ({fr.format})"
        f"{', but ' + skipped if skipped else ''}; nothing stored. Check the file, or name its "
        "format (--format)", path=fr.path)


def _bar(progress, path: Path, desc: str):
    if not progress:
        return None
    if callable(progress):
        return progress(path, path.stat().st_size, desc)
    from tqdm.auto import tqdm

    return tqdm(total=path.stat().st_size, unit="B", unit_scale=True, desc=desc, leave=False)


def _load_file(path: Path, store: Store, fr: FileReport, format, symbol, skip_bad, progress,
               timeframe, parse: dict, transaction_rows: int) -> None:
    det = detect(path, format)
    fr.format, fr.kind = det.format, det.kind
    if det.kind == "bars":
        _load_bars(path, det, store, fr, symbol, timeframe, skip_bad, progress)
        return

    @contextmanager
    def chunks(desc: str, prepare=_split_by_symbol):
        bar = _bar(progress, path, desc)
        try:
            with parsed_chunks(path, symbol=symbol, skip_bad=skip_bad, bar=bar, detected=det,
                               prepare=prepare, **parse) as it:
                yield it
        finally:
            if bar is not None:
                bar.close()

    if skip_bad:  # bad rows are skipped, so the file cannot be rejected: write as it is read
        with chunks(path.name) as it:
            _write_in_transactions(store, fr, it, transaction_rows)
        return
    try:
        with chunks(path.name) as it, store.transaction():
            rows = 0
            for ch in it:
                rows += _write_chunk(store, fr, ch)
                if rows > transaction_rows:
                    raise _TooLargeForOneTransaction
        return
    except _TooLargeForOneTransaction:
        fr.symbols.clear()
        fr.skipped.clear()
    log.info("%s: more than %s rows, checking it before writing", path, f"{transaction_rows:,}")
    with chunks(f"{path.name} (checking)", prepare=lambda ch: None) as it:
        for _ in it:  # parsing raises at the first bad row; the rows themselves are not needed
            pass
    with chunks(path.name) as it:
        _write_in_transactions(store, fr, it, transaction_rows)


class _TooLargeForOneTransaction(Exception):
    """Rolls back the single-transaction write of a file that turned out larger than allowed."""


def _write_in_transactions(store: Store, fr: FileReport, chunks, rows_per_transaction) -> None:
    """Write every chunk, committing after every ``rows_per_transaction`` rows or more."""
    chunks = iter(chunks)
    more = True
    while more:
        more = False
        with store.transaction():
            rows = 0
            for ch in chunks:
                rows += _write_chunk(store, fr, ch)
                if rows >= rows_per_transaction:
                    more = True
                    break


@dataclass
class _SymbolBatch:
    """The ticks of one symbol in a chunk, with their time span (ms)."""

    symbol: str
    ticks: pd.DataFrame
    first_ms: int
    last_ms: int


def _split_by_symbol(ch: TickChunk) -> tuple[TickChunk, list[_SymbolBatch]]:
    """A chunk (without its ticks) and its ticks as one batch per symbol, ready to write; runs in
    the parser process when parsing is parallel."""
    t = ch.ticks
    if not len(t):
        return replace(ch, ticks=None), []
    syms = t["symbol"]
    if (syms == syms.iat[0]).all():
        groups = [(syms.iat[0], t)]
    else:
        groups = [(s, g.reset_index(drop=True)) for s, g in t.groupby("symbol", sort=True)]
    batches = []
    for s, g in groups:
        ts = g["ts"].to_numpy()
        batches.append(_SymbolBatch(str(s), g, int(ts.min()), int(ts.max())))
    return replace(ch, ticks=None), batches


def _write_chunk(store: Store, fr: FileReport, prepared) -> int:
    """Write one chunk from :func:`_split_by_symbol` (one batch per symbol) and count it in
    ``fr``; returns its rows."""
    ch, batches = prepared
    for s, n in ch.read.items():
        fr.symbol(s).read += n
    for (s, reason), n in ch.filtered.items():
        fr.symbol(s).filtered[reason] += n
    fr.skipped.update(ch.skipped)
    fr.bad_rows += [f"{fr.path}:{b}" for b in ch.bad][:max(0, 1000 - len(fr.bad_rows))]
    fr.bad_count += ch.bad_count
    for b in batches:
        res = store.write_ticks(b.ticks)
        rep = fr.symbol(b.symbol)
        rep.stored += res.stored
        rep.duplicates += res.duplicates
        rep.matched += res.matched
        rep.span(b.first_ms, b.last_ms)
    return sum(len(b.ticks) for b in batches)


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
