"""The one error hierarchy of qdash.

Every message says what was wrong, where (file:line:column, field, symbol) and, when it helps,
what to do about it.
"""


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
    ``problems`` lists ``{"index", "field", "problem"}`` dicts (plus ``"line"`` for NDJSON items),
    first problem first; ``kind`` is a short machine-readable reason.
    """

    def __init__(self, message: str, *, status: int = 400, kind: str = "invalid",
                 problems: list[dict] | None = None, line: int | None = None,
                 column: int | None = None):
        super().__init__(message)
        self.line, self.column = line, column  # 1-based position of a JSON syntax error
        self.status, self.kind, self.problems = status, kind, list(problems or [])
