"""The `qdash dashboard` and `qdash demo` commands (:mod:`.app`); the dashboard itself is
:mod:`qdash.app`."""
