"""Order book snapshots in the store: written, reloaded equal from SQLite, moved into the
Parquet archive by ``archive()`` and reloaded equal from there; a layout-3 store (before the
table) still reads."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from qdash.errors import StoreError
from qdash.model import DEPTH_COLUMNS, DEPTH_LEVELS, depth_frame, depth_levels
from qdash.store import Store
from qdash.store.parquet import archive

pytestmark = pytest.mark.unit

DAY = 86_400_000
T0 = 1_720_000_000_000 // DAY * DAY  # a closed UTC day


def snapshots(n: int, t0: int = T0, step_ms: int = 60_000) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    lv = np.full((n, 2, 2, DEPTH_LEVELS), np.nan)
    k = np.arange(DEPTH_LEVELS)
    for i in range(n):
        mid = 100.0 + i * 0.1
        lv[i, 0, 0], lv[i, 1, 0] = mid - 0.05 - 0.1 * k, mid + 0.05 + 0.1 * k
        lv[i, :, 1] = rng.uniform(0.1, 5.0, (2, DEPTH_LEVELS))
    lv[-1, 1, :, 15:] = np.nan  # a thin book: 15 asks
    return depth_frame(t0 + step_ms * np.arange(n), 1_000 + np.arange(n), lv)


def test_depth_snapshots_reload_from_sqlite_and_from_the_parquet_archive(tmp_path):
    snaps = snapshots(30)
    with Store(tmp_path / "s.db") as st:
        assert st.write_depth("BTCUSDT", snaps).stored == 30
        assert st.write_depth("BTCUSDT", snaps.iloc[:5]).stored == 5  # replaced, not added
        back = st.depth("BTCUSDT")
        assert list(back.columns) == DEPTH_COLUMNS and len(back) == 30
        pd.testing.assert_frame_equal(back.reset_index(drop=True), snaps)
        assert back.index[0] == pd.Timestamp(T0, unit="ms", tz="UTC")
        assert len(st.depth("BTCUSDT", T0 + 60_000, T0 + 180_000)) == 2
        assert np.isnan(depth_levels(back)[-1, 1, :, 15:]).all()
        assert st.depth("ETHUSDT").empty
        stats = st.stats()
        assert stats.query("kind == 'depth'")["rows"].tolist() == [30]

        later = snapshots(3, T0 + 2 * DAY)  # a day not closed by the cutoff stays in SQLite
        st.write_depth("BTCUSDT", later)
        report = archive(st, before=T0 + 2 * DAY, progress=False)
        assert report.depth == 30 and "30 depth snapshots" in str(report)
        assert st.connection().execute(
            "SELECT COUNT(*) FROM depth_snapshots").fetchone()[0] == 3
        assert any("kind=depth" in str(f) for f in tmp_path.rglob("*.parquet"))
        both = st.depth("BTCUSDT")
        pd.testing.assert_frame_equal(both.reset_index(drop=True),
                                      pd.concat([snaps, later], ignore_index=True))
        pd.testing.assert_frame_equal(st.depth("BTCUSDT", end=T0 + DAY), back)
        assert st.stats().query("kind == 'depth'")["rows"].tolist() == [33]


def test_bad_depth_snapshots_are_rejected_whole(tmp_path):
    with Store(tmp_path / "s.db") as st:
        bad = snapshots(3)
        bad.loc[1, "ask_qty_3"] = -1.0
        with pytest.raises(StoreError, match="row 1 has a negative"):
            st.write_depth("BTCUSDT", bad)
        with pytest.raises(StoreError, match="missing"):
            st.write_depth("BTCUSDT", bad.drop(columns=["update_id"]))
        assert st.depth("BTCUSDT").empty


def test_a_layout_3_store_reads_read_only_and_gains_the_table_on_write(tmp_path):
    path = tmp_path / "s.db"
    with Store(path) as st:
        conn = st.connection()
        conn.execute("DROP TABLE depth_snapshots")
        conn.execute("PRAGMA user_version=3")
    with Store(path, readonly=True) as ro:
        assert ro.depth("BTCUSDT").empty and "depth" not in set(ro.stats()["kind"])
    with Store(path) as st:
        assert st.connection().execute("PRAGMA user_version").fetchone()[0] == 4
        assert st.write_depth("BTCUSDT", snapshots(2)).stored == 2
