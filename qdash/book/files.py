"""Read a book run back from its ``--out`` directory: the CSV tables
(:meth:`~qdash.book.result.BookResult.to_csv`) and, where ``report.html`` is there, the spec,
fingerprint and versions it embeds (:func:`qdash.book.report.read_provenance`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..errors import QdashError
from .report import read_provenance
from .result import BOOK_TABLES, BookResult

TIME_COLUMNS = ("window_start", "window_end", "entry_time", "exit_time", "open_time")
TEXT_COLUMNS = ("y", "x", "symbol", "exit_reason", "name")


def read_book(out_dir: str | Path) -> BookResult:
    """The :class:`BookResult` written to ``out_dir`` (times back to tz-aware UTC, symbols and
    names as text; no baseline curves: the CSVs hold only their metrics). A missing directory or
    table, or a table with other columns, raises :class:`~qdash.errors.QdashError` naming it."""
    out = Path(out_dir)
    if not out.is_dir():
        raise QdashError(f"book: {out} is not a directory of a `qdash book --out` run")
    tables = {}
    for name, columns in BOOK_TABLES.items():
        path = out / f"{name}.csv"
        if not path.is_file():
            raise QdashError(f"book: {path} is missing (write it with `qdash book --out {out}`)")
        frame = pd.read_csv(path, dtype={c: str for c in TEXT_COLUMNS if c in columns},
                            keep_default_na=False, na_values={c: [""] for c in columns
                                                              if c not in TEXT_COLUMNS})
        if tuple(frame.columns) != columns:
            raise QdashError(f"book: {path} has columns {tuple(frame.columns)}, expected "
                             f"{columns}")
        for col in TIME_COLUMNS:
            if col in frame.columns:
                frame[col] = pd.to_datetime(frame[col], utc=True, format="ISO8601")
        tables[name] = frame
    report = out / "report.html"
    prov = read_provenance(report.read_text(encoding="utf-8")) if report.is_file() else {}
    return BookResult(**tables, spec=prov.get("spec", {}), fingerprint=prov.get("fingerprint", ""),
                      versions=prov.get("versions", {}))
