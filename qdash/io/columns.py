"""Column parsing for CSV chunks: values plus a per-row "bad" record
(:class:`~qdash.errors.RowError`: line, field, reason).

Each parser returns numpy arrays and marks rows it cannot read in a :class:`RowErrors`; the caller
then either raises for the first bad row (strict) or drops the bad rows and lists them (skip_bad).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import RowError
from ..model import MAX_TS_MS, MIN_TS_MS, is_valid_symbol, to_epoch_ms

MAX_LISTED_BAD_ROWS = 1000
SKIP_BAD_HINT = ("; nothing from this file was stored (or pass skip_bad=True / --skip-bad to skip "
                 "bad rows)")


class RowErrors:
    """Bad rows of one chunk; ``lines`` maps row position → 1-based file line."""

    def __init__(self, lines: np.ndarray):
        self.lines = lines
        self.mask = np.zeros(len(lines), dtype=bool)
        self.rows: list[RowError] = []

    def mark(self, bad: np.ndarray, field: str, describe) -> None:
        """Mark rows where ``bad`` is true (unless already bad); ``describe(i)``: the reason."""
        new = bad & ~self.mask
        if not new.any():
            return
        self.mask |= new
        for i in np.flatnonzero(new)[:MAX_LISTED_BAD_ROWS]:
            self.rows.append(RowError(describe(int(i)), line=int(self.lines[i]), field=field))

    def raise_first(self, path: str) -> None:
        """Raise the bad row with the lowest line, if any (see :func:`reject`)."""
        if self.rows:
            reject(self.rows, path)

    def sorted_rows(self) -> list[RowError]:
        return sorted(self.rows, key=lambda r: r.line)


def reject(rows: list[RowError], path: str, hint: str = SKIP_BAD_HINT) -> None:
    """Raise the first of ``rows`` (lowest line) as the error of file ``path``."""
    first = min(rows, key=lambda r: r.line)
    raise first.replace(path=path, message=first.message + hint)


def _shown(series: pd.Series, i: int) -> str:
    v = series.iloc[i]
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "an empty field"
    return repr(str(v)[:40])


def floats(s: pd.Series, field: str, err: RowErrors) -> np.ndarray:
    """Decimal numbers → float64; the literals ``nan``/``inf`` pass (callers filter them)."""
    if s.dtype.kind in "iuf":
        v = s.to_numpy(dtype=np.float64)
        bad = np.isnan(v)
    else:
        v = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64)
        bad = np.isnan(v)
        if bad.any():
            txt = s[bad].astype(str).str.strip().str.lower()
            bad[np.flatnonzero(bad)[txt.isin(["nan", "+nan", "-nan"]).to_numpy()]] = False
    err.mark(bad, field, lambda i: f"expected a number, got {_shown(s, i)}")
    return v


def integers(s: pd.Series, field: str, err: RowErrors) -> np.ndarray:
    """Whole numbers → int64 (e.g. trade ids)."""
    if s.dtype.kind in "iu":
        return s.to_numpy(dtype=np.int64)
    v = s.to_numpy(dtype=np.float64) if s.dtype.kind == "f" else \
        pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(v) | (v != np.round(v)) | (np.abs(v) >= 2.0**63)
    err.mark(bad, field, lambda i: f"expected an integer, got {_shown(s, i)}")
    return np.where(bad, 0, v).astype(np.int64)


def times_ms(s: pd.Series, field: str, err: RowErrors) -> np.ndarray:
    """Epoch numbers in s/ms/µs/ns (by magnitude) or ISO-8601 strings → int64 ms UTC."""
    n = len(s)
    if s.dtype.kind in "iu":
        ms = to_epoch_ms(s.to_numpy(dtype=np.int64))
        bad = np.zeros(n, dtype=bool)
    else:
        num = s.to_numpy(dtype=np.float64) if s.dtype.kind == "f" else \
            pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64)
        ms = np.zeros(n, dtype=np.int64)
        ok = np.isfinite(num)
        secs = ok & (np.abs(num) < 1e11)
        ms[secs] = np.round(num[secs] * 1000).astype(np.int64)
        big = ok & ~secs
        ms[big] = to_epoch_ms(np.round(num[big]))
        bad = ~ok
        if bad.any() and s.dtype.kind not in "f":
            iso = pd.to_datetime(s[bad], utc=True, format="ISO8601", errors="coerce")
            parsed = ~iso.isna().to_numpy()
            idx = np.flatnonzero(bad)[parsed]
            ms[idx] = iso[parsed].to_numpy(dtype="datetime64[ms]").astype(np.int64)
            bad[idx] = False
    err.mark(bad, field, lambda i: "expected an epoch time (s, ms, µs or ns) or an ISO-8601 "
             f"time, got {_shown(s, i)}")
    out = ~bad & ((ms < MIN_TS_MS) | (ms > MAX_TS_MS))
    err.mark(out, field, lambda i: f"time {_shown(s, i)} is outside 2009..2100")
    return ms


_MAKER = {"true": 1, "false": 0, "1": 1, "0": 0, "t": 1, "f": 0, "1.0": 1, "0.0": 0, "": -1}
_TAKER_SIDE = {"buy": 0, "b": 0, "sell": 1, "s": 1, "": -1}


def sides(s: pd.Series, field: str, err: RowErrors, taker_side: bool) -> np.ndarray:
    """``is_buyer_maker`` as int8 (1 taker sold, 0 taker bought, -1 unknown).

    ``taker_side=True`` reads a ``side`` column (``buy``/``sell`` of the taker); otherwise the
    column is Binance's ``is_buyer_maker`` (``true``/``false``/``1``/``0``).
    """
    if s.dtype.kind == "b":
        return s.to_numpy(dtype=np.int8)
    table = _TAKER_SIDE if taker_side else _MAKER
    if s.dtype.kind in "iuf" and not taker_side:
        v = s.to_numpy(dtype=np.float64)
        bad = ~(np.isnan(v) | (v == 0) | (v == 1))
        out = np.where(np.isnan(v), -1, v).astype(np.int8)
    else:
        key = s.astype(str).str.strip().str.lower()
        key = key.where(~s.isna().to_numpy(), "")
        mapped = key.map(table)
        bad = mapped.isna().to_numpy()
        out = mapped.fillna(-1).to_numpy(dtype=np.int8)
    expected = "buy or sell" if taker_side else "true/false or 1/0"
    err.mark(bad, field, lambda i: f"expected {expected}, got {_shown(s, i)}")
    return out


def _upper_stripped(s: pd.Series) -> np.ndarray:
    """Text → upper-case stripped strings ('' when empty), as an object array. A column holds
    few distinct values (symbols, trade types), so only those are normalised."""
    codes, uniq = pd.factorize(s, use_na_sentinel=True)
    norm = np.array([str(u).strip().upper() for u in uniq] + [""], dtype=object)
    return norm[codes]  # code -1 (empty) picks the trailing ""


def symbols(s: pd.Series, field: str, err: RowErrors) -> np.ndarray:
    """Symbols → upper-case exchange spelling (object array)."""
    v = _upper_stripped(s)
    bad_syms = [u for u in pd.unique(v) if not is_valid_symbol(u)]
    bad = np.isin(v, bad_syms) if bad_syms else np.zeros(len(v), dtype=bool)
    err.mark(bad, field, lambda i: f"expected a symbol such as BTCUSDT, got {_shown(s, i)}")
    return v


def labels(s: pd.Series) -> np.ndarray:
    """Free text (e.g. a trade type) → upper-case stripped strings, '' when empty."""
    return _upper_stripped(s)


def pick(names, candidates) -> str | None:
    """The first of ``candidates`` present in ``names`` (all lower case)."""
    for c in candidates:
        if c in names:
            return c
    return None
