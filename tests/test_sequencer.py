"""The sequencer, without sockets or clocks: order, de-duplication, gaps, resume."""

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from qdash.feeds.sequencer import Gap, Sequencer
from qdash.model import tick_frame

T0 = 1_721_347_022_000


def ticks(ids, sym="BTCUSDT", source="ws"):
    ids = np.asarray(list(ids), dtype=np.int64)
    return tick_frame(sym, T0 + ids * 10, ids, 100.0 + ids, 1.0, 0, source)


def ids_of(df):
    return df["trade_id"].tolist()


def test_in_order_batches_pass_through_and_duplicates_are_dropped():
    seq = Sequencer()
    seq.add("BTCUSDT")
    out, gap = seq.accept("BTCUSDT", ticks([3, 1, 2, 2]))
    assert ids_of(out) == [1, 2, 3] and gap is None
    out, gap = seq.accept("BTCUSDT", ticks([2, 3, 4]))
    assert ids_of(out) == [4] and gap is None
    assert seq.duplicates == 3 and seq.last_id("BTCUSDT") == 4


def test_a_hole_holds_later_ticks_until_settled_and_rest_fills_it():
    seq = Sequencer()
    seq.add("BTCUSDT")
    seq.accept("BTCUSDT", ticks([1, 2]))
    out, gap = seq.accept("BTCUSDT", ticks([3, 7, 8]), now_ms=0)
    assert ids_of(out) == [3]
    assert gap == Gap("BTCUSDT", 4, 6, T0 + 30, T0 + 70) and seq.gaps_found == 1
    out, nxt = seq.accept("BTCUSDT", ticks([9, 5]))  # held, including a late frame
    assert len(out) == 0 and nxt is None
    assert seq.missing(gap) == 2  # 4 and 6 still absent
    out, nxt = seq.settle(gap, ticks([4, 5, 6], source="rest"))
    assert ids_of(out) == [4, 5, 6, 7, 8, 9] and nxt is None
    assert out.set_index("trade_id").loc[5, "source"] == "ws"  # the stream's row wins


def test_late_frames_can_close_a_hole_and_non_market_ids_are_not_holes():
    seq = Sequencer()
    seq.add("ETHUSDT")
    seq.accept("ETHUSDT", ticks([1], "ETHUSDT"))
    out, gap = seq.accept("ETHUSDT", ticks([4], "ETHUSDT"), other=[2])
    assert ids_of(out) == [] and (gap.lo, gap.hi) == (3, 3)
    seq.accept("ETHUSDT", ticks([3], "ETHUSDT"))
    assert seq.missing(gap) == 0
    out, _ = seq.settle(gap, None)
    assert ids_of(out) == [3, 4]
    out, gap = seq.accept("ETHUSDT", ticks([6], "ETHUSDT"), other=[5])
    assert ids_of(out) == [6] and gap is None


def test_settling_opens_the_next_hole_of_the_held_ticks():
    seq = Sequencer()
    seq.add("BTCUSDT")
    seq.accept("BTCUSDT", ticks([1]))
    _, gap = seq.accept("BTCUSDT", ticks([3]))
    seq.accept("BTCUSDT", ticks([6, 7]))
    out, nxt = seq.settle(gap, ticks([2]))
    assert ids_of(out) == [2, 3] and (nxt.lo, nxt.hi) == (4, 5)
    out, nxt = seq.settle(nxt, None)  # unfillable: the hole is accepted, nothing is lost
    assert ids_of(out) == [6, 7] and nxt is None and seq.last_id("BTCUSDT") == 7


def test_a_gap_after_which_nothing_arrived_ends_at_now():
    seq = Sequencer()
    seq.add("BTCUSDT")
    seq.accept("BTCUSDT", ticks([1]))
    _, gap = seq.accept("BTCUSDT", None, other=[5], now_ms=T0 + 999)
    assert (gap.lo, gap.hi, gap.t_before, gap.t_after) == (2, 4, T0 + 10, T0 + 999)


def test_resume_from_a_stored_trade_opens_the_outage_as_a_gap():
    seq = Sequencer()
    seq.add("BTCUSDT", last_id=100, last_ts=T0 + 1000)
    out, gap = seq.accept("BTCUSDT", ticks([99, 100, 150, 151]))
    assert ids_of(out) == [] and gap == Gap("BTCUSDT", 101, 149, T0 + 1000, T0 + 1500)
    out, _ = seq.settle(gap, ticks(range(101, 150)))
    assert ids_of(out) == list(range(101, 152))


def test_resume_point_is_dropped_when_the_stream_does_not_continue_it():
    seq = Sequencer()
    seq.add("BTCUSDT", last_id=5_000, last_ts=T0)  # e.g. a restarted simulator counting anew
    out, gap = seq.accept("BTCUSDT", ticks([10, 11]))  # lower ids, later times
    assert ids_of(out) == [10, 11] and gap is None and seq.resumes_dropped == 1


def test_removed_symbols_and_release_at_shutdown():
    seq = Sequencer()
    seq.add("BTCUSDT")
    seq.add("ETHUSDT")
    seq.accept("BTCUSDT", ticks([1]))
    _, gap = seq.accept("BTCUSDT", ticks([5, 4]))
    assert [ids_of(d) for d in seq.release_all()] == [[4, 5]]
    assert seq.settle(gap, ticks([2, 3]))[0].empty  # a stale gap settles nothing
    seq.remove("ETHUSDT")
    assert seq.accept("ETHUSDT", ticks([1], "ETHUSDT"))[0].empty


def test_without_gap_filling_ids_may_jump():
    seq = Sequencer(fill_gaps=False)
    seq.add("BTCUSDT")
    seq.accept("BTCUSDT", ticks([1]))
    out, gap = seq.accept("BTCUSDT", ticks([9, 5]))
    assert ids_of(out) == [5, 9] and gap is None


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_any_delivery_order_with_duplicates_and_losses_ends_exactly_once_in_order(data):
    """Frames shuffled, duplicated and partly lost, cut into random batches; REST fills every
    hole from the truth: the output is the truth, in order, each id once."""
    n = data.draw(st.integers(1, 60))
    truth = list(range(1000, 1000 + n))
    frames = data.draw(st.permutations(truth))
    dup = data.draw(st.lists(st.sampled_from(truth), max_size=10))
    lost = set(data.draw(st.lists(st.sampled_from(truth), max_size=n // 2)))
    stream = [i for i in list(frames) + dup if i not in lost] or truth[:1]
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    batches = [stream[a:b] for a, b in zip([0] + cuts, cuts + [len(stream)])]
    seq = Sequencer()
    seq.add("BTCUSDT")
    out, gaps = [], []
    for b in batches:
        ready, gap = seq.accept("BTCUSDT", ticks(b))
        out += ids_of(ready)
        if gap is not None:
            gaps.append(gap)
        while gaps and data.draw(st.booleans()):  # settle some gaps between batches
            g = gaps.pop(0)
            ready, nxt = seq.settle(g, ticks([i for i in truth if g.lo <= i <= g.hi]))
            out += ids_of(ready)
            gaps += [nxt] if nxt else []
    while gaps:
        g = gaps.pop(0)
        ready, nxt = seq.settle(g, ticks([i for i in truth if g.lo <= i <= g.hi]))
        out += ids_of(ready)
        gaps += [nxt] if nxt else []
    # ids below the first frame seen are before the start: never asked for
    first = min(next(b for b in batches if b))
    assert out == [i for i in truth if i >= first and i <= max(stream)]


def test_ticks_of_other_symbols_are_independent():
    seq = Sequencer()
    for s in ("BTCUSDT", "ETHUSDT"):
        seq.add(s)
    seq.accept("BTCUSDT", ticks([1]))
    _, gap = seq.accept("BTCUSDT", ticks([3]))
    out, g2 = seq.accept("ETHUSDT", ticks([1, 2], "ETHUSDT"))
    assert ids_of(out) == [1, 2] and g2 is None and gap is not None
    assert isinstance(out, pd.DataFrame)
