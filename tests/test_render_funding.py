"""The dashboard's funding rows (a pure function of premiumIndex entries): rate, time to the next
settlement, mark–index premium; checked on Binance's documented example response."""

from qdash.app.render import funding_rows

# the /fapi/v1/premiumIndex example of Binance's USDⓈ-M documentation
BINANCE_EXAMPLE = {"symbol": "BTCUSDT", "markPrice": "11793.63104562",
                   "indexPrice": "11781.80495970", "estimatedSettlePrice": "11781.16138815",
                   "lastFundingRate": "0.00038246", "interestRate": "0.00010000",
                   "nextFundingTime": 1597392000000, "time": 1597370495002}


def test_funding_row_of_binances_example():
    [(label, value)] = funding_rows({"BTCUSDT": BINANCE_EXAMPLE}, now_ms=1597370495002)
    assert label.startswith("BTCUSDT funding")
    # 0.00038246 per interval = +0.0382 %; 21,504,998 ms to 08:00 UTC = 5 h 58 min 24 s;
    # (11793.63104562 − 11781.80495970) / 11781.80495970 = 10.0376 bp
    assert value == "+0.0382 % / 5:58:24 / +10.04 bp"


def test_a_leg_not_fetched_yet_shows_a_dash_and_negative_values_keep_their_sign():
    neg = dict(BINANCE_EXAMPLE, lastFundingRate="-0.00012500", markPrice="11770.0")
    rows = dict(funding_rows({"ETHUSDT": None, "BTCUSDT": neg}, now_ms=1597391999000))
    assert rows["ETHUSDT funding rate / next in / mark–index"] == "–"
    assert rows["BTCUSDT funding rate / next in / mark–index"] == "-0.0125 % / 0:00:01 / -10.02 bp"
