"""The tick ingestion server over real HTTP/WebSocket on 127.0.0.1: storage, idempotency,
validation (table-driven and fuzzed), limits, auth, per-message acks and the hub's fan-out."""

from __future__ import annotations

import gzip
import json
import socket
import time

import numpy as np
import orjson
import pandas as pd
import pytest
from conftest import JULY, JULY_TRADES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_server_support import ServerThread, request
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from qdash.server.service import ServerConfig
from qdash.store import Store

pytestmark = pytest.mark.integration

RAW = JULY / f"{JULY_TRADES}.raw.ndjson.gz"
CSV = JULY / f"{JULY_TRADES}.csv.gz"
COLLECTED = JULY / f"{JULY_TRADES}.collector.ndjson"
T0 = 1_721_347_022_707


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    db = tmp_path_factory.mktemp("server") / "ticks.db"
    srv = ServerThread(ServerConfig(db=str(db), token="test-token", max_body=4 * 2**20))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def store(server):
    s = Store(server.service.db_path)
    yield s
    s.close()


def post(server, path, body, token="test-token", **kw):
    return request(server.url + path.lstrip("/"), body, token=token, **kw)


def tick(**over):
    d = {"symbol": "SOLUSDT", "ts": T0, "price": 150.25, "qty": 2.0}
    d.update(over)
    return d


# --- storing real data ------------------------------------------------------------------------
def test_raw_binance_trades_are_stored_once_and_match_the_csv(server, store):
    body = gzip.decompress(RAW.read_bytes())
    status, ans = post(server, "/qdash/api/ticks/batch", body)
    assert status == 200, ans
    assert ans["received"] == ans["stored"] == 24_356
    status, again = post(server, "/qdash/api/ticks/batch", body)  # a retry is harmless
    assert status == 200 and again["stored"] == 0 and again["duplicates"] == 24_356
    ref = pd.read_csv(CSV)
    for sym in ("BTCUSDT", "ETHUSDT"):
        got = store.ticks(sym)
        want = ref[ref["symbol"] == sym].sort_values("trade_id")
        assert got["trade_id"].tolist() == want["trade_id"].tolist()
        assert got["ts"].tolist() == want["trade_time_ms"].tolist()
        np.testing.assert_array_equal(got["price"].to_numpy(), want["price"].to_numpy())
        np.testing.assert_array_equal(got["qty"].to_numpy(), want["qty"].to_numpy())
        assert got["is_buyer_maker"].tolist() == want["is_buyer_maker"].astype(int).tolist()


def test_collector_ndjson_gets_deterministic_ids_and_is_idempotent(tmp_path):
    srv = ServerThread(ServerConfig(db=str(tmp_path / "c.db"), token="t"))
    try:
        body = COLLECTED.read_bytes()
        lines = body.decode().splitlines()
        status, ans = post(srv, "/qdash/api/ticks/batch", body, token="t")
        assert status == 200 and ans["stored"] == len(lines) == 24_356
        status, again = post(srv, "/qdash/api/ticks/batch", body, token="t")
        assert again["stored"] == 0
        with Store(srv.service.db_path) as s:
            eth = s.ticks("ETHUSDT")
        want = [json.loads(x) for x in lines]
        want = [w for w in want if w["symbol"] == "ETHUSDT"]
        assert len(eth) == len(want) == 13_655
        assert (eth["trade_id"] < 0).all() and eth["is_buyer_maker"].eq(-1).all()
        assert eth["price"].tolist() == [w["price"] for w in want]  # arrival order kept
        assert eth["ts"].tolist() == pd.to_datetime([w["ts"] for w in want]).as_unit(
            "ms").asi8.tolist()
    finally:
        srv.stop()


def test_single_tick_canonical_and_legacy_paths(server, store):
    one = tick(symbol="adausdt", trade_id=7, is_buyer_maker=True, price="0.4501")
    status, ans = post(server, "/qdash/api/tick", orjson.dumps(one))
    assert status == 200 and ans["stored"] == 1
    status, ans = post(server, "/api/tick", orjson.dumps(one))  # the original design's path
    assert status == 200 and ans["duplicates"] == 1
    status, ans = post(server, "/api/ticks/batch", orjson.dumps([tick(symbol="ADAUSDT",
                                                                      trade_id=8, ts=T0 * 1000)]))
    assert status == 200 and ans["stored"] == 1
    got = store.ticks("ADAUSDT")
    assert got["trade_id"].tolist() == [7, 8]
    assert got["price"].tolist() == [0.4501, 150.25]
    assert got["ts"].tolist() == [T0, T0]  # µs input → ms
    assert got["is_buyer_maker"].tolist() == [1, -1]
    status, health = request(server.url + "health")
    assert status == 200 and health["ok"] and health["ticks_stored"] >= 24_358
    status, syms = request(server.url + "qdash/api/symbols")
    assert {"ADAUSDT", "BTCUSDT", "ETHUSDT"} <= set(syms["symbols"])
    status, ans = post(server, "/qdash/api/tick", orjson.dumps([one, one]))
    assert status == 400 and "ticks/batch" in ans["message"]


def test_non_market_binance_trades_are_skipped_and_counted(server, store):
    frames = [{"e": "trade", "E": T0, "T": T0, "s": "XRPUSDT", "t": 1, "p": "0.5", "q": "10",
               "X": "MARKET", "m": False},
              {"e": "trade", "E": T0, "T": T0, "s": "XRPUSDT", "t": 2, "p": "0", "q": "0",
               "X": "NA", "m": False},
              {"stream": "xrpusdt@trade", "data": {"e": "trade", "E": T0, "T": T0 + 1,
                                                   "s": "XRPUSDT", "t": 3, "p": "0.51",
                                                   "q": "5", "X": "MARKET", "m": True}}]
    status, ans = post(server, "/qdash/api/ticks/batch", orjson.dumps(frames))
    assert status == 200 and ans["stored"] == 2 and ans["skipped"] == {"filtered:X=NA": 1}
    assert store.ticks("XRPUSDT")["trade_id"].tolist() == [1, 3]


# --- validation: every failure stores nothing -------------------------------------------------
GOOD = tick(trade_id=1)
BAD_CASES = [
    # (name, items, index, field, words in the problem)
    ("missing symbol", [GOOD, {"ts": T0, "price": 1, "qty": 1}], 1, "symbol", "missing"),
    ("bad symbol", [{**GOOD, "symbol": "BTC/USDT"}], 0, "symbol", "bad symbol"),
    ("symbol not a string", [{**GOOD, "symbol": 5}], 0, "symbol", "string"),
    ("zero price", [GOOD, GOOD, {**GOOD, "price": 0}], 2, "price", "> 0"),
    ("negative qty", [{**GOOD, "qty": -1}], 0, "qty", "> 0"),
    ("zero size (collector)", [{"symbol": "BTCUSDT", "ts": "2025-11-02T14:09:47.000Z",
                                "price": 0, "size": 0}], 0, "price", "> 0"),
    ("nan price string", [{**GOOD, "price": "NaN"}], 0, "price", "finite"),
    ("inf qty", [{**GOOD, "qty": "inf"}], 0, "qty", "finite"),
    ("price not a number", [{**GOOD, "price": "abc"}], 0, "price", "number"),
    ("bool price", [{**GOOD, "price": True}], 0, "price", "number"),
    ("no qty or size", [{"symbol": "BTCUSDT", "ts": T0, "price": 1}], 0, "qty", "missing"),
    ("missing ts", [{"symbol": "BTCUSDT", "price": 1, "qty": 1}], 0, "ts", "missing"),
    ("ts too old", [{**GOOD, "ts": 1_000_000}], 0, "ts", "out of range"),
    ("ts far future", [{**GOOD, "ts": 4_200_000_000_000}], 0, "ts", "out of range"),
    ("ts bad iso", [{**GOOD, "ts": "yesterday"}], 0, "ts", "ISO-8601"),
    ("ts iso out of range", [{**GOOD, "ts": "1999-01-01T00:00:00Z"}], 0, "ts", "out of range"),
    ("float trade id", [{**GOOD, "trade_id": 1.5}], 0, "trade_id", "integer"),
    ("string trade id", [{**GOOD, "trade_id": "12"}], 0, "trade_id", "integer"),
    ("huge trade id", [{**GOOD, "trade_id": 2**64}], 0, "trade_id", "integer"),
    ("int64 overflow id", [{**GOOD, "trade_id": 2**63}], 0, "trade_id", "integer"),
    ("bad side", [{**GOOD, "is_buyer_maker": "yes"}], 0, "is_buyer_maker", "true, false"),
    ("not an object", [GOOD, [1, 2]], 1, None, "object"),
    ("depth frame", [{"e": "depthUpdate", "s": "BTCUSDT"}], 0, "e", "not a trade"),
    ("binance zero price", [{"e": "trade", "T": T0, "s": "BTCUSDT", "t": 9, "p": "0",
                             "q": "1", "X": "MARKET", "m": True}], 0, "p", "> 0"),
    ("binance missing id", [{"e": "trade", "T": T0, "s": "BTCUSDT", "p": "1", "q": "1",
                             "X": "MARKET", "m": True}], 0, "t", "missing"),
    ("binance old time", [{"e": "trade", "T": 5, "s": "BTCUSDT", "t": 9, "p": "1", "q": "1",
                           "X": "MARKET", "m": True}], 0, "T", "out of range"),
]


@pytest.mark.parametrize("name,items,index,field,words", BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_invalid_batches_are_rejected_whole_with_index_and_field(server, store, name, items,
                                                                 index, field, words):
    before = store.tick_count()
    status, ans = post(server, "/qdash/api/ticks/batch", json.dumps(items))
    assert status == 400, ans
    first = ans["problems"][0]
    assert (first["index"], first["field"]) == (index, field)
    assert words in first["problem"]
    assert f"item {index}" in ans["message"] and "nothing" in ans["message"]
    assert store.tick_count() == before


def test_ndjson_problems_name_the_line(server, store):
    body = b"\n".join(orjson.dumps(x) for x in [GOOD, GOOD]) + b"\n\n" + orjson.dumps(
        {**GOOD, "price": -2}) + b"\n"
    before = store.tick_count()
    status, ans = post(server, "/qdash/api/ticks/batch", body)
    assert status == 400 and ans["problems"][0] == {"index": 2, "field": "price", "line": 4,
                                                    "problem": "must be > 0, got -2"}
    assert store.tick_count() == before


@pytest.mark.parametrize("body,line,column", [
    (b'[{"symbol": "BTCUSDT",\n  "ts": 1721347022707,, "price": 1}]', 2, 23),
    (b'{"symbol": "BTCUSDT"}\n{"symbol": "ETHUSDT", \n', 2, 23),
    (b'[1, 2', 1, 6),
    (b'{"a": tru}', 1, 7),
])
def test_malformed_json_gets_line_and_column(server, store, body, line, column):
    before = store.tick_count()
    status, ans = post(server, "/qdash/api/ticks/batch", body)
    assert status == 400 and ans["error"] == "malformed-json"
    assert (ans["line"], ans["column"]) == (line, column)
    assert f"line {line}, column {column}" in ans["message"]
    assert store.tick_count() == before


def test_body_over_the_limit_gets_413_and_stores_nothing(tmp_path):
    srv = ServerThread(ServerConfig(db=str(tmp_path / "l.db"), token="t", max_body=2048))
    try:
        items = [tick(trade_id=i) for i in range(40)]  # ~2.8 kB
        body = orjson.dumps(items)
        assert len(body) > 2048
        status, ans = post(srv, "/qdash/api/ticks/batch", body, token="t")
        assert status == 413 and ans["error"] == "too-large"
        # without Content-Length (chunked upload) the limit holds too
        with socket.create_connection(("127.0.0.1", srv.server.port)) as s:
            chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 500]), body[i:i + 500])
                              for i in range(0, len(body), 500))
            s.sendall(b"POST /qdash/api/ticks/batch HTTP/1.1\r\nHost: x\r\nAuthorization: "
                      b"Bearer t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                      + chunks + b"0\r\n\r\n")
            reply = b""
            while chunk := s.recv(65536):
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 413")
        status, ans = post(srv, "/qdash/api/ticks/batch", orjson.dumps(items[:20]), token="t")
        assert status == 200 and ans["stored"] == 20
        with Store(srv.service.db_path) as s:
            assert s.tick_count() == 20
    finally:
        srv.stop()


@pytest.mark.integration
def test_a_client_that_sends_the_whole_body_first_reads_the_413_and_the_401(tmp_path):
    """urllib writes the whole body before it reads the answer: a server that answers and closes
    early gives it a broken pipe instead of the 413 (bodies far above the socket buffers)."""
    srv = ServerThread(ServerConfig(db=str(tmp_path / "big.db"), token="t", max_body=64 * 1024))
    try:
        body = b"[" + b",".join([orjson.dumps(tick(trade_id=i)) for i in range(120_000)]) + b"]"
        assert len(body) > 8 * 2**20
        status, ans = post(srv, "/qdash/api/ticks/batch", body, token="t")
        assert status == 413 and ans["error"] == "too-large" and str(len(body)) in ans["message"]
        status, ans = post(srv, "/qdash/api/ticks/batch", body, token="wrong")
        assert status == 401 and ans["error"] == "unauthorized"
        # the connection pool and the server are fine afterwards
        status, ans = post(srv, "/qdash/api/ticks/batch", orjson.dumps([tick(trade_id=1)]),
                           token="t")
        assert status == 200 and ans["stored"] == 1
        assert srv.service.rejected == 2
    finally:
        srv.stop()


# --- auth ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("token", [None, "wrong", ""])
def test_writes_without_the_token_get_401_and_store_nothing(server, store, token):
    before = store.tick_count()
    body = orjson.dumps([tick(symbol="AUTHUSDT", trade_id=1)])
    status, ans = post(server, "/qdash/api/ticks/batch", body, token=token)
    assert status == 401 and ans["error"] == "unauthorized"
    status, _ = post(server, "/api/tick", orjson.dumps(tick(symbol="AUTHUSDT")), token=token)
    assert status == 401
    with pytest.raises(InvalidStatus) as exc:
        connect(server.ws_url + "qdash/ws/ingest" + (f"?token={token}" if token else ""))
    assert exc.value.response.status_code == 401
    assert store.tick_count() == before and "AUTHUSDT" not in store.symbols()


def test_token_in_query_and_token_scheme_work(server, store):
    status, _ = post(server, "/qdash/api/tick?token=test-token",
                     orjson.dumps(tick(symbol="QRYUSDT", trade_id=1)), token=None)
    assert status == 200
    status, _ = post(server, "/qdash/api/tick", orjson.dumps(tick(symbol="QRYUSDT", trade_id=2)),
                     token=None, headers={"Authorization": "token test-token"})
    assert status == 200
    assert store.tick_count("QRYUSDT") == 2


def test_subscriptions_need_the_token_unless_loopback_is_exempt(server, tmp_path):
    with pytest.raises(InvalidStatus) as exc:
        connect(server.ws_url + "qdash/ws/ticks?symbols=BTCUSDT")
    assert exc.value.response.status_code == 401
    with connect(server.ws_url + "qdash/ws/ticks?symbols=btcusdt",
                 additional_headers={"Authorization": "Bearer test-token"}) as ws:
        assert json.loads(ws.recv(10)) == {"type": "hello", "symbols": ["BTCUSDT"]}
    srv = ServerThread(ServerConfig(db=str(tmp_path / "x.db"), token="t",
                                    loopback_subscribe=True))
    try:
        with connect(srv.ws_url + "qdash/ws/ticks") as ws:  # no token, from 127.0.0.1
            assert json.loads(ws.recv(10)) == {"type": "hello", "symbols": None}
        with pytest.raises(InvalidStatus):  # writes still need it
            connect(srv.ws_url + "qdash/ws/ingest")
    finally:
        srv.stop()


def test_cors_preflight_allows_the_authorization_header(server):
    status, _ = request(server.url + "qdash/api/ticks/batch", method="OPTIONS",
                        headers={"Origin": "null",
                                 "Access-Control-Request-Method": "POST"})
    assert status == 204


# --- WebSocket ingest ---------------------------------------------------------------------------
def test_ws_ingest_acks_every_message_in_order(server, store):
    with connect(server.ws_url + "qdash/ws/ingest",
                 additional_headers={"Authorization": "Bearer test-token"}) as ws:
        ws.send(orjson.dumps(tick(symbol="WSAUSDT", trade_id=1)))
        ws.send(orjson.dumps([tick(symbol="WSAUSDT", trade_id=2),
                              tick(symbol="WSAUSDT", trade_id=3)]))
        ws.send(orjson.dumps([tick(symbol="WSAUSDT", trade_id=4, price=-1)]))
        ws.send(b'{"symbol": "WSAUSDT",')
        ws.send(orjson.dumps({"id": "b7", "ticks": [tick(symbol="WSAUSDT", trade_id=3),
                                                    tick(symbol="WSAUSDT", trade_id=5)]}))
        replies = [json.loads(ws.recv(30)) for _ in range(5)]
    assert [r["seq"] for r in replies] == [1, 2, 3, 4, 5]
    assert [r["type"] for r in replies] == ["ack", "ack", "error", "error", "ack"]
    assert [r.get("stored") for r in replies] == [1, 2, None, None, 1]
    assert replies[2]["problems"][0]["field"] == "price"
    assert replies[3]["error"] == "malformed-json"
    assert replies[4]["id"] == "b7" and replies[4]["duplicates"] == 1
    assert store.ticks("WSAUSDT")["trade_id"].tolist() == [1, 2, 3, 5]


# --- hub fan-out --------------------------------------------------------------------------------
def _recv_ticks(ws, n_ticks, timeout=30):
    got, seqs = [], []
    deadline = time.monotonic() + timeout
    while sum(len(g) for g in got) < n_ticks:
        msg = json.loads(ws.recv(max(0.1, deadline - time.monotonic())))
        if msg["type"] == "ticks":
            seqs.append(msg["seq"])
            got.append(pd.DataFrame({k: msg[k] for k in ("symbol", "ts", "trade_id", "price",
                                                         "qty", "is_buyer_maker")}))
    return pd.concat(got, ignore_index=True), seqs


def test_subscribers_get_new_ticks_of_their_symbols_in_order(server):
    auth = {"Authorization": "Bearer test-token"}
    with connect(server.ws_url + "qdash/ws/ticks?symbols=FANAUSDT", additional_headers=auth) as a, \
            connect(server.ws_url + "qdash/ws/ticks?symbols=FANAUSDT,FANBUSDT",
                    additional_headers=auth) as ab:
        assert json.loads(a.recv(10))["type"] == json.loads(ab.recv(10))["type"] == "hello"
        batches = [[tick(symbol="FANAUSDT" if (i + k) % 3 else "FANBUSDT", trade_id=100 * k + i,
                         price=100 + i) for i in range(50)] for k in range(6)]
        for b in batches:
            assert post(server, "/qdash/api/ticks/batch", orjson.dumps(b))[0] == 200
        # a re-sent batch is stored once and published once
        assert post(server, "/qdash/api/ticks/batch", orjson.dumps(batches[0]))[1]["stored"] == 0
        sent = pd.DataFrame([t for b in batches for t in b])
        got_a, seq_a = _recv_ticks(a, int((sent["symbol"] == "FANAUSDT").sum()))
        got_ab, seq_ab = _recv_ticks(ab, len(sent))
        assert seq_a == sorted(seq_a) and seq_ab == sorted(seq_ab) and len(seq_ab) == 6
        assert got_ab["trade_id"].tolist() == sent["trade_id"].tolist()
        assert got_ab["price"].tolist() == sent["price"].tolist()
        assert got_a["trade_id"].tolist() == sent.loc[sent["symbol"] == "FANAUSDT",
                                                      "trade_id"].tolist()
        assert set(got_a["symbol"]) == {"FANAUSDT"}
        # nothing more arrives: the duplicate batch was not published
        post(server, "/qdash/api/ticks/batch", orjson.dumps([tick(symbol="FANBUSDT",
                                                                  trade_id=999)]))
        extra, _ = _recv_ticks(ab, 1)
        assert extra["trade_id"].tolist() == [999]


def _ws_frames(data: bytes):
    """Parse server→client WebSocket frames (unmasked) from raw bytes."""
    frames, i = [], 0
    while i + 2 <= len(data):
        op, n = data[i] & 0x0F, data[i + 1] & 0x7F
        j = i + 2
        if n == 126:
            n, j = int.from_bytes(data[j:j + 2], "big"), j + 2
        elif n == 127:
            n, j = int.from_bytes(data[j:j + 8], "big"), j + 8
        if j + n > len(data):
            break
        frames.append((op, data[j:j + n]))
        i = j + n
    return frames


def test_a_slow_subscriber_is_dropped_without_slowing_ingestion_or_others(tmp_path):
    srv = ServerThread(ServerConfig(db=str(tmp_path / "s.db"), token="t", max_queue=4,
                                    synchronous="NORMAL"))
    try:
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.connect(("127.0.0.1", srv.server.port))
        slow.sendall(b"GET /qdash/ws/ticks?token=t HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     b"Sec-WebSocket-Version: 13\r\n\r\n")
        assert slow.recv(12) == b"HTTP/1.1 101"
        with connect(srv.ws_url + "qdash/ws/ticks?token=t", max_size=None) as fast:
            fast.recv(10)  # hello
            per, k, dropped_at = 2000, 0, None
            while k < 200 and (dropped_at is None or k < dropped_at + 3):
                body = orjson.dumps([tick(symbol="SLOWUSDT", trade_id=k * per + i,
                                          price=1 + i) for i in range(per)])
                status, ans = post(srv, "/qdash/api/ticks/batch", body, token="t")
                assert status == 200 and ans["stored"] == per  # ingestion goes on
                k += 1
                if dropped_at is None and srv.service.hub.dropped_subscribers:
                    dropped_at = k
            assert dropped_at is not None, "the slow reader was never dropped"
            got, seqs = _recv_ticks(fast, k * per)  # the fast reader missed nothing
        assert got["trade_id"].tolist() == list(range(k * per))
        health = request(srv.url + "qdash/api/health")[1]
        assert health["subscribers_dropped"] == 1 and health["subscribers"] == 0
        slow.settimeout(10)
        data, close = b"", []
        while not close:  # drain: the close frame with the reason comes last
            chunk = slow.recv(1 << 20)
            if not chunk:
                break
            data += chunk
            if b"\r\n\r\n" in data:
                frames = _ws_frames(data[data.index(b"\r\n\r\n") + 4:])
                close = [payload for op, payload in frames if op == 8]
        assert close and int.from_bytes(close[0][:2], "big") == 1008
        assert b"too slow" in close[0][2:]
        slow.close()
    finally:
        srv.stop()


# --- property-based: any body either stores exactly its ticks or nothing ------------------------
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                         st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12))
tickish = st.fixed_dictionaries(
    {"symbol": st.sampled_from(["BTCUSDT", "ethusdt", "X", "", "FUZZUSDT"]) | json_scalars,
     "ts": st.sampled_from([T0, T0 * 1000, "2024-07-18T23:57:02.707Z", 5]) | json_scalars,
     "price": st.floats(min_value=-10, max_value=1e6) | json_scalars,
     "qty": st.floats(min_value=-1, max_value=100) | json_scalars},
    optional={"trade_id": st.integers(-2**65, 2**65) | json_scalars,
              "is_buyer_maker": st.sampled_from([True, False, 0, 1, -1, None]) | json_scalars})
bodies = st.one_of(
    st.binary(max_size=200),
    st.lists(tickish, max_size=6).map(lambda x: json.dumps(x, allow_nan=True).encode()),
    st.lists(tickish, max_size=6).map(
        lambda x: b"\n".join(json.dumps(t, allow_nan=True).encode() for t in x)),
    st.lists(tickish, min_size=1, max_size=4).map(
        lambda x: json.dumps(x, allow_nan=True).encode()[:-3]),
)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies)
def test_fuzzed_bodies_store_all_or_nothing_and_never_crash(server, store, body):
    before = store.tick_count()
    status, ans = post(server, "/qdash/api/ticks/batch", body)
    assert status in (200, 400), (status, ans)
    if status == 400:
        assert ans["ok"] is False and ans["message"]
        assert store.tick_count() == before
    else:
        assert store.tick_count() == before + ans["stored"]
        assert ans["stored"] + ans["duplicates"] == ans["received"]
