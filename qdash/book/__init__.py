"""qdash.book: the walk-forward book of pairs (scan -> select -> allocate -> trade -> roll).

* :mod:`.result`: :class:`~.result.BookResult`, the tables a run produces and how they are
  written.
* :mod:`.report`: ``report.html`` (:func:`~.report.write_report`), one offline file with its
  provenance embedded.
* :mod:`.files`: :func:`~.files.read_book`, a run read back from its ``--out`` directory.
"""
