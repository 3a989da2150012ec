"""PySide6 6.12.0 on Python 3.11 drops a reference to True per signal emission and to None per
processEvents, so a cashier app aborts ("bool_dealloc") after a few minutes of taps. The pin in
pyproject.toml keeps it out; this test fails if a leaking PySide6 is ever installed again."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import os, sys
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from PySide6.QtCore import QCoreApplication, QObject, Signal
app = QCoreApplication([])
class Source(QObject):
    fired = Signal(str, float)
source = Source()
seen = []
source.fired.connect(lambda uid, at: seen.append(uid))
true_before, none_before = sys.getrefcount(True), sys.getrefcount(None)
for _ in range(20000):
    source.fired.emit("04AABB", 1.0)
    app.processEvents()
print(sys.getrefcount(True) - true_before, sys.getrefcount(None) - none_before, len(seen))
"""


def test_signals_and_event_processing_keep_reference_counts() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          timeout=120, cwd=Path(__file__).parents[2])
    assert done.returncode == 0, done.stderr[-2000:]
    true_delta, none_delta, delivered = (int(x) for x in done.stdout.split())
    assert delivered == 20000
    assert abs(true_delta) < 100 and abs(none_delta) < 100  # 6.12.0: about -20000 each
