"""Opening data files: plain, ``.gz`` or ``.zip`` (one file inside), with a byte-progress bar.

Compression is recognised by the file's magic bytes, not its name. Progress counts bytes of the
file on disk (compressed bytes for ``.gz``/``.zip``), so the bar's total is the file size.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataFormatError

_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGIC = b"PK\x03\x04"
BLOCK_BYTES = 1 << 20

# Binance public dump names: BTCUSDT-trades-2024-07-18, ETHUSDT-aggTrades-2024-07, BTCUSDT-1m-...
_SYMBOL_IN_NAME = re.compile(r"(?<![A-Za-z0-9])([A-Z0-9]{2,20}(?:USDT|USDC|BUSD|FDUSD|USD|BTC))"
                             r"(?![A-Za-z0-9])")
_DUMP_NAME = re.compile(r"^([A-Z0-9]{2,30})-(trades|aggTrades|\d+[smhdw])-\d{4}-\d{2}(?:-\d{2})?")


@dataclass(frozen=True)
class NameHints:
    """What a file name says: ``symbol`` and ``kind`` (``trades``/``aggTrades``/``klines``) and,
    for klines, ``timeframe``."""

    symbol: str | None = None
    kind: str | None = None
    timeframe: str | None = None


def name_hints(name: str) -> NameHints:
    """Hints from a file name: data.binance.vision names (``BTCUSDT-trades-2024-07-18.zip``,
    ``ETHUSDT-1m-2024-07-18.zip``) give symbol and kind; otherwise a name holding exactly one
    symbol-like token (``official_klines_1m_ETHUSDT.csv``) gives the symbol."""
    m = _DUMP_NAME.match(Path(name).name)
    if not m:
        found = set(_SYMBOL_IN_NAME.findall(Path(name).name))
        return NameHints(found.pop()) if len(found) == 1 else NameHints()
    sym, what = m.group(1), m.group(2)
    if what in ("trades", "aggTrades"):
        return NameHints(sym, what)
    return NameHints(sym, "klines", what)


class _Progress:
    """Updates a tqdm bar (or nothing) from the position of the underlying file."""

    def __init__(self, raw, bar):
        self.raw, self.bar, self.last = raw, bar, 0

    def tick(self) -> None:
        if self.bar is not None:
            pos = self.raw.tell()
            if pos > self.last:
                self.bar.update(pos - self.last)
                self.last = pos


class _Reader(io.RawIOBase):
    """A read-only binary stream over the decompressed content that reports progress."""

    def __init__(self, stream, progress: _Progress):
        self._s, self._p = stream, progress

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = self._s.readinto(b)
        self._p.tick()
        return n

    def read(self, size: int = -1) -> bytes:
        data = self._s.read(size)
        self._p.tick()
        return data


@contextmanager
def open_data(path: str | os.PathLike, bar=None) -> Iterator[tuple[io.BufferedReader, str]]:
    """Open ``path`` for reading its (decompressed) bytes; yields ``(stream, inner_name)``.

    ``inner_name`` is the name of the CSV inside a zip, else the file name without ``.gz``.
    ``bar`` is an optional tqdm bar advanced by the bytes of ``path`` consumed.
    """
    path = Path(path)
    try:
        raw = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as e:
        raise DataFormatError(f"cannot open: {e.strerror}", path=str(path)) from e
    try:
        magic = raw.read(4)
        raw.seek(0)
        name = path.name
        if magic.startswith(_GZIP_MAGIC):
            stream = gzip.GzipFile(fileobj=raw, mode="rb")
            name = name[:-3] if name.endswith(".gz") else name
        elif magic == _ZIP_MAGIC:
            zf = zipfile.ZipFile(raw)
            members = [i for i in zf.infolist()
                       if not i.is_dir() and not i.filename.startswith("__MACOSX/")]
            if len(members) != 1:
                raise DataFormatError(
                    f"zip holds {len(members)} files; expected exactly one CSV (as in "
                    "data.binance.vision dumps): unzip it and load the files one by one",
                    path=str(path))
            stream = zf.open(members[0])
            name = Path(members[0].filename).name
        else:
            stream = raw
        reader = io.BufferedReader(_Reader(stream, _Progress(raw, bar)), BLOCK_BYTES)
        yield reader, name
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise DataFormatError(f"cannot read (corrupt or truncated compressed file?): {e}",
                              path=str(path)) from e
    finally:
        raw.close()


def head_lines(path: str | os.PathLike, max_bytes: int = 1 << 16, max_lines: int = 50
               ) -> tuple[list[bytes], str]:
    """The first non-blank lines of the decompressed content (for format detection)."""
    with open_data(path) as (stream, name):
        data = stream.read(max_bytes)
    lines = [ln for ln in data.splitlines()[:max_lines + 1] if ln.strip()]
    if len(data) == max_bytes and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut
    return lines[:max_lines], name


def iter_line_blocks(stream, max_lines: int) -> Iterator[tuple[int, list[bytes]]]:
    """Yield ``(first_line_number, lines)`` with at most ``max_lines`` lines each (1-based numbers,
    line ends stripped). Memory is bounded by ``max_lines`` lines plus one read block."""
    line_no = 1
    pending: list[bytes] = []
    rest = b""
    while True:
        block = stream.read(BLOCK_BYTES)
        if not block:
            break
        parts = (rest + block).split(b"\n")
        rest = parts.pop()
        pending.extend(parts)
        while len(pending) >= max_lines:
            out, pending = pending[:max_lines], pending[max_lines:]
            yield line_no, out
            line_no += len(out)
    if rest:
        pending.append(rest)
    if pending:
        yield line_no, pending
