"""Simulate a parent's top-up: send the payment gateway's signed webhook to a sync server.

    .venv/bin/python packaging/topup.py --server http://127.0.0.1:8080 \\
        --secret-file var/demo/webhook-secret --wallet wal_... --amount 20.00 --currency SAR

This is the real path a payment takes (spec "Top-ups"): a ``payment.completed`` event, signed
with HMAC-SHA256 over ``"<X-Timestamp>.<raw body>"`` with the server's webhook secret, posted to
``/api/v1/webhooks/payments``, where the ledger credits the wallet. The demo launcher sets the
secret and prints this command ready to paste.

Each run is a new gateway event. ``--reference`` names the payment: the same reference sent
again is not credited twice (the server answers ``already_credited`` and moves no money), as
when a gateway repeats itself. The secret is read from a file, never a flag (flags show in
``ps`` and shell history). Exit 0 when the server accepted the event, 1 with one line on stderr
otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import secrets
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from shared.money import format_minor, parse_major


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", required=True, help="the sync server, http://host:port")
    parser.add_argument("--secret-file", required=True, type=Path,
                        help="file holding the webhook secret (POS_WEBHOOK_SECRET)")
    parser.add_argument("--wallet", required=True, help="wallet ID (wal_...)")
    parser.add_argument("--amount", required=True, help="in major units, e.g. 20.00")
    parser.add_argument("--currency", default="SAR", help="the school's currency (default SAR)")
    parser.add_argument("--reference", help="the gateway's payment ID (default: a new one)")
    parser.add_argument("--json", action="store_true", help="print the server's answer")
    args = parser.parse_args(argv)
    try:
        amount = parse_major(args.amount, args.currency)
        secret = args.secret_file.read_text().strip()
    except (ValueError, OSError) as exc:
        return _fail(str(exc))
    if amount <= 0:
        return _fail("the amount must be more than zero")
    if not secret:
        return _fail(f"{args.secret_file} is empty")
    reference = args.reference or f"demo-pay-{secrets.token_hex(6)}"
    event = {"event_id": f"evt_{secrets.token_hex(12)}", "event_type": "payment.completed",
             "reference": reference, "wallet_id": args.wallet, "amount": amount,
             "currency": args.currency,
             "created_at": datetime.now(UTC).isoformat(timespec="milliseconds")}
    body = json.dumps(event).encode()
    stamp = str(int(time.time()))
    try:
        answer = httpx.post(f"{args.server.rstrip('/')}/api/v1/webhooks/payments", content=body,
                            headers={"Content-Type": "application/json", "X-Timestamp": stamp,
                                     "X-Signature": signature(secret, stamp, body)},
                            timeout=10)
    except httpx.TransportError as exc:
        return _fail(f"no answer from {args.server}: {exc}")
    try:
        doc = answer.json()
    except ValueError:
        doc = {"detail": answer.text[:200]}
    if answer.status_code >= 400:
        return _fail(f"the server refused the top-up ({answer.status_code}): "
                     f"{doc.get('title', '')}: {doc.get('detail') or ''}".strip(': '))
    doc["reference"] = reference
    if args.json:
        print(json.dumps(doc))
    elif doc.get("status") == "credited":
        print(f"credited {format_minor(amount, args.currency)} to {args.wallet} "
              f"(reference {reference}); balance now "
              f"{format_minor(doc['balance_after'], args.currency)}")
    elif doc.get("status") == "held_for_review":
        print(f"held for review ({doc.get('reason')}): {doc.get('detail') or ''}; "
              "an admin settles it in the console")
    else:
        print(f"no money moved: reference {reference} was already credited "
              f"({doc.get('status')})")
    return 0


def _fail(message: str) -> int:
    print(f"topup: {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
