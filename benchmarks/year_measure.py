"""The ``measure`` step of year.py: console pages, CSV, audit and snapshot on the seeded year.

Pages are requested through HTTP from ``pos-server serve`` running as its own process (one
worker), logged in as the school's admin, one request at a time. Each page's baseline is its
main query as a ``count(*)`` through the plain driver (sqlite3 / asyncpg) in the same run:
what the database alone needs to find the rows the page is about, so a page far above its
baseline spends its time elsewhere (rendering, extra queries), and a page near it needs a
better plan, not less Python.

Report pages are found at run time from the reports index (every /admin/reports/... link), so
pages added after this file was written are measured too; their baseline is chosen by the
report's kind (see :func:`report_baseline`).
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx

from benchmarks._common import free_port
from shared.health import wait_until_healthy

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
REPORT_LINK = re.compile(r'href="(/admin/reports/[^"#]*)"')


@dataclass(frozen=True, slots=True)
class Page:
    label: str
    path: str
    baseline: str               # SQL with :named parameters, a count(*)
    pdf: bool = False


@dataclass(slots=True)
class Timing:
    label: str
    path: str
    status: int
    p50: float
    p95: float
    base_p50: float
    base_rows: int
    size: int


@contextmanager
def serve(db_url: str) -> Iterator[tuple[str, int]]:
    """``pos-server serve`` on the seeded database; yields its URL and process ID."""
    port = free_port()
    # Plain HTTP on the loopback: admin cookies without Secure, as the demo serves them.
    env = {**os.environ, "POS_LOG_LEVEL": "WARNING", "POS_SECURE_COOKIES": "false"}
    with open(os.environ.get("POS_BENCH_LOG") or os.devnull, "a") as log:
        proc = subprocess.Popen([sys.executable, "-m", "sync_server", "serve", "--db", db_url,
                                 "--port", str(port), "--workers", "1"],
                                stdout=log, stderr=subprocess.STDOUT, env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_healthy(url, timeout_s=120, process=proc)
            yield url, proc.pid
        finally:
            proc.terminate()
            proc.wait(timeout=30)


class Driver:
    """The plain driver on the same database, for baselines and for picking IDs to visit."""

    def __init__(self, db_url: str) -> None:
        self.kind = "sqlite" if db_url.startswith("sqlite") else "pg"
        self.url = db_url
        self.conn: Any = None

    async def open(self) -> None:
        if self.kind == "sqlite":
            self.conn = sqlite3.connect(self.url.removeprefix("sqlite:///"))
        else:
            import asyncpg

            self.conn = await asyncpg.connect(self.url)

    async def close(self) -> None:
        if self.kind == "sqlite":
            self.conn.close()
        else:
            await self.conn.close()

    async def rows(self, sql: str, params: dict[str, Any]) -> list[Any]:
        if self.kind == "sqlite":
            return list(self.conn.execute(sql, {k: _sqlite(v) for k, v in params.items()}))
        names: list[str] = []

        def number(match: re.Match[str]) -> str:
            if match.group(1) not in names:
                names.append(match.group(1))
            return f"${names.index(match.group(1)) + 1}"

        text = re.sub(r"(?<!:):([a-z_]+)", number, sql)
        return list(await self.conn.fetch(text, *(params[n] for n in names)))

    async def timed_count(self, sql: str, params: dict[str, Any], n: int) -> tuple[float, int]:
        times, count = [], 0
        for _ in range(n):
            t0 = time.perf_counter()
            count = int((await self.rows(sql, params))[0][0])
            times.append((time.perf_counter() - t0) * 1000)
        return statistics.median(times), count


def _sqlite(value: Any) -> Any:
    """SQLite holds timestamps as naive UTC text (schema.UtcDateTime)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ")
    return value


async def facts(db: Driver, school_id: str) -> dict[str, Any]:
    """IDs and dates to visit: the busiest wallet, a sale, a payment, the last day, a month."""
    one = db.rows
    p: dict[str, Any] = {"school": school_id}
    p["wallet"] = (await one("SELECT wallet_id FROM sales WHERE school_id = :school "
                             "GROUP BY wallet_id ORDER BY count(*) DESC LIMIT 1", p))[0][0]
    p["last_day"] = (await one("SELECT max(business_day) FROM sales WHERE school_id = :school",
                               p))[0][0]
    p["ref"] = (await one("SELECT ref FROM sales WHERE school_id = :school AND business_day = "
                          ":last_day AND kind = 'sale' LIMIT 1", p))[0][0]
    p["payment"] = (await one("SELECT payment_id FROM payments WHERE school_id = :school "
                              "LIMIT 1", p))[0][0]
    name = (await one("SELECT display_name FROM wallets WHERE school_id = :school AND "
                      "display_name LIKE 'Omar %' LIMIT 1", p))
    p["name"] = (name[0][0] if name else "Omar").split(" ")[1].lower()
    ar = (await one("SELECT display_name FROM wallets WHERE school_id = :school AND "
                    "display_name LIKE 'عمر %' LIMIT 1", p))
    p["ar_name"] = (ar[0][0] if ar else "عمر").split(" ")[1]
    p["month_from"], p["month_to"] = "2025-10-01", "2025-10-31"
    p["first_day"] = (await one("SELECT min(business_day) FROM sales WHERE school_id = :school",
                                p))[0][0]
    p["jan_end"] = datetime(2026, 1, 31, 21, tzinfo=UTC)  # midnight in Riyadh
    last = datetime.strptime(p["last_day"], "%Y-%m-%d")
    p["fortnight"] = (last - timedelta(days=13)).strftime("%Y-%m-%d")
    p["like"] = f"%{p['name']}%"
    p["ar_like"] = f"%{p['ar_name']}%"
    return p


async def holdings(db: Driver, school_id: str) -> dict[str, int]:
    """What the database holds, counted by the plain driver (not what the seeder believes)."""
    p = {"school": school_id}
    q = {"sales": "SELECT count(*) FROM sales WHERE school_id = :school AND kind = 'sale'",
         "voids": "SELECT count(*) FROM sales WHERE school_id = :school AND kind = 'void'",
         "rejected": "SELECT count(*) FROM sales WHERE school_id = :school "
                     "AND status = 'rejected'",
         "open exceptions": "SELECT count(*) FROM sales WHERE school_id = :school "
                            "AND needs_review AND reviewed_at IS NULL",
         "days": "SELECT count(DISTINCT business_day) FROM sales WHERE school_id = :school",
         "postings": "SELECT count(*) FROM postings WHERE school_id = :school",
         "money ops": "SELECT count(*) FROM money_ops WHERE school_id = :school",
         "payment events": "SELECT count(*) FROM payment_events WHERE school_id = :school",
         "wallets": "SELECT count(*) FROM wallets WHERE school_id = :school"}
    return {k: int((await db.rows(sql, p))[0][0]) for k, sql in q.items()}


async def find_year(db_url: str) -> str | None:
    """The year's school in a database seeded by year.py (for a seeding still under way)."""
    db = Driver(db_url)
    try:
        await db.open()
    except Exception:
        return None
    try:
        row = await db.rows("SELECT school_id FROM schools WHERE name = :name",
                            {"name": "Year Bench School"})
        return str(row[0][0]) if row else None
    finally:
        await db.close()


SALES = "SELECT count(*) FROM sales WHERE school_id = :school"
# The breakdowns and balances at a date read the rollups (0011): their baselines count those.
ITEM_DAYS = "SELECT count(*) FROM sales_item_days WHERE school_id = :school"
BY_NAME = ("SELECT count(*) FROM sales JOIN wallets w ON w.wallet_id = sales.wallet_id "
           "WHERE sales.school_id = :school AND (lower(w.display_name) LIKE {0} "
           "OR lower(w.student_number) LIKE {0})")


def pages(p: dict[str, Any]) -> list[Page]:
    w, month = p["wallet"], f"from={p['month_from']}&to={p['month_to']}"
    return [
        Page("dashboard", "/admin/", SALES + " AND business_day >= :fortnight"),
        Page("sales list", "/admin/sales", SALES),
        Page("sales: search by student (Latin)", f"/admin/sales?student={p['name']}",
             BY_NAME.format(":like")),
        Page("sales: search by student (Arabic)", f"/admin/sales?student={quote(p['ar_name'])}",
             BY_NAME.format(":ar_like")),
        Page("sales: one month", f"/admin/sales?{month}",
             SALES + " AND business_day BETWEEN :month_from AND :month_to"),
        Page("sales: flagged", "/admin/sales?flag=any",
             SALES + " AND CAST(flags AS TEXT) NOT IN ('[]', '')"),
        Page("sales: voided", "/admin/sales?status=voided",
             "SELECT count(*) FROM sale_refunds WHERE school_id = :school AND kind = 'void'"),
        Page("sale page", f"/admin/sales/{p['ref']}", SALES + " AND ref = :ref"),
        Page("exceptions queue", "/admin/exceptions",
             SALES + " AND needs_review AND reviewed_at IS NULL"),
        Page("wallets list", "/admin/wallets",
             "SELECT count(*) FROM wallets WHERE school_id = :school"),
        Page("wallets: search", f"/admin/wallets?q={p['name']}",
             "SELECT count(*) FROM wallets WHERE school_id = :school "
             "AND lower(display_name) LIKE :like"),
        Page("wallet page", f"/admin/wallets/{w}",
             SALES + " AND wallet_id = :wallet"),
        Page("wallet statement", f"/admin/wallets/{w}/statement",
             "SELECT count(*) FROM postings WHERE from_account = :wallet OR to_account = :wallet"),
        Page("wallet statement PDF", f"/admin/wallets/{w}/statement.pdf?month=2025-10",
             "SELECT count(*) FROM postings WHERE from_account = :wallet OR to_account = :wallet",
             pdf=True),
        Page("bracelets", "/admin/bracelets",
             "SELECT count(*) FROM credentials WHERE school_id = :school"),
        Page("devices", "/admin/devices",
             "SELECT count(*) FROM devices WHERE school_id = :school"),
        Page("products", "/admin/products",
             "SELECT count(*) FROM products WHERE school_id = :school"),
        Page("cashiers", "/admin/cashiers",
             "SELECT count(*) FROM cashiers WHERE school_id = :school"),
        Page("payments", "/admin/payments",
             "SELECT count(*) FROM payments WHERE school_id = :school"),
        Page("payment page", f"/admin/payments/{p['payment']}",
             "SELECT count(*) FROM payment_events WHERE payment_id = :payment"),
        Page("audit log", "/admin/audit",
             "SELECT count(*) FROM audit_log WHERE school_id = :school"),
        Page("settings", "/admin/settings",
             "SELECT count(*) FROM schools WHERE school_id = :school"),
        # Issue 16's pages: staff, imports, bracelet inventory, webhooks, year end.
        Page("users", "/admin/users",
             "SELECT count(*) FROM admin_users WHERE school_id = :school"),
        Page("imports", "/admin/imports",
             "SELECT count(*) FROM roster_imports WHERE school_id = :school"),
        Page("bracelets: assigned", "/admin/bracelets?state=assigned",
             "SELECT count(*) FROM bracelets WHERE school_id = :school AND state = 'assigned'"),
        Page("bracelets: in stock", "/admin/bracelets/stock",
             "SELECT count(*) FROM bracelets WHERE school_id = :school"),
        Page("bracelets: hand out", "/admin/bracelets/issue",
             "SELECT count(*) FROM bracelets WHERE school_id = :school"),
        Page("webhooks", "/admin/webhooks",
             "SELECT count(*) FROM webhook_endpoints WHERE school_id = :school"),
        Page("webhook deliveries", "/admin/webhooks/deliveries",
             "SELECT count(*) FROM webhook_deliveries WHERE school_id = :school"),
        Page("year-end preview", "/admin/year-end",
             "SELECT count(*) FROM wallets WHERE school_id = :school"),
        Page("reports index", "/admin/reports",
             "SELECT count(*) FROM schools WHERE school_id = :school"),
        Page("Z report (a day)", f"/admin/reports/z?day={p['last_day']}",
             SALES + " AND business_day = :last_day"),
        Page("Z report CSV", f"/admin/reports/z.csv?day={p['last_day']}",
             SALES + " AND business_day = :last_day"),
        Page("Z report PDF", f"/admin/reports/z.pdf?day={p['last_day']}",
             SALES + " AND business_day = :last_day", pdf=True),
        Page("sales by product per day (a month)",
             f"/admin/reports/sales?period=custom&{month}&by=product&per=day",
             ITEM_DAYS + " AND business_day BETWEEN :month_from AND :month_to"),
        Page("sales by category per hour (a month)",
             f"/admin/reports/sales?period=custom&{month}&by=category&per=hour",
             ITEM_DAYS + " AND business_day BETWEEN :month_from AND :month_to"),
        Page("sales by category per day (the year)",
             f"/admin/reports/sales?period=custom&from={p['first_day']}&to={p['last_day']}"
             "&by=category&per=day", ITEM_DAYS),
        Page("money flows (this month: every top-up)", "/admin/reports/money?period=this_month",
             "SELECT count(*) FROM money_ops WHERE school_id = :school"),
        Page("balances now", "/admin/reports/balances",
             "SELECT count(*) FROM wallets WHERE school_id = :school"),
        Page("balances at a month end", "/admin/reports/balances?day=2026-01-31",
             "SELECT count(*) FROM wallet_day_nets WHERE school_id = :school "
             "AND day <= '2026-01-31'"),
        Page("negative balances", "/admin/reports/negatives",
             "SELECT count(*) FROM wallets WHERE school_id = :school AND balance < 0"),
    ]



def report_baseline(path: str) -> str:
    """A report's main rows, by what the report is about."""
    if "money" in path or "topup" in path or "refund" in path:
        return ("SELECT count(*) FROM money_ops WHERE school_id = :school")
    if "negative" in path:
        return "SELECT count(*) FROM wallets WHERE school_id = :school AND balance < 0"
    if "balance" in path:
        return ("SELECT count(*) FROM postings WHERE school_id = :school")
    if "/z" in path:
        return SALES + " AND business_day = :last_day"
    return SALES + " AND business_day BETWEEN :month_from AND :month_to"


async def login(client: httpx.AsyncClient, email: str, password: str) -> None:
    page = await client.get("/admin/login")
    token = CSRF.search(page.text)
    assert token, "the login page has no csrf_token"
    resp = await client.post("/admin/login", data={
        "email": email, "password": password, "csrf_token": token.group(1), "next": ""})
    assert resp.status_code == 303, (resp.status_code, resp.text[:300])


async def report_pages(client: httpx.AsyncClient, p: dict[str, Any]) -> list[Page]:
    """Every /admin/reports/... link of the reports index and of each report it links to
    (presets, views), one page per distinct path; month presets pointed at a seeded month."""
    index = await client.get("/admin/reports")
    if index.status_code != 200:
        return []
    seen: dict[str, Page] = {}
    for html in [index.text] + [
            (await client.get(link)).text for link in _links(index.text)[:12]]:
        for link in _links(html):
            base = link.split("?")[0]
            if base.endswith((".csv", ".pdf")) and base in {x.split("?")[0] for x in seen}:
                continue
            key = base + ("?" + link.split("?")[1].split("&")[0] if "?" in link else "")
            if key not in seen and len(seen) < 40:
                seen[key] = Page(f"report {key.removeprefix('/admin/reports')}", link,
                                 report_baseline(link), pdf=base.endswith(".pdf"))
    return list(seen.values())


def _links(html: str) -> list[str]:
    return [link.replace("&amp;", "&") for link in REPORT_LINK.findall(html)
            if not link.endswith(".csv") and "csv" not in link]


async def time_page(client: httpx.AsyncClient, db: Driver, page: Page, p: dict[str, Any],
                    n: int) -> Timing:
    first = await client.get(page.path)  # warm: caches, the plan, the connection
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        resp = await client.get(page.path)
        await resp.aread()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    base, rows = await db.timed_count(page.baseline, p, n)
    return Timing(page.label, page.path, first.status_code, statistics.median(times),
                  times[min(len(times), round(0.95 * len(times))) - 1], base, rows,
                  len(first.content))


class RssSampler:
    """The server process's resident set, read from /proc every 20 ms while running."""

    def __init__(self, pid: int) -> None:
        self.pid, self.samples, self._stop = pid, [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss_mb(self) -> float:
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.samples.append(self.rss_mb())

    def __enter__(self) -> RssSampler:
        self.start = self.rss_mb()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


CSV_RUNS = 3


async def csv_month(client: httpx.AsyncClient, pid: int, p: dict[str, Any]) -> dict[str, Any]:
    """The month's export CSV_RUNS times, as a browser asks for it (httpx, like browsers,
    accepts gzip); the rate is the median run's, every run is printed, the RSS growth is the
    largest over all runs."""
    path = f"/admin/sales.csv?from={p['month_from']}&to={p['month_to']}"
    runs = []
    with RssSampler(pid) as rss:
        for _ in range(CSV_RUNS):
            t0 = time.perf_counter()
            lines = size = 0
            async with client.stream("GET", path) as resp:
                assert resp.status_code == 200, resp.status_code
                async for chunk in resp.aiter_bytes():
                    lines += chunk.count(b"\n")
                    size += len(chunk)
                wire = resp.num_bytes_downloaded
                encoding = resp.headers.get("Content-Encoding", "identity")
            seconds = time.perf_counter() - t0
            runs.append({"rows": lines - 1, "seconds": seconds, "rate": (lines - 1) / seconds})
    middle = sorted(runs, key=lambda r: r["rate"])[len(runs) // 2]
    peak = max(rss.samples or [rss.start])
    return {**middle, "mb": size / 1e6, "wire_mb": wire / 1e6, "encoding": encoding,
            "runs": [round(r["rate"]) for r in runs],
            "rss_start": rss.start, "rss_peak": peak, "rss_growth": peak - rss.start}


async def snapshot(client: httpx.AsyncClient, db_url: str, school_id: str) -> dict[str, Any]:
    """A new till's first, full snapshot: enroll with a fresh code, then GET it (twice: the
    first and a second new till, the figure is the slower)."""
    times, wallets = [], 0
    for _ in range(2):
        out = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "sync_server", "enrollment-code", "--db",
                             db_url, "--school", school_id, "--json"],
            capture_output=True, text=True, check=True)
        code = _code(out.stdout)
        enrolled = await client.post("/api/v1/devices/enroll", json={
            "enrollment_code": code, "name": "year bench new till"})
        assert enrolled.status_code in (200, 201), enrolled.text
        token = enrolled.json()["device_token"]
        t0 = time.perf_counter()
        resp = await client.get("/api/v1/sync/snapshot",
                                headers={"Authorization": f"Bearer {token}"})
        body = resp.json()
        times.append(time.perf_counter() - t0)
        assert resp.status_code == 200, resp.text[:300]
        wallets = len(body.get("wallets", []))
    return {"seconds": max(times), "wallets": wallets}


def _code(stdout: str) -> str:
    import json

    doc = json.loads(stdout)
    return str(doc.get("enrollment_code") or doc.get("code"))


async def measure(db_url: str, school_id: str, email: str, password: str,
                  requests: int) -> dict[str, Any]:
    db = Driver(db_url)
    await db.open()
    try:
        p = await facts(db, school_id)
        held = await holdings(db, school_id)
        print("the database holds: " + ", ".join(f"{v:,} {k}" for k, v in held.items()),
              flush=True)
        with serve(db_url) as (url, pid):
            async with httpx.AsyncClient(base_url=url, timeout=300) as client:
                await login(client, email, password)
                todo = pages(p)
                known = {page.path.split("?")[0] for page in todo}
                todo += [page for page in await report_pages(client, p)
                         if page.path.split("?")[0] not in known]
                timings = []
                for page in todo:
                    timings.append(t := await time_page(client, db, page, p, requests))
                    print(f"  {t.label}: HTTP {t.status}, p95 {t.p95:.0f} ms", flush=True)
                csv = await csv_month(client, pid, p)
                csv["base_ms"], csv["base_rows"] = await db.timed_count(
                    SALES + " AND business_day BETWEEN :month_from AND :month_to", p, 3)
                snap = await snapshot(client, db_url, school_id)
    finally:
        await db.close()
    return {"pages": timings, "csv": csv, "snapshot": snap, "facts": p}


def run(db_url: str, school_id: str, email: str, password: str,
        requests: int) -> dict[str, Any]:
    return asyncio.run(measure(db_url, school_id, email, password, requests))
