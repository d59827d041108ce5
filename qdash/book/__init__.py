"""qdash.book: the walk-forward book of pairs (scan -> select -> allocate -> trade -> roll).

* :mod:`.result`: :class:`~.result.BookResult`, the tables a run produces and how they are
  written.
"""
