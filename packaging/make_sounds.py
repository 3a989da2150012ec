#!/usr/bin/env python3
"""Make the till's three answer sounds (``terminal/ui/sounds/*.wav``) from plain arithmetic.

The sounds are made for the project (no licence questions, no binary of unknown origin): sine
tones with a short fade in and out so they do not click, 16-bit mono at 22,050 Hz, each well
under half a second so the next student's answer never waits for the last one's sound.

- approved:   two rising tones (a bright "ding-dong" upwards), the sound of "go ahead";
- refused:    two low, falling tones with a rough edge (a third harmonic), "stop";
- restricted: three short, even mid-high pulses, so a cashier hears "not this item" apart
  from "no money" without looking.

Run it again after changing a recipe: ``python packaging/make_sounds.py`` (the files it writes
are committed; the test suite checks they match this script byte for byte).
"""

from __future__ import annotations

import math
import struct
import sys
import wave
from pathlib import Path

RATE = 22_050
PEAK = 0.6 * 32767  # head-room: the till's volume setting scales down from here, never up
FADE_S = 0.008

# (frequency Hz, seconds, third-harmonic share) per tone, then a pause in seconds after it
RECIPES: dict[str, list[tuple[float, float, float, float]]] = {
    "approved": [(880.0, 0.11, 0.0, 0.02), (1318.5, 0.18, 0.0, 0.0)],
    "refused": [(311.1, 0.16, 0.35, 0.04), (233.1, 0.24, 0.35, 0.0)],
    "restricted": [(659.3, 0.07, 0.15, 0.05), (659.3, 0.07, 0.15, 0.05),
                   (659.3, 0.07, 0.15, 0.0)],
}
TARGET = Path(__file__).resolve().parents[1] / "terminal" / "ui" / "sounds"


def tone(frequency: float, seconds: float, harmonic: float) -> list[float]:
    count = int(RATE * seconds)
    fade = max(1, int(RATE * FADE_S))
    samples = []
    for i in range(count):
        t = i / RATE
        value = math.sin(2 * math.pi * frequency * t)
        value += harmonic * math.sin(2 * math.pi * 3 * frequency * t)
        value /= 1 + harmonic
        envelope = min(1.0, i / fade, (count - 1 - i) / fade)
        samples.append(value * envelope)
    return samples


def render(recipe: list[tuple[float, float, float, float]]) -> bytes:
    samples: list[float] = []
    for frequency, seconds, harmonic, pause in recipe:
        samples += tone(frequency, seconds, harmonic)
        samples += [0.0] * int(RATE * pause)
    return b"".join(struct.pack("<h", round(s * PEAK)) for s in samples)


def wav_bytes(frames: bytes) -> bytes:
    """A WAV file in memory (the header is deterministic, so the output is too)."""
    import io

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(frames)
    return buffer.getvalue()


def build() -> dict[str, bytes]:
    return {name: wav_bytes(render(recipe)) for name, recipe in RECIPES.items()}


def main(argv: list[str]) -> int:
    target = Path(argv[1]) if len(argv) > 1 else TARGET
    target.mkdir(parents=True, exist_ok=True)
    for name, data in build().items():
        path = target / f"{name}.wav"
        path.write_bytes(data)
        print(f"{path}: {len(data)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
