"""The one error hierarchy of qdash.

Bad rows, items and frames are all :class:`RowError` (file readers, the frame decoder, the
ingestion server).

Every message says what was wrong, where (file:line:column, field, symbol) and, when it helps,
what to do about it.
"""

from __future__ import annotations


class QdashError(Exception):
    """Base class of every error qdash raises on purpose."""


class DataFormatError(QdashError):
    """A file, row, frame or request body does not have the expected shape.

    ``path``, ``line`` (1-based), ``column`` (field name or 1-based index) locate the problem when
    known; they are also part of the message.
    """

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None,
                 column: str | int | None = None):
        self.path, self.line, self.column = path, line, column
        where = ":".join(str(p) for p in (path, line) if p is not None)
        if column is not None:
            where = f"{where} field {column!r}" if where else f"field {column!r}"
        super().__init__(f"{where}: {message}" if where else message)


class RowError(DataFormatError):
    """One unreadable row, item or frame — THE row-error type of qdash.

    The file readers (CSV rows, NDJSON lines), the frame decoder (WebSocket frames, REST rows)
    and the ingestion server (items of a request body) all describe a bad row with it: collected
    as a record when bad rows are skipped or counted, raised when one rejects the whole input.

    ``message`` says what is wrong; where: ``path`` and ``line`` (1-based file line, or the frame
    number of a decoded batch), ``char`` (1-based character of a JSON syntax error, the
    ``column=`` argument), ``index`` (0-based item of a request body); ``field`` at fault and
    ``symbol`` when known; ``text``: the start of the row. As for every :class:`DataFormatError`,
    ``column`` is the field when there is one, else the character. :meth:`problem` renders it as
    the server's problem JSON.
    """

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None,
                 column: int | None = None, field: str | None = None,
                 symbol: str | None = None, index: int | None = None, text: str | None = None):
        self.message, self.field, self.symbol = message, field, symbol
        self.index, self.text, self.char = index, text, column
        where = ":".join(str(p) for p in (path, line) if p is not None)
        if path is None and line is not None:
            where = f"line {line}"
        if column is not None:
            where += f":{column}" if where else f"column {column}"
        if index is not None:
            where = f"item {index}" + (f" ({where})" if where else "")
        if field is not None:
            where = f"{where} field {field!r}" if where else f"field {field!r}"
        if symbol is not None:
            where = f"{where} ({symbol})" if where else symbol
        Exception.__init__(self, f"{where}: {message}" if where else message)
        # as for every DataFormatError, ``column`` is the field name (else the character)
        self.path, self.line, self.column = path, line, field if field is not None else column

    def _key(self) -> tuple:
        return (self.message, self.path, self.line, self.char, self.field, self.symbol,
                self.index, self.text)

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other._key() == self._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"RowError({str(self)!r})"

    def replace(self, **changes) -> RowError:
        """A copy with some attributes changed (e.g. ``path=``, or a ``message`` with a hint)."""
        kw = dict(message=self.message, path=self.path, line=self.line, column=self.char,
                  field=self.field, symbol=self.symbol, index=self.index, text=self.text)
        return RowError(**(kw | changes))

    def problem(self) -> dict:
        """The server's problem JSON: ``{"index", "field", "problem"}`` plus ``line``,
        ``column`` and ``symbol`` when known."""
        out = {"index": self.index, "field": self.field, "problem": self.message}
        for key, value in (("line", self.line), ("column", self.char),
                           ("symbol", self.symbol)):
            if value is not None:
                out[key] = value
        return out


class TimeframeError(QdashError, ValueError):
    """A timeframe string such as ``"5m"`` could not be parsed."""


class StoreError(QdashError):
    """The tick/candle store could not complete an operation."""


class AlertError(QdashError, ValueError):
    """An alert rule, action or webhook is misconfigured (bad metric, operator, URL, template)."""


class RuleSyntaxError(AlertError):
    """A rule expression could not be parsed. ``position`` (0-based offset), ``line`` and
    ``column`` (1-based) locate the offending ``token`` in ``text``; the message ends with the
    line of text and a caret line under the token."""

    def __init__(self, message: str, *, text: str, position: int, length: int = 1):
        self.text, self.position = text, position
        self.token = text[position:position + length]
        start = text.rfind("\n", 0, position) + 1
        end = text.find("\n", position)
        line_text = text[start:] if end < 0 else text[start:end]
        self.line, self.column = text.count("\n", 0, position) + 1, position - start + 1
        where = f"line {self.line}, column {self.column}" if "\n" in text else \
            f"column {self.column}"
        caret = " " * (position - start) + "^" * max(1, length)
        super().__init__(f"{message} ({where})\n  {line_text}\n  {caret}")


class BacktestError(QdashError, ValueError):
    """Backtest inputs or parameters are inconsistent (misaligned series, entry <= exit, ...)."""


class AnalyticsError(QdashError, ValueError):
    """Bad input to a pair-analytics function (too few points, unknown method, degenerate
    series)."""


class IngestError(DataFormatError):
    """A tick-ingestion request was rejected and nothing was stored.

    ``status`` is the HTTP status to answer (400 bad body or tick, 401 no token, 413 too large);
    ``rows`` are the bad items (:class:`RowError`, first problem first) and ``problems`` the same
    rendered as the server's problem JSON; ``kind`` is a short machine-readable reason.
    """

    def __init__(self, message: str, *, status: int = 400, kind: str = "invalid",
                 rows: list[RowError] | None = None, line: int | None = None,
                 column: int | None = None):
        super().__init__(message)
        self.line, self.column = line, column  # 1-based position of a JSON syntax error
        self.status, self.kind, self.rows = status, kind, list(rows or [])

    @property
    def problems(self) -> list[dict]:
        return [r.problem() for r in self.rows]
