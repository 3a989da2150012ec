"""The answer sounds: approved, refused, restricted, at the terminal's volume, or none when muted.

No Qt here. ``QSoundEffect`` lives in PySide6-Addons (hundreds of MB more than the Essentials
wheel the till ships with) and a Python audio library would bring a native extension to
build and keep working; ALSA's own ``aplay`` (Debian ``alsa-utils``, about 1 MB, already how
a kiosk's sound is tested) plays a WAV from its standard input in a few milliseconds. So the
player scales the samples itself (the volume setting) and pipes the WAV to ``aplay`` in a
child process; the cashier app never waits for it (docs/terminal.md, "Sounds").

A machine without ``aplay`` gets :class:`SilentPlayer` and one log line: a till must sell
whatever happens to its speaker.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import subprocess
import sys
import threading
import wave
from array import array
from functools import lru_cache
from pathlib import Path

from terminal.settings import DEFAULT_SOUND_MUTED, DEFAULT_SOUND_VOLUME

log = logging.getLogger(__name__)

SOUNDS = Path(__file__).resolve().parent / "sounds"
KINDS = ("approved", "refused", "restricted")
DEVICE_ENV = "POS_SOUND_DEVICE"  # an ALSA device name; "default" unless set


@lru_cache(maxsize=8)
def _wav(kind: str) -> tuple[wave._wave_params, bytes]:
    with wave.open(str(SOUNDS / f"{kind}.wav"), "rb") as source:
        return source.getparams(), source.readframes(source.getnframes())


def scaled_frames(kind: str, volume: int) -> bytes:
    """The 16-bit samples of ``kind`` multiplied by ``volume``/100 (linear, so 50 is half the
    amplitude; the recordings leave head-room, so 100 never clips)."""
    params, frames = _wav(kind)
    if params.sampwidth != 2:
        raise ValueError(f"{kind}.wav must be 16-bit")
    samples = array("h")
    samples.frombytes(frames)
    if sys.byteorder != "little":
        samples.byteswap()
    factor = max(0, min(100, volume)) / 100
    scaled = array("h", (round(s * factor) for s in samples))
    if sys.byteorder != "little":
        scaled.byteswap()
    return scaled.tobytes()


@lru_cache(maxsize=64)
def scaled_wav(kind: str, volume: int) -> bytes:
    """``kind`` at ``volume`` as a whole WAV file in memory (cached: a rush plays the same
    three sounds at the same volume all day)."""
    params, _ = _wav(kind)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(params.nchannels)
        out.setsampwidth(params.sampwidth)
        out.setframerate(params.framerate)
        out.writeframes(scaled_frames(kind, volume))
    return buffer.getvalue()


class SoundPlayer:
    """Plays an answer's sound at the configured volume; subclasses say where it goes.

    :meth:`play` returns at once and never raises: a sound is a courtesy to the cashier,
    never a reason for a sale to fail.
    """

    def __init__(self, volume: int = DEFAULT_SOUND_VOLUME,
                 muted: bool = DEFAULT_SOUND_MUTED) -> None:
        self.volume = volume
        self.muted = muted
        self.requested: list[str] = []   # every sound asked for, muted or not (tests read it)

    def configure(self, *, volume: int, muted: bool) -> None:
        self.volume = max(0, min(100, int(volume)))
        self.muted = bool(muted)

    def play(self, kind: str) -> bool:
        """Start ``kind``; ``False`` when nothing is played (muted, volume 0, unknown kind)."""
        if kind not in KINDS:
            return False
        self.requested.append(kind)
        if self.muted or self.volume <= 0:
            return False
        try:
            self._output(kind, scaled_wav(kind, self.volume))
        except Exception:
            log.exception("could not play the %s sound", kind)
            return False
        return True

    def _output(self, kind: str, wav_data: bytes) -> None:
        raise NotImplementedError

    def wait(self, timeout: float = 5.0) -> None:
        """Until the last sound finished (tests and shutdown)."""

    def close(self) -> None:
        self.wait(1.0)


class SilentPlayer(SoundPlayer):
    """No audio output on this machine: asks are counted, nothing is played."""

    def _output(self, kind: str, wav_data: bytes) -> None:
        return None


class AplayPlayer(SoundPlayer):
    """Pipes each sound to ``aplay -D <device>``. A newer answer cuts an older sound short:
    in a rush the sound must belong to the answer on screen."""

    def __init__(self, device: str = "default", *, program: str = "aplay",
                 volume: int = DEFAULT_SOUND_VOLUME, muted: bool = DEFAULT_SOUND_MUTED) -> None:
        super().__init__(volume, muted)
        self.device = device
        self.program = program
        self.played = 0           # sounds aplay finished with exit status 0
        self.failures = 0
        self._lock = threading.Lock()
        self._current: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._last_error: str | None = None

    def _output(self, kind: str, wav_data: bytes) -> None:
        with self._lock:
            previous = self._current
            if previous is not None and previous.poll() is None:
                previous.terminate()
            process = subprocess.Popen(
                [self.program, "-q", "-D", self.device, "-"], stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            self._current = process
            thread = threading.Thread(target=self._feed, args=(kind, process, wav_data),
                                      name="pos-sound", daemon=True)
            self._thread = thread
        thread.start()

    def _feed(self, kind: str, process: subprocess.Popen[bytes], wav_data: bytes) -> None:
        try:
            _, err = process.communicate(wav_data, timeout=10)
        except (subprocess.TimeoutExpired, OSError) as exc:
            process.kill()
            process.wait()
            err = str(exc).encode()
        if process.returncode == 0:
            self.played += 1
            return
        if process.returncode is not None and process.returncode < 0:
            return  # cut short by a newer sound
        self.failures += 1
        message = err.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        if message[0] != self._last_error:  # one line per new problem, not one per sale
            self._last_error = message[0]
            log.warning("the %s sound did not play on %s: %s", kind, self.device, message[0])

    def wait(self, timeout: float = 5.0) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)


def create_player(volume: int = DEFAULT_SOUND_VOLUME, muted: bool = DEFAULT_SOUND_MUTED,
                  device: str | None = None) -> SoundPlayer:
    """``aplay`` on the device named by ``POS_SOUND_DEVICE`` (or ALSA's default), or silence
    when ``aplay`` is not installed."""
    program = shutil.which("aplay")
    if program is None:
        log.warning("aplay not found (Debian package alsa-utils): the till will be silent")
        return SilentPlayer(volume, muted)
    return AplayPlayer(device or os.environ.get(DEVICE_ENV) or "default", program=program,
                       volume=volume, muted=muted)
