"""Alert sinks against a real Tornado receiver on 127.0.0.1: Slack, Discord and templated JSON
payloads, retries with backoff, failures (HTTP 500/400, refused, timeout) recorded not raised,
and a stalled endpoint that does not slow the evaluation loop."""

import asyncio
import json
import socket
import time

import pytest
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler

from qdash.alerts import Alert, AlertManager, CallbackSink, WebhookSink
from qdash.errors import AlertError
from qdash.store import Store

PAIR = "BTCUSDT/ETHUSDT"
T0 = 1_721_347_200_000


class Receiver:
    """Webhook receiver; the path picks the behaviour: /fast, /discord (204), /fail500,
    /flaky (500 twice, then 200), /bad400, /stall (answers only when released)."""

    def __init__(self):
        self.requests: list[tuple[str, dict, dict, float]] = []
        self.release = asyncio.Event()
        self.server: HTTPServer | None = None
        self.port = 0

    def url(self, mode: str) -> str:
        return f"http://127.0.0.1:{self.port}/{mode}"

    def hits(self, mode: str) -> list[dict]:
        return [body for m, body, _, _ in self.requests if m == mode]

    async def __aenter__(self):
        receiver = self

        class Hook(RequestHandler):
            async def post(self, mode):
                receiver.requests.append((mode, json.loads(self.request.body),
                                          dict(self.request.headers), time.monotonic()))
                n = len(receiver.hits(mode))
                if mode == "discord":
                    self.set_status(204)
                elif mode == "fail500" or (mode == "flaky" and n <= 2):
                    self.set_status(500)
                elif mode == "bad400":
                    self.set_status(400)
                elif mode == "stall":
                    await receiver.release.wait()
                self.finish()

        sockets = bind_sockets(0, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        self.server = HTTPServer(Application([(r"/(\w+)", Hook)]))
        self.server.add_sockets(sockets)
        return self

    async def __aexit__(self, *exc):
        self.release.set()
        self.server.stop()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_alert(**kw) -> Alert:
    base = dict(rule="z-high", severity="warning", pair=PAIR, ts=T0 + 1500,
                message="zscore=2.5, corr=0.9 (zscore > 2 and corr > 0.8)",
                values={"zscore": 2.5, "corr": 0.9}, condition="zscore > 2 and corr > 0.8")
    return Alert(**(base | kw))


async def deliver(sink, alert):
    sink.start()
    delivery = sink.submit(alert)
    await sink.join()
    await sink.stop()
    return delivery


def test_only_http_urls_and_valid_templates_are_accepted():
    for bad in ["ftp://example.com/hook", "file:///etc/passwd", "hooks.slack.com/services/x",
                "javascript:alert(1)", "http://", "", "https//missing-colon.com"]:
        with pytest.raises(AlertError, match="only http and https|no host|malformed"):
            WebhookSink(bad)
    assert WebhookSink("https://hooks.slack.com/services/T/B/X", format="slack").name == \
        "slack:hooks.slack.com"
    with pytest.raises(AlertError, match=r"unknown field \{rul\}; did you mean \{rule\}"):
        WebhookSink("http://127.0.0.1:1/x", template={"a": ["{rul}"]})
    with pytest.raises(AlertError, match="format must be one of"):
        WebhookSink("http://127.0.0.1:1/x", format="teams")
    with pytest.raises(AlertError, match="text= for slack"):
        WebhookSink("http://127.0.0.1:1/x", format="slack", template={"a": "{rule}"})
    with pytest.raises(AlertError, match="does not format"):
        WebhookSink("http://127.0.0.1:1/x", format="discord", text="{value:%Y}")


def test_slack_discord_and_template_payloads():
    async def scenario():
        async with Receiver() as rx:
            slack = WebhookSink(rx.url("fast"), format="slack")
            discord = WebhookSink(rx.url("discord"), format="discord")
            generic = WebhookSink(rx.url("fast"), name="generic", template={
                "alert": "{rule}", "level": "{severity}", "at": "{time}", "ms": "{ts}",
                "z": "{value}", "metric": "{metric}", "text": "z={zscore:.2f} on {pair}",
                "nested": [{"corr": "{corr}"}, 7, None, True]})
            plain = WebhookSink(rx.url("fast"), name="plain")
            alert = make_alert()
            results = [await deliver(s, alert) for s in (slack, discord, generic, plain)]
            return rx, results

    rx, (d_slack, d_discord, d_generic, d_plain) = asyncio.run(scenario())
    assert [d.status for d in (d_slack, d_discord, d_generic, d_plain)] == ["sent"] * 4
    assert d_discord.code == 204 and d_slack.code == 200 and d_slack.attempts == 1
    assert all(h["Content-Type"] == "application/json" for _, _, h, _ in rx.requests)
    slack_body, generic_body, plain_body = rx.hits("fast")
    assert slack_body["text"] == ("*[WARNING] z-high* on `BTCUSDT/ETHUSDT`: "
                                  "zscore=2.5, corr=0.9 (zscore > 2 and corr > 0.8)")
    assert slack_body["blocks"][0] == {"type": "section",
                                       "text": {"type": "mrkdwn", "text": slack_body["text"]}}
    assert "2024-07-19T00:00:01.500+00:00" in slack_body["blocks"][1]["elements"][0]["text"]
    (discord_body,) = rx.hits("discord")
    assert discord_body["content"].startswith("**[WARNING] z-high** on BTCUSDT/ETHUSDT")
    assert discord_body["allowed_mentions"] == {"parse": []}
    embed = discord_body["embeds"][0]
    assert embed["title"] == "z-high (warning)" and embed["timestamp"] == \
        "2024-07-19T00:00:01.500+00:00"
    assert embed["fields"] == [{"name": "zscore", "value": "2.5", "inline": True},
                               {"name": "corr", "value": "0.9", "inline": True}]
    assert generic_body == {"alert": "z-high", "level": "warning",
                            "at": "2024-07-19T00:00:01.500+00:00", "ms": T0 + 1500, "z": 2.5,
                            "metric": "zscore", "text": "z=2.50 on BTCUSDT/ETHUSDT",
                            "nested": [{"corr": 0.9}, 7, None, True]}
    assert plain_body == make_alert().to_dict() | {"values": {"zscore": 2.5, "corr": 0.9}}


def test_retries_backoff_and_failures_are_recorded_not_raised():
    async def scenario():
        async with Receiver() as rx:
            sinks = {
                "flaky": WebhookSink(rx.url("flaky"), retries=3, backoff_s=0.05),
                "fail500": WebhookSink(rx.url("fail500"), retries=2, backoff_s=0.01),
                "bad400": WebhookSink(rx.url("bad400"), retries=3, backoff_s=0.01),
                "refused": WebhookSink(f"http://127.0.0.1:{closed_port()}/x", retries=2,
                                       backoff_s=0.01),
                "timeout": WebhookSink(rx.url("stall"), retries=1, backoff_s=0.01,
                                       timeout_s=0.2),
            }
            out = {}
            for name, sink in sinks.items():
                out[name] = await deliver(sink, make_alert())
            return rx, out

    rx, out = asyncio.run(scenario())
    assert (out["flaky"].status, out["flaky"].attempts, out["flaky"].retries) == ("sent", 3, 2)
    assert str(out["flaky"]) == "sent after 2 retries"
    times = [t for m, _, _, t in rx.requests if m == "flaky"]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert gaps[0] >= 0.05 * 0.9 and gaps[1] >= 0.10 * 0.9  # exponential backoff lower bounds
    assert (out["fail500"].status, out["fail500"].attempts, out["fail500"].code) == \
        ("failed", 3, 500)
    assert out["fail500"].error.startswith("HTTP 500")
    assert str(out["fail500"]).startswith("failed after 2 retries: HTTP 500")
    assert len(rx.hits("fail500")) == 3
    assert (out["bad400"].status, out["bad400"].attempts) == ("failed", 1)  # no retry on 400
    assert out["refused"].status == "failed" and out["refused"].attempts == 3
    assert "connection failed" in out["refused"].error
    assert out["timeout"].status == "failed" and out["timeout"].attempts == 2
    assert "timeout" in out["timeout"].error.lower()
    assert len(rx.hits("stall")) == 2


def test_stalled_receiver_does_not_slow_evaluation(db_path):
    """1000 evaluations, each firing, all complete while the first webhook request is still
    unanswered; the callback sink gets every alert in order; the webhook's bounded queue
    records the overflow as dropped; once released, the queued ones are sent."""
    seen = []

    async def scenario():
        async with Receiver() as rx:
            hook = WebhookSink(rx.url("stall"), name="hook", workers=1, queue_size=10,
                               timeout_s=60, retries=0)
            cb = CallbackSink(seen.append, name="cb", queue_size=2000)
            m = AlertManager(Store(db_path), sinks=[hook, cb])
            m.add("zscore > 2", name="z", hysteresis=False)
            m.start()
            fired = []
            for i in range(1000):
                fired += m.update(PAIR, {"zscore": 3.0}, T0 + i)
                await asyncio.sleep(0)  # let the workers and the writer run between updates
            state = dict(evaluations=m.evaluations, fired=len(fired),
                         requests=len(rx.hits("stall")), first=fired[0].delivery["hook"].status,
                         released=rx.release.is_set(), cb_seen=len(seen))
            statuses = [a.delivery["hook"].status for a in fired]
            rx.release.set()
            await m.join()
            after = [a.delivery["hook"].status for a in fired]
            await m.stop()
            return state, statuses, after, m.history()

    state, during, after, hist = asyncio.run(scenario())
    assert state["evaluations"] == 1000 and state["fired"] == 1000
    assert state["requests"] == 1 and state["first"] == "pending" and not state["released"]
    assert state["cb_seen"] >= 990  # the callback sink kept up meanwhile
    assert during[:11] == ["pending"] * 11 and set(during[11:]) == {"dropped"}
    assert after[:11] == ["sent"] * 11
    assert [a.ts for a in seen] == [T0 + i for i in range(1000)]
    assert len(hist) == 1000
    assert hist["status"].iloc[0] == "hook: sent; cb: sent"
    assert hist["status"].iloc[500] == "hook: dropped: queue full (10 alerts waiting); cb: sent"


def test_callback_sinks_sync_async_and_failing():
    got_sync, got_async = [], []

    async def slow_async(alert):
        await asyncio.sleep(0.01)
        got_async.append(alert.rule)

    def broken(alert):
        raise RuntimeError("boom")

    async def never(alert):
        await asyncio.Event().wait()

    async def scenario():
        m = AlertManager(None, sinks=[
            CallbackSink(got_sync.append, name="sync"),
            CallbackSink(slow_async, name="async"),
            CallbackSink(broken, name="broken"),
            CallbackSink(never, name="never", timeout_s=0.05),
            CallbackSink(lambda a: got_sync.append("thread"), name="thread", in_thread=True),
            CallbackSink(got_sync.append, name="crit-only", min_severity="critical"),
        ])
        m.add("zscore > 2", name="z", actions=["sync", "async", "broken", "never", "thread",
                                               "crit-only"])
        m.add("zscore > 2.5", name="quiet", actions=[])
        m.start()
        (alert, quiet) = m.update(PAIR, {"zscore": 3.0}, T0)  # must not raise
        await m.join()
        await m.stop()
        return alert, quiet

    alert, quiet = asyncio.run(scenario())
    assert got_async == ["z"] and got_sync.count("thread") == 1
    assert [a for a in got_sync if a != "thread"] == [alert]
    d = alert.delivery
    assert d["sync"].status == d["async"].status == d["thread"].status == "sent"
    assert d["broken"].status == "failed" and d["broken"].error == "RuntimeError: boom"
    assert d["never"].status == "failed" and "timeout" in d["never"].error
    assert "crit-only" not in d and quiet.delivery == {}


def test_stop_cancels_stalled_delivery_and_logs_it(db_path):
    async def scenario():
        async with Receiver() as rx:
            m = AlertManager(Store(db_path), sinks=[
                WebhookSink(rx.url("stall"), name="hook", timeout_s=60, retries=0, workers=1)])
            m.add("zscore > 2", name="z", hysteresis=False)
            m.start()
            m.update(PAIR, {"zscore": 3.0}, T0)
            m.update(PAIR, {"zscore": 3.0}, T0 + 1)
            while not rx.hits("stall"):
                await asyncio.sleep(0.01)
            await m.stop(timeout_s=0.05)
            return m.history()

    hist = asyncio.run(scenario())
    assert [d["hook"]["status"] for d in hist["delivery"]] == ["failed", "failed"]
    assert hist["delivery"].iloc[0]["hook"]["error"] == "cancelled: sink stopped during delivery"
    assert hist["delivery"].iloc[1]["hook"]["error"] == "not delivered: sink stopped"
