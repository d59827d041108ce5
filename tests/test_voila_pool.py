"""``/qdash/api/health``'s ``kernels_ready`` counts a preheated kernel once its notebook has run
and its page is rendered, not as soon as the kernel started (a page taking it then waits for the
whole notebook: the first page after start-up took 2.9 s to answer instead of 20 ms)."""

import asyncio
from types import SimpleNamespace

import pytest

pytestmark = pytest.mark.integration


def test_a_kernel_still_running_its_notebook_is_pooled_but_not_ready():
    # imported here: collecting the unit tier imports every module, and Voila's app costs 3.4 s
    from qdash.server.voila_app import QdashVoila

    async def main():
        loop = asyncio.get_running_loop()
        rendering, rendered = loop.create_future(), loop.create_future()
        rendered.set_result(([], None))
        entries = []
        for kid, task in (("k-rendering", rendering), ("k-rendered", rendered)):
            started = loop.create_future()
            started.set_result({"kernel_id": kid, "task": task, "renderer": None})
            entries.append(started)
        starting = loop.create_future()  # a kernel still starting: neither
        app = SimpleNamespace(kernel_manager=SimpleNamespace(
            _pools={"dash.ipynb": entries + [starting]}))
        pooled = QdashVoila._pooled(app)
        ready = QdashVoila._pooled(app, rendered=True)
        rendering.set_result(([], None))
        return pooled, ready, QdashVoila._pooled(app, rendered=True)

    pooled, ready, later = asyncio.run(main())
    assert pooled == {"k-rendering", "k-rendered"}  # both are the pool's (not orphans)
    assert ready == {"k-rendered"}
    assert later == {"k-rendering", "k-rendered"}
