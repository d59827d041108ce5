"""qdash.server: the tick ingestion server.

* :mod:`.ingest` — request bodies → validated canonical tick batches (all or nothing);
* :mod:`.hub` — in-server fan-out of accepted ticks to WebSocket subscribers;
* :mod:`.service` — configuration, token, store writer thread and hub shared by one server;
* :mod:`.handlers` — the Tornado handlers under ``/qdash/`` (one set for every host);
* hosts: :mod:`.extension` (Jupyter server extension), :mod:`.voila_app` (the dashboard app,
  a ``voila.app.Voila`` subclass), :mod:`.app` / :mod:`.cli` (standalone ``qdash serve``);
* ``static/collector.html`` — the browser collector page.
"""
