"""Identifiers: random (version 4) UUIDs as text, the same on every store.

``uuid.uuid4()`` asks the kernel for 16 random bytes per identifier, and a batch of messages, or a tick of SLA
clocks, makes several identifiers per row: the system calls and the ``UUID`` object were a sixth of the SLA
tick's CPU. The bytes here come from the same source (``os.urandom``) read 4 KiB at a time, and the text is
formatted directly. A forked child starts with an empty pool, so it never hands out its parent's bytes."""

from __future__ import annotations

import os
import threading

_IDS_PER_READ = 256
_lock = threading.Lock()  # a pool read from two threads at once would give the same bytes twice
_pool = b""
_at = 0


def _reset() -> None:
    global _pool, _at
    _pool, _at = b"", 0


os.register_at_fork(after_in_child=_reset)


def new_id() -> str:
    global _pool, _at
    with _lock:
        if _at >= len(_pool):
            _pool, _at = os.urandom(16 * _IDS_PER_READ), 0
        h = _pool[_at : _at + 16].hex()
        _at += 16
    # RFC 9562 version 4: the version nibble is 4 and the variant's two high bits are 10
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


_VARIANT = {d: "89ab"[int(d, 16) & 3] for d in "0123456789abcdef"}
