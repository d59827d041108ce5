"""The numba byte scanner: the fast path of :mod:`qdash.binance.decode` for large batches.

:func:`scan_frames` reads the trade fields of flat Binance JSON frames joined into one buffer
(:func:`join_frames`) and accepts only frames the orjson path of :mod:`qdash.binance.decode`
decodes identically (see that module's docstring for what it accepts and when it is used).
:func:`warm_up` compiles it (or loads numba's cache) ahead of the first large batch.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# --- numba byte scanner (the fast path) ----------------------------------------------------------
#
# The batch's frames are joined by b"\n" into one buffer and each frame is scanned by a compiled
# loop that only *accepts* what it can prove the orjson path decodes to the same tick: one flat
# JSON object (or a combined-stream envelope with a flat ``data`` object), any key order, strings
# without escapes or non-ASCII bytes, numbers without exponent, no arrays. Anything else marks the
# frame "not handled" and the whole batch goes to the orjson path, so results (ticks, counts,
# errors, line numbers) are those of the orjson path by construction.

_K_E, _K_S, _K_T_ID, _K_A, _K_P, _K_Q, _K_TIME, _K_M, _K_X, _K_STREAM, _K_DATA = range(11)
# the slot of each one-letter key, by its byte (-1: a key the decoder ignores)
_ONE_LETTER_KEY = np.full(256, -1, np.int64)
for _letter, _slot in zip("estapqTmX", (_K_E, _K_S, _K_T_ID, _K_A, _K_P, _K_Q, _K_TIME, _K_M,
                                        _K_X), strict=True):
    _ONE_LETTER_KEY[ord(_letter)] = _slot
_N_KEYS = 11
_V_STR, _V_NUM, _V_TRUE, _V_FALSE, _V_NULL, _V_OBJ = range(1, 7)
_POW10 = np.array([10.0 ** k for k in range(23)])  # exact: every 10**k, k <= 22, is a double
_MAX_SYMBOLS = 4096
KIND_SKIPPED, KIND_TRADE, KIND_AGG = 0, 1, 2
_B_TRUE, _B_FALSE, _B_NULL, _B_TRADE, _B_AGG, _B_MARKET = (
    np.frombuffer(w, dtype=np.uint8).copy() for w in (b"true", b"false", b"null", b"trade",
                                                      b"aggTrade", b"MARKET"))


@njit(cache=True, nogil=True)
def _ws(buf, i, end):
    while i < end and (buf[i] == 32 or buf[i] == 9 or buf[i] == 13 or buf[i] == 10):
        i += 1
    return i


@njit(cache=True, nogil=True)
def _string_end(buf, i, end):
    """``buf[i]`` is an opening quote: index of the closing quote, or -1 when it is missing.
    (The buffer holds no backslash, control or non-ASCII byte: :func:`_plain_bytes`.)"""
    i += 1
    while i < end:
        if buf[i] == 34:
            return i
        i += 1
    return -1


@njit(cache=True, nogil=True)
def _plain_bytes(buf):
    """True when ``buf`` has no backslash, no non-ASCII byte and no control byte but newlines:
    then every JSON string in it is plain ASCII without escapes."""
    bad = 0
    for k in range(len(buf)):
        c = buf[k]
        bad |= (c >= 128) | (c == 92) | ((c < 32) & (c != 10))
    return bad == 0


@njit(cache=True, nogil=True)
def _number_end(buf, i, end):
    """End of a JSON number without exponent starting at ``i`` (at most 40 bytes), or -1."""
    j = i
    if j < end and buf[j] == 45:
        j += 1
    if j >= end or buf[j] < 48 or buf[j] > 57:
        return -1
    if buf[j] == 48:
        j += 1
    else:
        while j < end and 48 <= buf[j] <= 57:
            j += 1
    if j < end and buf[j] == 46:
        j += 1
        d0 = j
        while j < end and 48 <= buf[j] <= 57:
            j += 1
        if j == d0:
            return -1
    if j < end and (buf[j] == 101 or buf[j] == 69):  # exponent: orjson may overflow, leave it
        return -1
    if j - i > 40:
        return -1
    return j


@njit(cache=True, nogil=True)
def _literal_end(buf, i, end, word):
    n = len(word)
    if i + n > end:
        return -1
    for k in range(n):
        if buf[i + k] != word[k]:
            return -1
    return i + n


@njit(cache=True, nogil=True)
def _key_slot(buf, ks, ke):
    """Slot of the key ``buf[ks:ke]`` (without quotes), or -1 for a key the decoder ignores."""
    n = ke - ks
    if n == 1:
        return _ONE_LETTER_KEY[buf[ks]]
    if n == 6 and (buf[ks] == 115 and buf[ks + 1] == 116 and buf[ks + 2] == 114
                   and buf[ks + 3] == 101 and buf[ks + 4] == 97 and buf[ks + 5] == 109):
        return _K_STREAM
    if n == 4 and buf[ks] == 100 and buf[ks + 1] == 97 and buf[ks + 2] == 116 and buf[ks + 3] == 97:
        return _K_DATA
    return -1


@njit(cache=True, nogil=True)
def _scan_object(buf, i, end, slots):
    """Scan the JSON object starting at ``buf[i] == "{"`` (after the prefix rule): flat, or with
    one ``data`` object at the top level. ``slots[depth, key] = (type, start, end)``. Returns the
    index after the closing brace, or -1 when the object is not one the scanner accepts."""
    if i >= end or buf[i] != 123:
        return -1
    depth = 0
    i = _ws(buf, i + 1, end)
    if i < end and buf[i] == 125:  # {}
        return i + 1
    while True:
        if i >= end or buf[i] != 34:
            return -1
        ke = _string_end(buf, i, end)
        if ke < 0:
            return -1
        slot = _key_slot(buf, i + 1, ke)
        i = _ws(buf, ke + 1, end)
        if i >= end or buf[i] != 58:
            return -1
        i = _ws(buf, i + 1, end)
        if i >= end:
            return -1
        c = buf[i]
        vs = i
        entered = False
        if c == 34:
            ve = _string_end(buf, i, end)
            if ve < 0:
                return -1
            vtype, vs, i = _V_STR, i + 1, ve + 1
        elif c == 45 or 48 <= c <= 57:
            ve = _number_end(buf, i, end)
            if ve < 0:
                return -1
            vtype, i = _V_NUM, ve
        elif c == 116:
            vtype, i = _V_TRUE, _literal_end(buf, i, end, _B_TRUE)
        elif c == 102:
            vtype, i = _V_FALSE, _literal_end(buf, i, end, _B_FALSE)
        elif c == 110:
            vtype, i = _V_NULL, _literal_end(buf, i, end, _B_NULL)
        elif c == 123 and depth == 0 and slot == _K_DATA:
            vtype, entered = _V_OBJ, True
        else:
            return -1
        if i < 0:
            return -1
        if slot >= 0:
            if slots[depth, slot, 0] != 0:  # duplicate key: leave it to orjson
                return -1
            slots[depth, slot, 0] = vtype
            slots[depth, slot, 1] = vs
            slots[depth, slot, 2] = i - 1 if vtype == _V_STR else i
        if entered:
            depth = 1
            i = _ws(buf, i + 1, end)
            if i < end and buf[i] == 125:  # "data":{}
                depth = 0
                i = _ws(buf, i + 1, end)
            else:
                continue
        else:
            i = _ws(buf, i, end)
        while True:  # after a value: "," or "}" (closing "data" returns to the top level)
            if i >= end:
                return -1
            if buf[i] == 44:
                i = _ws(buf, i + 1, end)
                break
            if buf[i] != 125:
                return -1
            if depth == 0:
                return i + 1
            depth = 0
            i = _ws(buf, i + 1, end)


@njit(cache=True, nogil=True)
def _parse_int(buf, s, e):
    """A JSON integer (no fraction) of at most 18 digits; ok flag and value."""
    neg = buf[s] == 45
    if neg:
        s += 1
    if e - s > 18 or e <= s:
        return False, 0
    v = 0
    for k in range(s, e):
        c = buf[k]
        if c < 48 or c > 57:
            return False, 0
        v = v * 10 + (c - 48)
    return True, -v if neg else v


@njit(cache=True, nogil=True)
def _parse_decimal(buf, s, e):
    """``float(buf[s:e])`` for ``[+-]digits[.digits][(e|E)[+-]digits]`` when Clinger's fast path
    applies (mantissa < 2**53, power of ten <= 22: one correctly rounded IEEE operation); ok flag
    and value."""
    if s >= e:
        return False, 0.0
    neg = False
    c = buf[s]
    if c == 45 or c == 43:
        neg = c == 45
        s += 1
    mant = 0
    ndig = 0  # significant digits in mant
    nd = 0  # digits seen
    frac = 0
    seen_dot = False
    while s < e:
        c = buf[s]
        if 48 <= c <= 57:
            nd += 1
            if mant > 0 or c != 48:
                ndig += 1
                if ndig > 17:
                    return False, 0.0
                mant = mant * 10 + (c - 48)
            if seen_dot:
                frac += 1
        elif c == 46 and not seen_dot:
            seen_dot = True
        else:
            break
        s += 1
    if nd == 0:
        return False, 0.0
    exp = 0
    if s < e:
        c = buf[s]
        if c != 101 and c != 69:
            return False, 0.0
        s += 1
        eneg = False
        if s < e and (buf[s] == 45 or buf[s] == 43):
            eneg = buf[s] == 45
            s += 1
        if s >= e or e - s > 4:
            return False, 0.0
        for k in range(s, e):
            c = buf[k]
            if c < 48 or c > 57:
                return False, 0.0
            exp = exp * 10 + (c - 48)
        if eneg:
            exp = -exp
    if mant >= 2 ** 53:
        return False, 0.0
    k = frac - exp
    if mant == 0:
        v = 0.0
    elif 0 <= k <= 22:
        v = mant / _POW10[k]
    elif -22 <= k < 0:
        v = mant * _POW10[-k]
    else:
        return False, 0.0
    return True, -v if neg else v


@njit(cache=True, nogil=True)
def _bytes_equal(buf, s, e, word):
    if e - s != len(word):
        return False
    for k in range(len(word)):
        if buf[s + k] != word[k]:
            return False
    return True


@njit(cache=True, nogil=True)
def scan_frames(buf, starts, ends):
    """Scan every frame ``buf[starts[i]:ends[i]]``. Returns ``ok`` (False: the batch is not
    handled, the index of the first frame that is not is in ``kind[0]``) and per frame: ``kind``
    (skipped / trade / aggTrade), ``ts``, ``tid``, ``price``, ``qty``, ``m``, ``sym`` (index into
    the distinct symbols ``sym_start``/``sym_end``), ``xcode`` (0 no ``X``, 1 ``MARKET``,
    2 other, spelled by ``x_start``/``x_end``), and for skipped frames the event type's span in
    ``x_start``/``x_end``; then the number of distinct symbols."""
    n = len(starts)
    codes = np.zeros((3, n), dtype=np.int8)
    kind, side, xcode = codes[0], codes[1], codes[2]
    ints = np.zeros((5, n), dtype=np.int64)
    ts, tid, sym, x_start, x_end = ints[0], ints[1], ints[2], ints[3], ints[4]
    price, qty = np.zeros(n, dtype=np.float64), np.zeros(n, dtype=np.float64)
    sym_spans = np.zeros((2, _MAX_SYMBOLS), dtype=np.int64)
    sym_start, sym_end = sym_spans[0], sym_spans[1]
    sym_hash = np.zeros(_MAX_SYMBOLS, dtype=np.uint64)
    n_sym = 0
    slots = np.zeros((2, _N_KEYS, 3), dtype=np.int64)
    if not _plain_bytes(buf):
        return False, kind, ts, tid, price, qty, side, sym, xcode, x_start, x_end, \
            sym_start, sym_end, n_sym
    for r in range(n):
        ls, le = starts[r], ends[r]
        # classify by the first '"e":"' of the text, as the frame-by-frame path does
        k = -1
        for j in range(ls, le - 4):
            if (buf[j] == 34 and buf[j + 1] == 101 and buf[j + 2] == 34 and buf[j + 3] == 58
                    and buf[j + 4] == 34):
                k = j + 5
                break
        if k < 0:
            kind[0] = r
            return False, kind, ts, tid, price, qty, side, sym, xcode, x_start, x_end, \
                sym_start, sym_end, n_sym
        q = k
        while q < le and buf[q] != 34:
            q += 1
        if q >= le:
            kind[0] = r
            return False, kind, ts, tid, price, qty, side, sym, xcode, x_start, x_end, \
                sym_start, sym_end, n_sym
        if _bytes_equal(buf, k, q, _B_TRADE):
            want = KIND_TRADE
        elif _bytes_equal(buf, k, q, _B_AGG):
            want = KIND_AGG
        else:
            kind[r] = KIND_SKIPPED
            x_start[r], x_end[r] = k, q
            continue
        # receive-time prefix: "<digits...> <json>"
        body = ls
        if buf[ls] != 123 and 48 <= buf[ls] <= 57:
            sp = ls
            while sp < le and buf[sp] != 32:
                sp += 1
            if sp < le:
                body = sp + 1
        body = _ws(buf, body, le)
        slots[:] = 0
        stop = _scan_object(buf, body, le, slots)
        good = stop >= 0 and _ws(buf, stop, le) == le
        d = 0
        if good and slots[0, _K_DATA, 0] != 0:  # envelope: data must be an object, with stream
            good = slots[0, _K_DATA, 0] == _V_OBJ and slots[0, _K_STREAM, 0] != 0
            d = 1
        if good:
            e_t, e_s, e_e = slots[d, _K_E, 0], slots[d, _K_E, 1], slots[d, _K_E, 2]
            good = e_t == _V_STR and _bytes_equal(buf, e_s, e_e, _B_TRADE if want == KIND_TRADE
                                                   else _B_AGG)
        id_slot = _K_T_ID if want == KIND_TRADE else _K_A
        if good:
            good = (slots[d, _K_TIME, 0] == _V_NUM and slots[d, id_slot, 0] == _V_NUM
                    and slots[d, _K_P, 0] == _V_STR and slots[d, _K_Q, 0] == _V_STR
                    and slots[d, _K_S, 0] == _V_STR
                    and slots[d, _K_S, 2] > slots[d, _K_S, 1]
                    and (slots[d, _K_M, 0] == _V_TRUE or slots[d, _K_M, 0] == _V_FALSE))
        if good:
            ok1, v_ts = _parse_int(buf, slots[d, _K_TIME, 1], slots[d, _K_TIME, 2])
            ok2, v_id = _parse_int(buf, slots[d, id_slot, 1], slots[d, id_slot, 2])
            ok3, v_p = _parse_decimal(buf, slots[d, _K_P, 1], slots[d, _K_P, 2])
            ok4, v_q = _parse_decimal(buf, slots[d, _K_Q, 1], slots[d, _K_Q, 2])
            good = ok1 and ok2 and ok3 and ok4
            ts[r], tid[r], price[r], qty[r] = v_ts, v_id, v_p, v_q
        if good and want == KIND_TRADE:
            x_t = slots[d, _K_X, 0]
            if x_t == _V_STR:
                x_start[r], x_end[r] = slots[d, _K_X, 1], slots[d, _K_X, 2]
                xcode[r] = 1 if _bytes_equal(buf, x_start[r], x_end[r], _B_MARKET) else 2
            elif x_t != 0:  # X present but not a string
                good = False
        if not good:
            kind[0] = r
            return False, kind, ts, tid, price, qty, side, sym, xcode, x_start, x_end, \
                sym_start, sym_end, n_sym
        kind[r] = want
        side[r] = 1 if slots[d, _K_M, 0] == _V_TRUE else 0
        # intern the symbol
        s0, s1 = slots[d, _K_S, 1], slots[d, _K_S, 2]
        h = np.uint64(14695981039346656037)
        for j in range(s0, s1):
            h = (h ^ np.uint64(buf[j])) * np.uint64(1099511628211)
        found = -1
        for u in range(n_sym):
            if sym_hash[u] == h and sym_end[u] - sym_start[u] == s1 - s0:
                same = True
                for j in range(s1 - s0):
                    if buf[sym_start[u] + j] != buf[s0 + j]:
                        same = False
                        break
                if same:
                    found = u
                    break
        if found < 0:
            if n_sym == _MAX_SYMBOLS:
                kind[0] = r
                return False, kind, ts, tid, price, qty, side, sym, xcode, x_start, x_end, \
                    sym_start, sym_end, n_sym
            sym_start[n_sym], sym_end[n_sym], sym_hash[n_sym] = s0, s1, h
            found = n_sym
            n_sym += 1
        sym[r] = found
    return True, kind, ts, tid, price, qty, side, sym, xcode, x_start, x_end, \
        sym_start, sym_end, n_sym


def warm_up() -> None:
    """Compile the byte scanner now (or load it from numba's cache in ``__pycache__``).

    Compiling takes seconds (about 6-17 s on 2 shared cores) the first time in an environment and
    loading the cached machine code about 1 s in each new process; both hold the GIL. The first
    batch of 8,192 frames or more (the only ones the scanner decodes) would pay it; a file loader
    calls this first (e.g. before forking workers, which then inherit the compiled scanner).
    """
    empty = np.frombuffer(b"", dtype=np.uint8)  # read-only, like the buffers decoded
    scan_frames(empty, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))


def join_frames(lines: list | tuple) -> tuple[bytes, np.ndarray, np.ndarray] | None:
    """The frames joined by newlines and each frame's [start, end) byte offsets; None when the
    frames mix str and bytes or contain a newline themselves."""
    try:
        if type(lines[0]) is str:
            text = "\n".join(lines).encode()
        else:
            text = b"\n".join(lines)
    except (TypeError, UnicodeEncodeError):
        return None
    buf = np.frombuffer(text, dtype=np.uint8)
    nl = np.flatnonzero(buf == 10)
    if len(nl) != len(lines) - 1:
        return None
    starts = np.empty(len(lines), dtype=np.int64)
    starts[0] = 0
    starts[1:] = nl + 1
    ends = np.empty(len(lines), dtype=np.int64)
    ends[:-1] = nl
    ends[-1] = len(buf)
    return text, starts, ends
