"""Request signing and symbol filters (qdash.binance.signing / .filters): logic without sockets."""

import pytest

from qdash.binance.filters import SymbolFilters, round_down
from qdash.binance.signing import API_KEY_HEADER, signature, signature_ok, signer

pytestmark = pytest.mark.unit

DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
DOC_QUERY = ("symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
             "&recvWindow=5000&timestamp=1499827319559")


def test_signature_matches_binance_documented_example():
    # Binance's API documentation, "SIGNED Endpoint Examples" (HMAC-SHA256).
    sig = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
    assert signature(DOC_QUERY, DOC_SECRET) == sig
    assert signature_ok(DOC_QUERY, DOC_SECRET, sig.upper())
    assert not signature_ok(DOC_QUERY, "wrong", sig)


def test_signer_appends_timestamp_window_and_signature_last():
    query, headers = signer("KEY", DOC_SECRET, recv_window_ms=5000, clock=lambda: 1499827319.559)(
        "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1")
    signed, _, sig = query.rpartition("&signature=")
    assert signed == ("symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
                      "&timestamp=1499827319559&recvWindow=5000")
    assert sig == signature(signed, DOC_SECRET)
    assert headers == {API_KEY_HEADER: "KEY"}
    assert DOC_SECRET not in query


ENTRY = {"symbol": "ETHUSDT", "pricePrecision": 2, "quantityPrecision": 3, "filters": [
    {"filterType": "PRICE_FILTER", "minPrice": "39.86", "maxPrice": "306177", "tickSize": "0.01"},
    {"filterType": "LOT_SIZE", "minQty": "0.001", "maxQty": "10000", "stepSize": "0.001"},
    {"filterType": "MARKET_LOT_SIZE", "minQty": "0.001", "maxQty": "2000", "stepSize": "0.001"},
    {"filterType": "MIN_NOTIONAL", "notional": "20"},
    {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500", "multiplierDown": "0.9500",
     "multiplierDecimal": "4"}]}


def test_filters_parse_and_round():
    f = SymbolFilters.from_exchange_info(ENTRY)
    assert (f.tick_size, f.step_size, f.min_notional, f.market_max_qty) == (0.01, 0.001, 20, 2000)
    assert (f.percent_up, f.percent_down) == (1.05, 0.95)
    assert f.round_qty(1.23456) == 1.234
    assert f.round_qty(0.3) == 0.3
    assert f.round_price(2500.126) == 2500.13
    assert round_down(0.7, 0.1, 1) == 0.7
    assert round_down(0.69999, 0.1, 1) == 0.6
