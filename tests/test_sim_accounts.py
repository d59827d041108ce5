"""Paper accounts, signed-request checks, order-count limits, latency, brackets and the
``qdash sim`` account flags, without sockets."""

import argparse
import hashlib
import hmac

import pytest

from qdash.binance.orders import Rejected
from qdash.cli.sim import accounts_of, add_arguments
from qdash.sim.accounts import Accounts
from qdash.sim.latency import Latency
from qdash.sim.limiter import OrderCounter
from qdash.sim.margin import Position, brackets, liquidation_price, maintenance

pytestmark = pytest.mark.unit

NOW = 1_790_000_000_000


def _signed(secret: str, query: str) -> dict:
    sig = hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    return dict(p.split("=", 1) for p in query.split("&")) | {"signature": sig}


def test_authenticate_codes():
    accounts = Accounts()
    acc = accounts.open("goodkey001", "s3cret-value", 1_000)
    q = f"symbol=BTCUSDT&timestamp={NOW}"
    params = _signed("s3cret-value", q)
    full = q + "&signature=" + params["signature"]
    assert accounts.authenticate("goodkey001", full, "", params, NOW + 10) is acc
    # the signature over query + body: a POST carrying its parameters in the body
    assert accounts.authenticate("goodkey001", "", full, params, NOW) is acc

    def code(key="goodkey001", query=full, prm=params, now=NOW):
        with pytest.raises(Rejected) as e:
            accounts.authenticate(key, query, "", prm, now)
        return e.value.code, e.value.status

    assert code(key=None) == (-2014, 401)
    assert code(key="bad key!") == (-2014, 401)
    assert code(key="otherkey01") == (-2015, 401)
    assert code(prm=_signed("wrong", q)) == (-1022, 400)
    assert code(now=NOW + 5_001) == (-1021, 400)  # the default recvWindow: 5,000 ms
    assert code(now=NOW - 1_000) == (-1021, 400)  # a timestamp 1 s ahead of the server
    assert code(prm={"signature": "x"}) == (-1102, 400)
    wide = f"symbol=BTCUSDT&timestamp={NOW}&recvWindow=60000"
    assert accounts.authenticate("goodkey001", wide, "", _signed("s3cret-value", wide),
                                 NOW + 59_000) is acc
    too_wide = f"timestamp={NOW}&recvWindow=60001"
    assert code(query=too_wide, prm=_signed("s3cret-value", too_wide)) == (-1130, 400)
    assert "s3cret-value" not in repr(acc)


def test_order_counter_windows_and_retry():
    c = OrderCounter(((3, 10_000), (5, 60_000)))
    assert [c.admit("a", now_ms=NOW + i)[0] for i in range(3)] == [[1, 1], [2, 2], [3, 3]]
    counts, refusal = c.admit("a", now_ms=NOW + 3)
    assert refusal == (3, 0, 10) and counts == [3, 3]  # the first leaves the window at +10 s
    assert c.admit("b", now_ms=NOW + 3) == ([1, 1], None)  # per account
    assert c.admit("a", now_ms=NOW + 10_001)[0] == [2, 4]
    assert c.admit("a", now_ms=NOW + 10_002)[0] == [2, 5]  # (now − 10 s, now]
    counts, refusal = c.admit("a", now_ms=NOW + 20_005)
    assert refusal[:2] == (5, 1) and 40 <= refusal[2] <= 41  # the minute's limit now


def test_latency_specs():
    assert Latency("0").draw() == 0 and Latency(5).draw() == 0.005
    u = [Latency("uniform:2:10", seed=1).draw() for _ in range(3)]
    assert all(0.002 <= x <= 0.010 for x in u)
    a, b = Latency("lognormal:5:0.5", seed=3), Latency("lognormal:5:0.5", seed=3)
    assert [a.draw() for _ in range(5)] == [b.draw() for _ in range(5)]  # seeded
    for bad in ("fast", "uniform:1", "-3"):
        with pytest.raises(ValueError, match="order latency"):
            Latency(bad)


def test_brackets_are_continuous_and_the_formula_inverts():
    table = brackets("BTCUSDT")
    for lo, hi in zip(table, table[1:]):  # maintenance has no jump at a bracket's edge
        edge = lo.cap
        assert edge * lo.rate - lo.cum == pytest.approx(edge * hi.rate - hi.cum)
    assert maintenance("BTCUSDT", 100_000) == pytest.approx(100_000 * 0.005 - 50)
    # cross margin, two positions: at the liquidation price the margin balance equals the
    # maintenance margin (Binance's definition)
    btc = Position("BTCUSDT", amt=-0.8, entry=60_000.0)
    eth = Position("ETHUSDT", amt=3.0, entry=3_000.0)
    wallet, eth_mark = 9_000.0, 2_950.0
    lp = liquidation_price(btc, wallet, eth.maint(eth_mark), eth.unrealized(eth_mark))
    balance = wallet + btc.unrealized(lp) + eth.unrealized(eth_mark)
    assert balance == pytest.approx(btc.maint(lp) + eth.maint(eth_mark))
    assert lp > 60_000  # a short is liquidated above its entry


def test_position_fill_average_realize_and_flip():
    p = Position("ETHUSDT")
    assert p.fill(1.0, 100.0) == 0 and p.fill(1.0, 110.0) == 0
    assert (p.amt, p.entry) == (2.0, 105.0)
    assert p.fill(-0.5, 120.0) == pytest.approx(7.5) and p.entry == 105.0
    assert p.fill(-2.5, 90.0) == pytest.approx(1.5 * (90 - 105))  # closes, then flips
    assert (p.amt, p.entry) == (-1.0, 90.0)


def test_cli_account_flags():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    one = accounts_of(parser.parse_args([]))
    assert one == [(None, None, 100_000.0)]  # drawn, printed once at start
    two = accounts_of(parser.parse_args(["--api-key", "k1aaaaaaa", "--api-secret", "s1",
                                         "--balance", "5000", "--api-key", "k2aaaaaaa",
                                         "--api-secret", "s2"]))
    assert two == [("k1aaaaaaa", "s1", 5000.0), ("k2aaaaaaa", "s2", 100_000.0)]
    with pytest.raises(SystemExit, match="one secret per key"):
        accounts_of(parser.parse_args(["--api-key", "k1aaaaaaa"]))
