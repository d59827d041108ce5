"""SQL is issued only inside ``qdash/store/`` (issue 21): no module elsewhere calls an
execute-like method or holds the text of an SQL statement."""

import ast
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

QDASH = Path(__file__).resolve().parents[1] / "qdash"
STORE = QDASH / "store"
# methods that run SQL: sqlite3 / DB-API, DuckDB, pandas
SQL_CALLS = {"execute", "executemany", "executescript", "sql", "read_sql", "read_sql_query",
             "read_sql_table", "to_sql"}
SQL_TEXT = re.compile(
    r"\b(SELECT\b[\s\S]*\bFROM|INSERT\s+(OR\s+\w+\s+)?INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM"
    r"|CREATE\s+(TEMP\s+|UNIQUE\s+)?(TABLE|INDEX|VIEW)|DROP\s+(TABLE|INDEX|VIEW)|ALTER\s+TABLE"
    r"|PRAGMA\s+\w+|BEGIN\s+(IMMEDIATE|EXCLUSIVE|DEFERRED)|ROLLBACK\b|COMMIT\s*$)")


def sql_outside_store(path: Path) -> list[str]:
    """``file:line: what`` for every SQL call or SQL statement text in one source file."""
    tree = ast.parse(path.read_text(), str(path))
    where = path.relative_to(QDASH.parent)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in SQL_CALLS:
                found.append(f"{where}:{node.lineno}: calls .{name}()")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if SQL_TEXT.search(node.value):
                found.append(f"{where}:{node.lineno}: SQL text {node.value[:60]!r}")
    return found


def test_sql_is_issued_only_inside_the_store():
    found = [hit for path in sorted(QDASH.rglob("*.py")) if STORE not in path.parents
             for hit in sql_outside_store(path)]
    assert not found, "SQL outside qdash/store/:\n" + "\n".join(found)


def test_the_scan_sees_the_store_sql():
    """The scan is not blind: run over the store itself, it finds its SQL."""
    hits = [h for path in STORE.rglob("*.py") for h in sql_outside_store(path)]
    assert any("calls .execute()" in h for h in hits)
    assert any("SQL text 'SELECT" in h or "SQL text \"SELECT" in h for h in hits)
    assert any("CREATE TABLE" in h for h in hits)
