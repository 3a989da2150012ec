"""Fleet: N tills of a district on one server at lunch rush, with and without event streams.

Shape: N tills, ``--tills-per-school`` (4) per school, so N/4 schools of ``--wallets`` (40)
wallets each, on PostgreSQL, served by ``pos-server serve --workers 2`` as its own processes
on a fresh database. Each simulated till (benchmarks/fleet_till.py) has its own device
(enrolled with its own code), its own seq and refs, and sells at ``--sale-interval`` seconds
on average. Meanwhile the gateway's signed webhook tops up wallets at ``--topups`` per second
across the district and school admins block bracelets through the console (session + CSRF)
at ``--blocks`` per minute.

Modes, measured in the same run one after the other on fresh databases: ``stream`` (each till
holds GET /api/v1/sync/events and pulls its delta on each event) and ``poll`` (no stream; a
till syncs after each sale and every ``--poll-interval`` seconds, the till's SYNC_INTERVAL_S),
the baseline.

Selling starts with ``--warmup`` (10) seconds that are not measured: a rush meets a server that
has been serving all morning. The warm-up's pushes are printed apart, as a cold server's.

Printed per N and mode: top-up -> new balance in the till's snapshot p50/p99 (over every till
of the school, from the webhook's 200), block -> blocked in the snapshot p99 (from the
console's answer), push acknowledgement p50/p99, sales/s applied while selling (the sales the
server received within the selling window), server RSS (arbiter + workers, peak), errors,
lost/doubled sales against the database, audit-ledger, and the load generator's own
event-loop lag (so a slow client is not blamed on the server).
Targets at 500 tills, stream mode: propagation p99 <= 2 s, push ack p99 <= 250 ms, nothing
lost or doubled, RSS <= 600 MB.

    .venv/bin/python benchmarks/fleet.py [--terminals 100,500,1000] [--duration 60]
        [--mode stream|poll|both]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import resource
import subprocess
import sys
import time
import uuid
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import database, free_port, pg_available
from benchmarks.fleet_seed import OPENING_BALANCE, School, seed_district
from benchmarks.fleet_till import Stats, Till
from shared.health import wait_until_healthy
from sync_server.api.webhooks import sign
from terminal.settings import SYNC_INTERVAL_S

SECRET = "fleet-benchmark-webhook-secret"
TOPUP_AMOUNT = 500
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
TARGETS = {"propagation_p99_s": 2.0, "push_p99_ms": 250.0, "rss_mb": 600.0}


# ------------------------------------------------------------------ the server


@contextmanager
def fleet_server(db_url: str, workers: int) -> Iterator[tuple[str, psutil.Process]]:
    port = free_port()
    env = {**os.environ, "POS_WEBHOOK_SECRET": SECRET, "POS_SECURE_COOKIES": "false"}
    with open(os.environ.get("POS_BENCH_LOG") or os.devnull, "a") as log:
        proc = subprocess.Popen([sys.executable, "-m", "sync_server", "serve", "--db", db_url,
                                 "--port", str(port), "--workers", str(workers)],
                                stdout=log, stderr=subprocess.STDOUT, env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_healthy(url, timeout_s=60, process=proc)
            yield url, psutil.Process(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=60)


def cpu_seconds(server: psutil.Process) -> float:
    """CPU time used so far by the server's processes and by this load generator: on a busy
    machine, cores used per sale says more than latencies do."""
    total = 0.0
    for p in [server, *server.children(recursive=True)]:
        try:
            times = p.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def postgres_cpu_seconds() -> float:
    """CPU time used so far by PostgreSQL (it shares the two cores with the server and the load
    generator): every postgres process, plus what the postmaster's ended children used. Only
    the live backends of the benchmark's database were counted before, and a backend that ended
    during the run took its time with it: the table printed 0.00 cores while PostgreSQL used
    0.65. On this machine the benchmark is the cluster's only user."""
    total = 0.0
    for p in psutil.process_iter(["name"]):
        try:
            if p.info["name"] == "postgres":
                times = p.cpu_times()
                total += times.user + times.system + times.children_user + times.children_system
        except psutil.Error:
            pass
    return total


def rss_mb(server: psutil.Process) -> float:
    total = 0
    for p in [server, *server.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


# ------------------------------------------------------------------ what is measured


@dataclass
class Expect:
    """One change every till of a school must come to show: a top-up's balance or a block."""

    school_id: str
    kind: str               # balance | blocked
    key: str                # wallet_id | uid
    value: Any
    started: float | None = None          # when the webhook / console answered
    seen: dict[int, float] = field(default_factory=dict)  # till -> when its pull showed it

    def latencies(self) -> list[float]:
        assert self.started is not None
        return [max(0.0, t - self.started) for t in self.seen.values()]


class Watcher:
    def __init__(self, tills_of: dict[str, list[int]]) -> None:
        self.tills_of = tills_of
        self.open: dict[tuple[str, str], list[Expect]] = {}
        self.done: list[Expect] = []
        self.all: list[Expect] = []

    def expect(self, school_id: str, kind: str, key: str, value: Any) -> Expect:
        e = Expect(school_id, kind, key, value)
        self.open.setdefault((kind, key), []).append(e)
        self.all.append(e)
        return e

    def __call__(self, school_id: str, kind: str, key: str, value: Any, till: int) -> None:
        waiting = self.open.get((kind, key))
        if not waiting:
            return
        now = time.monotonic()
        for e in list(waiting):
            if till in e.seen or (kind == "balance" and value < e.value):
                continue
            e.seen[till] = now
            if len(e.seen) == len(self.tills_of[e.school_id]):
                waiting.remove(e)
                self.done.append(e)

    def drop(self, e: Expect) -> None:
        """The change never happened (the webhook or the console refused it)."""
        self.open[(e.kind, e.key)].remove(e)
        self.all.remove(e)

    def pending(self) -> int:
        return sum(len(v) for v in self.open.values())


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


# ------------------------------------------------------------------ the gateway and the admins


async def top_ups(client: httpx.AsyncClient, district: list[School], watcher: Watcher,
                  rate: float, until: float, rng: random.Random, stats: Stats) -> int:
    """Signed webhooks at a steady rate, each sent on its own (a gateway does not wait for one
    answer before sending the next event), so a slow server does not lower the rate."""
    balances: dict[str, int] = {}
    sent: list[asyncio.Task[None]] = []

    async def one(school: School, wallet: str, e: Expect) -> None:
        body = json.dumps({
            "event_id": f"evt_{uuid.uuid4().hex}", "event_type": "payment.completed",
            "reference": f"pay_{uuid.uuid4().hex}", "wallet_id": wallet,
            "amount": TOPUP_AMOUNT, "currency": "SAR",
            "created_at": datetime.now(UTC).isoformat()}).encode()
        stamp = str(int(time.time()))
        try:
            resp = await client.post("/api/v1/webhooks/payments", content=body, headers={
                "Content-Type": "application/json", "X-Timestamp": stamp,
                "X-Signature": sign(SECRET, stamp, body)})
            if resp.status_code == 200:
                e.started = time.monotonic()
            else:
                stats.error(f"webhook {resp.status_code}")
        except httpx.HTTPError as exc:
            stats.error(f"webhook {type(exc).__name__}")
        if e.started is None:
            # Never credited (as far as we know): no till must show it. A later top-up of
            # the same wallet then expects one amount less.
            watcher.drop(e)
            for later in watcher.open.get(("balance", wallet), []):
                later.value -= TOPUP_AMOUNT
            balances[wallet] -= TOPUP_AMOUNT

    while time.monotonic() < until:
        school = rng.choice(district)
        wallet = rng.choice(school.topup_wallets)
        balances[wallet] = balances.get(wallet, OPENING_BALANCE) + TOPUP_AMOUNT
        e = watcher.expect(school.school_id, "balance", wallet, balances[wallet])
        sent.append(asyncio.create_task(one(school, wallet, e)))
        await asyncio.sleep(rng.expovariate(rate))
    await asyncio.gather(*sent)
    return len(sent)


async def admin_session(url: str, school: School) -> tuple[httpx.AsyncClient, str] | None:
    """A school admin logged in through the console's login form, with the CSRF token of the
    bracelet page they block from; None if the console would not let them in (counted)."""
    assert school.admin is not None
    client = httpx.AsyncClient(base_url=url, timeout=60)
    for _ in range(5):
        try:
            found = await _log_in(client, school)
        except httpx.HTTPError:
            found = None
        if found:
            return client, found
        await asyncio.sleep(1)  # 503 while the server is saturated: as a person would retry
    await client.aclose()
    return None


async def _log_in(client: httpx.AsyncClient, school: School) -> str | None:
    """Login form, then the bracelet page; its CSRF token, or None on any refusal."""
    assert school.admin is not None
    page = await client.get("/admin/login")
    token = CSRF.search(page.text)
    if page.status_code != 200 or not token:
        return None
    resp = await client.post("/admin/login", data={
        "email": school.admin[0], "password": school.admin[1], "csrf_token": token.group(1),
        "next": ""})
    if resp.status_code != 303:
        return None
    page = await client.get(f"/admin/bracelets/{school.block_uids[0]}")
    token = CSRF.search(page.text)
    return token.group(1) if page.status_code == 200 and token else None


async def blocks(logged_in: list[tuple[httpx.AsyncClient, str] | None],
                 admin_schools: list[School], watcher: Watcher, per_minute: float,
                 until: float, rng: random.Random, stats: Stats) -> int:
    """Admins block bracelets until ``until``; ``logged_in``: their console sessions (signed
    in during the warm-up: a login is argon2, on purpose slow)."""
    sessions = [x for x in logged_in if x is not None]
    left = [(s, list(s.block_uids)) for s, x in zip(admin_schools, logged_in, strict=True)
            if x is not None]
    for _ in range(len(admin_schools) - len(sessions)):
        stats.error("admin login")
    done = 0
    try:
        while time.monotonic() < until and any(uids for _, uids in left):
            await asyncio.sleep(rng.uniform(0.5, 1.5) * 60 / per_minute)
            if time.monotonic() >= until:
                break
            i = rng.choice([k for k, (_, uids) in enumerate(left) if uids])
            school, uids = left[i]
            uid = uids.pop()
            client, csrf = sessions[i]
            e = watcher.expect(school.school_id, "blocked", uid, True)
            try:
                resp = await client.post(f"/admin/bracelets/{uid}/block",
                                         data={"csrf_token": csrf, "reason": "lost"})
                if resp.status_code == 303:
                    e.started = time.monotonic()
                    done += 1
                else:
                    stats.error(f"block {resp.status_code}")
            except httpx.HTTPError as exc:
                stats.error(f"block {type(exc).__name__}")
            if e.started is None:
                watcher.drop(e)
    finally:
        for client, _ in sessions:
            await client.aclose()
    return done


# ------------------------------------------------------------------ one run


@dataclass
class Result:
    terminals: int
    mode: str
    schools: int
    propagation: list[float]
    block: list[float]
    push_ms: list[float]
    sales_per_s: float
    rss_peak_mb: float
    errors: dict[str, int]
    lost: int
    doubled: int
    unsent: int
    audit_ok: bool
    unseen: int
    lag_p99_ms: float
    lag_max_ms: float
    server_cores: float   # server CPU seconds per second of selling
    pg_cores: float       # PostgreSQL, the same
    client_cores: float
    pulls: int
    events: int
    topups: int
    blocks: int
    load: float           # the machine's 1-minute load average as selling ended
    cold_push_ms: list[float]  # pushes during the warm-up, not in push_ms


async def drive(url: str, server: psutil.Process, district: list[School], mode: str,
                args: argparse.Namespace,
                db_url: str) -> tuple[Stats, Watcher, dict[str, Any]]:
    rng = random.Random(1)
    stats = Stats()
    tills_of: dict[str, list[int]] = {}
    # Idle connections are dropped after 5 s, well before the server's keep-alive timeout
    # (header_timeout_seconds, 15), so a request never races the server closing its socket.
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None,
                          keepalive_expiry=5)
    client = httpx.AsyncClient(base_url=url, limits=limits,
                               timeout=httpx.Timeout(30, connect=10))
    # Streams on a client of their own: httpcore scans its pool for an idle connection on
    # every request, and a thousand open streams in the same pool would make every push and
    # pull pay for that scan.
    streams = httpx.AsyncClient(base_url=url, limits=limits)
    watcher = Watcher(tills_of)
    tills: list[Till] = []
    gate = asyncio.Semaphore(20)

    async def enroll(school: School, code: str, index: int) -> Till:
        async with gate:
            resp = await client.post("/api/v1/devices/enroll",
                                     json={"enrollment_code": code, "name": f"Till {index}"})
            resp.raise_for_status()
            # A client of its own per till, as each real till has: httpcore scans every
            # connection of a pool for an idle one on each request, and with all tills in one
            # pool that scan was 60 % of the load generator's CPU at 200 tills (py-spy).
            own = httpx.AsyncClient(base_url=url, limits=limits,
                                    timeout=httpx.Timeout(30, connect=10))
            till = Till(index, school, resp.json()["device_token"], own, streams, stats,
                        watcher, random.Random(index))
            await till.pull()  # the first, full snapshot: before the measured window
            return till

    jobs: list[Coroutine[Any, Any, Till]] = []
    for school in district:
        for code in school.codes:
            tills_of.setdefault(school.school_id, []).append(len(jobs))
            jobs.append(enroll(school, code, len(jobs)))
    tills = list(await asyncio.gather(*jobs))
    stats.pulls = 0

    tasks: list[asyncio.Task[Any]] = []
    poll = args.poll_interval if mode == "poll" else None
    for till in tills:
        tasks.append(asyncio.create_task(till.syncing(poll)))
        if mode == "stream":
            tasks.append(asyncio.create_task(till.streaming()))
    if mode == "stream":
        deadline = time.monotonic() + 120
        # A condition over a thousand tasks: polled, since no single one could signal it.
        while stats.stream_connects < len(tills) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.2)

    samples: dict[str, list[float]] = {"rss": [], "lag": []}

    async def sample() -> None:
        while True:
            samples["rss"].append(rss_mb(server))
            for _ in range(10):
                before = time.monotonic()
                await asyncio.sleep(0.05)
                samples["lag"].append((time.monotonic() - before - 0.05) * 1000)

    tasks.append(asyncio.create_task(sample()))
    # Selling starts with a warm-up that is not measured: a rush meets a server that has been
    # serving all morning, whose pooled connections and PostgreSQL backends have prepared and
    # planned their statements. Its pushes are printed apart ("cold"), so a restart at rush
    # hour is still seen.
    until = time.monotonic() + args.warmup + args.duration
    sellers = [asyncio.create_task(t.selling(args.sale_interval, until)) for t in tills]
    admin_schools = [s for s in district if s.admin is not None]
    logins = asyncio.gather(*(admin_session(url, s) for s in admin_schools))
    await asyncio.sleep(args.warmup)
    cold = list(stats.push_ms)
    stats.push_ms.clear()
    stats.pulls = stats.events = 0
    window_start = datetime.now(UTC)  # received_at of the sales applied while selling
    me = psutil.Process()
    def cpu_now() -> tuple[float, float, float]:
        return cpu_seconds(server), sum(me.cpu_times()[:2]), postgres_cpu_seconds()

    cpu_before = cpu_now()

    async def cpu_at_until() -> tuple[float, float, float]:
        """Read when selling stops, not when the last slow answer arrives: dividing by the
        longer time made a saturated machine look two-thirds idle."""
        await asyncio.sleep(max(0.0, until - time.monotonic()))
        return cpu_now()

    cpu_end = asyncio.create_task(cpu_at_until())
    background = [
        asyncio.create_task(top_ups(client, district, watcher, args.topups, until, rng, stats)),
        asyncio.create_task(blocks(await logins, admin_schools, watcher, args.blocks, until,
                                   rng, stats))]
    await asyncio.gather(*sellers)
    done = await asyncio.gather(*background)
    cpu_after = await cpu_end
    server_cores = (cpu_after[0] - cpu_before[0]) / args.duration
    pg_cores = (cpu_after[2] - cpu_before[2]) / args.duration
    client_cores = (cpu_after[1] - cpu_before[1]) / args.duration
    # Drain: every queue pushed, every change shown everywhere (or given up after a while).
    drain_until = time.monotonic() + max(30, 2 * args.poll_interval)
    for till in tills:
        till.wake()
    while time.monotonic() < drain_until and (  # noqa: ASYNC110 (as above)
            any(t.queue for t in tills) or watcher.pending()):
        await asyncio.sleep(0.2)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await client.aclose()
    await streams.aclose()
    for till in tills:
        await till.client.aclose()
    return stats, watcher, {"window": (window_start,
                                       window_start + timedelta(seconds=args.duration)),
                            "unsent": sum(len(t.queue) for t in tills),
                            "rss_peak": max(samples["rss"], default=0.0),
                            "lag_p99": pct(samples["lag"], 99),
                            "lag_max": max(samples["lag"], default=0.0),
                            "server_cores": server_cores, "client_cores": client_cores,
                            "pg_cores": pg_cores, "load": os.getloadavg()[0],
                            "blocks": float(done[1]), "cold_push_ms": cold}


async def on_server(db_url: str, pushed: dict[str, int],
                    window: tuple[datetime, datetime]) -> tuple[int, int, int]:
    """(lost, doubled, applied on the server while selling) for the pushed refs.

    Applied while selling counts the sales received within the selling window: dividing all
    applied sales by the time to the last background answer (webhooks and blocks still
    retrying after selling ended) had printed about half the rate the server kept up with."""
    import asyncpg

    conn = await asyncpg.connect(db_url)
    try:
        rows = await conn.fetch("SELECT ref, count(*) AS n, sum(total) AS total FROM sales "
                                "GROUP BY ref")
        in_window = await conn.fetchval(
            "SELECT count(*) FROM sales WHERE received_at >= $1 AND received_at < $2", *window)
    finally:
        await conn.close()
    found = {r["ref"]: (r["n"], r["total"]) for r in rows}
    lost = sum(1 for ref in pushed if ref not in found)
    doubled = sum(1 for n, _ in found.values() if n > 1)
    doubled += sum(1 for ref, total in pushed.items()
                   if ref in found and found[ref][1] != total)
    return lost, doubled, int(in_window)


def audit_ok(db_url: str) -> bool:
    out = subprocess.run([sys.executable, "-m", "sync_server", "audit-ledger", "--db", db_url,
                          "--json"], capture_output=True, text=True, timeout=600)
    return out.returncode == 0 and bool(json.loads(out.stdout)["ok"])


def run(terminals: int, mode: str, args: argparse.Namespace) -> Result:
    schools = max(1, terminals // args.tills_per_school)
    with database("postgresql") as db_url:
        t0 = time.monotonic()
        district = asyncio.run(seed_district(db_url, schools, args.wallets,
                                             args.tills_per_school, min(8, schools)))
        print(f"  seeded {schools} schools in {time.monotonic() - t0:.0f} s", flush=True)
        with fleet_server(db_url, args.workers) as (url, server):
            stats, watcher, extra = asyncio.run(drive(url, server, district, mode, args,
                                                          db_url))
        lost, doubled, applied = asyncio.run(on_server(db_url, stats.pushed,
                                                       extra["window"]))
        ok = audit_ok(db_url)
    propagation = [x for e in watcher.all if e.kind == "balance" and e.started is not None
                   for x in e.latencies()]
    block = [x for e in watcher.all if e.kind == "blocked" and e.started is not None
             for x in e.latencies()]
    unseen = sum(len(watcher.tills_of[e.school_id]) - len(e.seen) for e in watcher.all
                 if e.started is not None)
    return Result(terminals, mode, schools, propagation, block, stats.push_ms,
                  applied / args.duration, extra["rss_peak"], stats.errors, lost, doubled,
                  int(extra["unsent"]), ok, unseen, extra["lag_p99"], extra["lag_max"],
                  extra["server_cores"], extra["pg_cores"], extra["client_cores"],
                  stats.pulls, stats.events,
                  sum(1 for e in watcher.all if e.kind == "balance" and e.started),  # credited
                  int(extra["blocks"]), extra["load"], extra["cold_push_ms"])


HEADER = (f"{'tills':>5} {'mode':<6} {'top-up p50/p99 s':>16} {'block p99 s':>11} "
          f"{'push p50/p99 ms':>16} {'sales/s':>7} {'RSS MB':>6} {'errors':>6} "
          f"{'lost/dbl':>8} {'audit':>5} {'unseen':>6} {'pulls':>6} {'lag p99 ms':>10}")


def print_row(r: Result) -> bool:
    """One row (and its target verdicts); False when something that must hold did not."""
    errors = sum(r.errors.values())
    print(f"{r.terminals:>5} {r.mode:<6} "
          f"{pct(r.propagation, 50):>7.2f}/{pct(r.propagation, 99):<8.2f} "
          f"{pct(r.block, 99):>11.2f} "
          f"{pct(r.push_ms, 50):>7.0f}/{pct(r.push_ms, 99):<8.0f} "
          f"{r.sales_per_s:>7.1f} {r.rss_peak_mb:>6.0f} {errors:>6} "
          f"{r.lost:>4}/{r.doubled:<3} {'ok' if r.audit_ok else 'FAIL':>5} "
          f"{r.unseen:>6} {r.pulls:>6} {r.lag_p99_ms:>10.0f}", flush=True)
    print(f"{'':>12} {r.schools} schools; {r.topups} top-ups, {r.blocks} blocks, "
          f"{len(r.push_ms)} pushes, {r.events} events; {r.unsent} sales still queued at "
          f"the end of the drain; CPU while selling: server "
          f"{r.server_cores:.2f} cores, PostgreSQL {r.pg_cores:.2f}, load generator "
          f"{r.client_cores:.2f}; machine load {r.load:.1f}; client lag max "
          f"{r.lag_max_ms:.0f} ms; warm-up (cold server, not in the row): push p50/p99 "
          f"{pct(r.cold_push_ms, 50):.0f}/{pct(r.cold_push_ms, 99):.0f} ms over "
          f"{len(r.cold_push_ms)} pushes"
          + (f"; errors: {dict(sorted(r.errors.items()))}" if r.errors else ""), flush=True)
    # Sales still queued at a till are not lost (they go at its next sync), but a row whose
    # queues did not drain did not show everything arrived, so it fails too, separately.
    sound = r.lost == 0 and r.doubled == 0 and r.audit_ok
    met = sound and r.unsent == 0
    if r.terminals == 500 and r.mode == "stream":
        checks = {"propagation p99 <= 2 s":
                  pct(r.propagation, 99) <= TARGETS["propagation_p99_s"],
                  "push ack p99 <= 250 ms": pct(r.push_ms, 99) <= TARGETS["push_p99_ms"],
                  "RSS <= 600 MB": r.rss_peak_mb <= TARGETS["rss_mb"],
                  "nothing lost or doubled": sound}
        for name, ok in checks.items():
            print(f"{'':>12} target {name}: {'met' if ok else 'MISSED'}", flush=True)
            met &= ok
    return met


def print_shape(args: argparse.Namespace) -> None:
    print(f"(shape: {args.tills_per_school} tills per school, {args.wallets} wallets per "
          f"school; a sale every {args.sale_interval:g} s per till on average; "
          f"{args.topups:g} top-ups/s and {args.blocks:g} blocks/min across the district; "
          f"{args.duration:g} s of selling per row after {args.warmup:g} s of warm-up; "
          f"PostgreSQL, serve --workers "
          f"{args.workers}; poll mode syncs after each sale and every "
          f"{args.poll_interval:g} s; 'unseen' counts till x change pairs never shown; "
          f"lag is the load generator's own event-loop delay; machine: "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} now)", flush=True)


def raise_open_files() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--terminals", default="100,500,1000")
    parser.add_argument("--duration", type=float, default=60, help="seconds of selling")
    parser.add_argument("--warmup", type=float, default=10,
                        help="seconds of selling before the measured window")
    parser.add_argument("--mode", choices=("stream", "poll", "both"), default="both")
    parser.add_argument("--tills-per-school", type=int, default=4)
    parser.add_argument("--wallets", type=int, default=40, help="wallets per school")
    parser.add_argument("--sale-interval", type=float, default=8.0,
                        help="mean seconds between sales at one till")
    parser.add_argument("--topups", type=float, default=2.0, help="webhook top-ups per second")
    parser.add_argument("--blocks", type=float, default=12.0, help="bracelet blocks per minute")
    parser.add_argument("--poll-interval", type=float, default=SYNC_INTERVAL_S)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if not pg_available():
        print("fleet: needs PostgreSQL at POS_TEST_PG_URL", file=sys.stderr)
        return 2
    raise_open_files()
    modes = ["stream", "poll"] if args.mode == "both" else [args.mode]
    results, met = [], True
    for n in (int(x) for x in args.terminals.split(",")):
        for mode in modes:
            print(f"{n} tills, {mode}:", flush=True)
            results.append(run(n, mode, args))
            print(HEADER)
            met &= print_row(results[-1])
    print("\n" + HEADER)
    for r in results:
        print_row(r)
    print_shape(args)
    return 0 if met else 1

if __name__ == "__main__":
    sys.exit(main())
