"""Work-around for PySide6 6.12 on Python 3.11: it drops references to ``True`` and ``None``.

Measured here (PySide6-Essentials 6.12.0, CPython 3.11.7): every signal emission with a Python
slot takes one reference from ``True`` and every ``processEvents`` pass takes one from
``None``, without ever having added them. On Python 3.12+ these singletons are immortal and
nothing happens; on 3.11 their counts reach zero after a few hundred taps and the process
aborts with "Fatal Python error: bool_dealloc" (or "none_dealloc") — the cashier app would die
in the middle of lunch. ``tests/ui/test_refcount_guard.py`` shows the leak and the cure.

The cure is what Python 3.12 does itself: make the singletons effectively immortal by giving
them a huge reference count once, before Qt starts. Those objects are never freed anyway, so
the extra count costs nothing. Remove this module once the project pins a PySide6 without the
bug or moves to Python 3.12+.
"""

from __future__ import annotations

import ctypes
import sys

EXTRA = 1 << 40  # ~10^12 releases: centuries of taps


def install() -> bool:
    """Idempotent; returns True when it changed anything (Python < 3.12 only)."""
    if sys.version_info >= (3, 12) or getattr(install, "done", False):
        return False
    for singleton in (None, True, False):
        # ob_refcnt is the first field of every CPython object (non-debug builds).
        ctypes.c_ssize_t.from_address(id(singleton)).value += EXTRA
    install.done = True  # type: ignore[attr-defined]
    return True
