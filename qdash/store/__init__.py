"""The store: every table and every SQL statement of qdash, in one SQLite file in WAL mode, and
the Parquet archive of its closed days.

| module | owns |
|---|---|
| :mod:`.schema` | every ``CREATE TABLE``/``INDEX``, the layout version and its migrations |
| :mod:`.connection` | the file: per-thread connections, transactions, opening errors |
| :mod:`.ticks` | ``tick_data`` (idempotent tick writes, trade-order reads, the venue) |
| :mod:`.ohlcv` | ``ohlcv_data`` (candles) |
| :mod:`.funding` | ``funding`` (funding events) |
| :mod:`.alerts` | ``alerts_log`` and ``alert_rules`` (``store.alerts``) |
| :mod:`.coverage` | ``fetch_coverage`` (``store.coverage``) |
| :mod:`.orders` | the paper trader's ``trade_*`` tables (``store.orders``) |
| :mod:`.venue` | whose data the store holds (``store.venue``): an exchange's or the simulator's |
| :mod:`.paths` | where the store and its archive live (``$QDASH_DB``, the user data dir) |
| :mod:`.parquet` | the Parquet tier (:class:`~.parquet.ParquetArchive`, ``qdash archive``) |
| :mod:`.store` | :class:`Store`, the one entry point |

Nothing outside this package issues SQL.
"""

from .paths import default_db_path, resolve_db_path
from .rows import WriteResult
from .store import Store

__all__ = ["Store", "WriteResult", "default_db_path", "resolve_db_path"]
