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
