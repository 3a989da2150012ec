"""The SQLite writer lock: one holder across processes, and a cancelled waiter leaves no lock."""

from __future__ import annotations

import asyncio
import fcntl
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sync_server.storage.writer_lock import WriterLock

HOLDER = textwrap.dedent("""
    import asyncio, os, sys, time
    from pathlib import Path
    from sync_server.storage.writer_lock import WriterLock

    async def main(db: str, journal: str, rounds: int) -> None:
        lock = WriterLock(Path(db))
        for _ in range(rounds):
            async with lock:
                with open(journal, "a") as out:
                    out.write(f"start {os.getpid()}\\n")
                time.sleep(0.003)  # inside the lock: nobody else may write meanwhile
                with open(journal, "a") as out:
                    out.write(f"end {os.getpid()}\\n")
            await asyncio.sleep(0)
        lock.close()

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
""")


def test_processes_take_turns(tmp_path: Path) -> None:
    db, journal = tmp_path / "pos.db", tmp_path / "journal.txt"
    procs = [subprocess.Popen([sys.executable, "-c", HOLDER, str(db), str(journal), "40"])
             for _ in range(3)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0]
    lines = journal.read_text().splitlines()
    assert len(lines) == 3 * 40 * 2
    for start, end in zip(lines[::2], lines[1::2], strict=True):
        assert start.startswith("start ") and end == "end " + start.removeprefix("start ")


def _held_elsewhere(path: Path) -> bool:
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops a lock we may have taken
    return False


async def test_cancelled_waiter_releases_the_file_once_it_gets_it(tmp_path: Path) -> None:
    lock = WriterLock(tmp_path / "pos.db")
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", textwrap.dedent(f"""
            import fcntl, os, sys
            fd = os.open({str(lock.path)!r}, os.O_RDWR | os.O_CREAT)
            fcntl.flock(fd, fcntl.LOCK_EX)
            print("held", flush=True)
            sys.stdin.readline()
        """), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert holder.stdin is not None and holder.stdout is not None
    try:
        assert (await holder.stdout.readline()).strip() == b"held"

        async def write() -> None:
            async with lock:
                pass

        waiter = asyncio.create_task(write())
        await asyncio.sleep(0.2)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        holder.stdin.write(b"\n")
        await holder.stdin.drain()
        assert await asyncio.wait_for(holder.wait(), timeout=10) == 0
        # The abandoned flock() returns in its thread now and must give the file back at
        # once, not keep it until this process happens to write again.
        for _ in range(50):
            if not _held_elsewhere(lock.path):
                break
            await asyncio.sleep(0.05)
        assert not _held_elsewhere(lock.path)
        await asyncio.wait_for(write(), timeout=5)  # and the local lock was released
    finally:
        if holder.returncode is None:
            holder.kill()
            await holder.wait()
        lock.close()
