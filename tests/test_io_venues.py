"""Files of other venues are refused with the format they looked like, and a file that yields no
trade is an error: nothing from either is stored."""

import gzip

import pytest

from qdash.cli import main as cli_main
from qdash.errors import DataFormatError
from qdash.io import load
from qdash.io.detect import detect
from qdash.store import Store

BYBIT = (b"timestamp,symbol,side,size,price,tickDirection,trdMatchID,grossValue,homeNotional,"
         b"foreignNotional\n"
         b"1585180700.0647,BTCUSDT,Sell,0.042,6700.5,ZeroMinusTick,"
         b"b2f7ae0c-6e1d-5f8a-9e6b-6e0a0c0c0c0c,28142100.0,0.042,281.421\n"
         b"1585180701.1220,BTCUSDT,Buy,0.100,6701.0,PlusTick,"
         b"c3a8bf1d-7f2e-6a9b-0f7c-7f1b1d1d1d1d,67010000.0,0.1,670.1\n")
OKX = (b'{"arg":{"channel":"trades","instId":"BTC-USDT-SWAP"},"data":[{"instId":"BTC-USDT-SWAP",'
       b'"tradeId":"130639474","px":"42219.9","sz":"0.12","side":"buy","ts":"1630048897897"}]}\n')


def test_a_bybit_trades_csv_is_refused_naming_bybit(tmp_path, db_path):
    path = tmp_path / "BTCUSDT2020-03-25.csv.gz"
    path.write_bytes(gzip.compress(BYBIT))
    with pytest.raises(DataFormatError, match="looks like a Bybit public-trades CSV"):
        detect(path)
    store = Store(db_path)
    report = load(path, store, progress=False, raise_on_error=False)
    assert not report.ok and report.exit_code == 1
    assert store.tick_count() == 0 and store.symbols() == []


def test_okx_ndjson_is_refused_naming_okx(tmp_path, db_path, capsys):
    path = tmp_path / "okx-trades.ndjson"
    path.write_bytes(OKX * 3)
    code = cli_main(["load", str(path), "--db", str(db_path), "--no-progress"])
    out = capsys.readouterr()
    assert code != 0 and "OKX WebSocket messages" in out.out + out.err
    assert Store(db_path).tick_count() == 0


def test_a_file_that_yields_no_trade_is_an_error_naming_its_format(tmp_path, db_path, capsys):
    path = tmp_path / "frames.ndjson"   # Binance frames, none of them a trade
    path.write_bytes(b'{"e":"depthUpdate","E":1,"s":"BTCUSDT","b":[],"a":[]}\n' * 3)
    code = cli_main(["load", str(path), "--db", str(db_path), "--no-progress"])
    out = capsys.readouterr()
    text = out.out + out.err
    assert code != 0 and "no trade recognised" in text and "ws-ndjson" in text
    assert "ok" not in text.splitlines()[-1].split("; ")[-1]
    assert Store(db_path).tick_count() == 0
