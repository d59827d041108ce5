"""The local order book by Binance's rules (pure state: no sockets), event by event, with the
books each step must give written out by hand."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from qdash.binance.book import (
    APPLIED,
    BUFFERED,
    DROPPED,
    GAP,
    STALE,
    SYNCED,
    LocalOrderBook,
)
from qdash.binance.schema import DepthSnapshot, DepthUpdate, depth_snapshot, depth_update

pytestmark = pytest.mark.unit


def ev(U, u, pu, bids=(), asks=(), E=1_000):
    return DepthUpdate("BTCUSDT", E + u, U, u, pu, list(bids), list(asks))


SNAP = DepthSnapshot(10, 1_010, [(100.0, 1.0), (99.0, 2.0), (98.0, 3.0)],
                     [(101.0, 1.5), (102.0, 2.5)])


def test_snapshot_plus_buffered_events_drops_the_old_and_applies_the_rest():
    b = LocalOrderBook("BTCUSDT")
    assert b.needs_snapshot
    assert b.on_event(ev(5, 8, 4, [(100.0, 9.0)])) == BUFFERED  # u < 10: in the snapshot
    assert b.on_event(ev(9, 11, 8, [(100.0, 0.0)], [(101.0, 4.0)])) == BUFFERED  # U<=L+1<=u
    assert b.on_event(ev(12, 12, 11, [(97.0, 5.0)])) == BUFFERED
    assert b.on_snapshot(SNAP) == SYNCED
    assert b.synced and not b.needs_snapshot and b.last_update_id == 12
    assert b.bids == {99.0: 2.0, 98.0: 3.0, 97.0: 5.0}  # 100 removed, 97 added
    assert b.asks == {101.0: 4.0, 102.0: 2.5}
    assert (b.dropped, b.applied, b.resyncs) == (1, 2, 0)
    bids, asks = b.top(2)
    np.testing.assert_array_equal(bids, [[99.0, 2.0], [98.0, 3.0]])
    np.testing.assert_array_equal(asks, [[101.0, 4.0], [102.0, 2.5]])
    lv = b.top_levels(4)
    assert lv.shape == (2, 2, 4) and lv[0, 0, 2] == 97.0 and np.isnan(lv[1, :, 2:]).all()


def test_an_event_ending_at_the_snapshot_id_is_accepted_first():
    """USDⓈ-M's rule U <= L <= u: the event with u == L is already in the snapshot; applying it
    again changes nothing and the next event chains on it."""
    b = LocalOrderBook("BTCUSDT")
    b.on_event(ev(9, 10, 8, [(100.0, 1.0)]))
    assert b.on_snapshot(SNAP) == SYNCED and b.last_update_id == 10
    assert b.on_event(ev(11, 13, 10, asks=[(101.0, 0.0)])) == APPLIED
    assert b.asks == {102.0: 2.5} and b.bids[100.0] == 1.0


def test_first_event_after_an_empty_buffer_and_later_old_events():
    b = LocalOrderBook("BTCUSDT")
    assert b.on_snapshot(SNAP) == SYNCED  # nothing buffered yet
    assert b.on_event(ev(3, 9, 2)) == DROPPED  # u < L
    assert b.on_event(ev(11, 14, 10, [(96.0, 1.0)])) == APPLIED  # U == L + 1
    assert b.on_event(ev(15, 15, 14, [(96.0, 0.0), (50.0, 0.0)])) == APPLIED  # removal of a
    assert 96.0 not in b.bids and b.last_update_id == 15  # level not held is normal


def test_a_snapshot_older_than_the_buffer_is_stale_and_changes_nothing():
    b = LocalOrderBook("BTCUSDT")
    b.on_event(ev(14, 16, 13, [(100.0, 7.0)]))
    assert b.on_snapshot(SNAP) == STALE  # L + 1 = 11 < U = 14: updates 11..13 unknown
    assert b.needs_snapshot and b.stale_snapshots == 1 and b.bids == {}
    newer = DepthSnapshot(15, 2_000, [(100.0, 5.0)], [(101.0, 1.0)])
    assert b.on_snapshot(newer) == SYNCED and b.bids == {100.0: 7.0}


def test_a_gap_in_pu_clears_the_book_counts_a_resync_and_buffers_the_event():
    b = LocalOrderBook("BTCUSDT")
    b.on_snapshot(SNAP)
    assert b.on_event(ev(11, 12, 10)) == APPLIED
    assert b.on_event(ev(15, 16, 14, [(100.0, 3.0)])) == GAP  # pu 14 != 12: 13..14 missed
    assert b.resyncs == 1 and b.needs_snapshot and b.bids == {} and b.last_update_id is None
    assert b.on_event(ev(17, 18, 16, [(99.0, 8.0)])) == BUFFERED
    snap = DepthSnapshot(16, 2_000, [(100.0, 3.0), (99.0, 1.0)], [(101.0, 1.0)])
    assert b.on_snapshot(snap) == SYNCED  # the gap event (u 16) is dropped, 17..18 applied
    assert b.bids == {100.0: 3.0, 99.0: 8.0} and b.last_update_id == 18 and b.resyncs == 1


def test_a_gap_at_the_first_event_after_the_snapshot_resyncs():
    b = LocalOrderBook("BTCUSDT")
    b.on_snapshot(SNAP)
    assert b.on_event(ev(13, 14, 12)) == GAP  # U 13 > L + 1 = 11
    assert b.resyncs == 1 and b.needs_snapshot


def test_depth_frames_decode_raw_and_in_the_combined_envelope():
    raw = {"e": "depthUpdate", "E": 5, "T": 4, "s": "BTCUSDT", "U": 7, "u": 9, "pu": 6,
           "b": [["100.10", "0.500"]], "a": [["100.20", "0"]]}
    d = depth_update(orjson.dumps({"stream": "btcusdt@depth@100ms", "data": raw}))
    assert d == DepthUpdate("BTCUSDT", 5, 7, 9, 6, [(100.1, 0.5)], [(100.2, 0.0)])
    assert depth_update(orjson.dumps(raw)) == d
    assert depth_update(b'{"e":"trade","s":"BTCUSDT"}') is None
    with pytest.raises(KeyError):
        depth_update(b'{"e":"depthUpdate","s":"BTCUSDT","E":1}')
    s = depth_snapshot({"lastUpdateId": 3, "E": 2, "T": 1, "bids": [["1.5", "2"]], "asks": []})
    assert s == DepthSnapshot(3, 2, [(1.5, 2.0)], [])


def test_depth_books_read_the_public_route_whatever_the_feeds_base():
    from qdash.binance.rest import RestClient
    from qdash.feeds.depth import DepthBooks

    rest = RestClient("http://127.0.0.1:1")
    for base in ("ws://h:1", "ws://h:1/market", "ws://h:1/public/"):
        books = DepthBooks(["ethusdt", "BTCUSDT"], ws_url=base, rest=rest)
        assert books.url() == ("ws://h:1/public/stream?streams=ethusdt@depth@100ms/"
                                "btcusdt@depth@100ms")
    with pytest.raises(ValueError, match="speed"):
        DepthBooks(["BTCUSDT"], ws_url="ws://h:1", rest=rest, speed="1s")
