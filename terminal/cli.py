"""``pos-terminal``: the headless command line of the spec, on the same façade as the GUI.

Exit codes: 0 success; 1 error; 2 usage (or no GUI installed); 3 server not reached;
4 sale refused by a rule of the till (``restricted_item`` included); 5 device not authorized
(revoked or unknown token). Errors are one line on stderr; ``--json`` output is one JSON
document on stdout, amounts in integer minor units; the text output formats them for people
("12.50 SAR").

Imports stay lazy: ``sell`` must start fast and never load httpx or Qt.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from terminal.core import Terminal

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_REFUSED, EXIT_UNAUTHORIZED = range(6)


def default_data_dir() -> Path:
    env = os.environ.get("POS_TERMINAL_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return Path(base) / "pos-terminal"


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS,
                        help="directory of the terminal's SQLite file (env POS_TERMINAL_DIR)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print one JSON document on stdout")

    parser = argparse.ArgumentParser(
        prog="pos-terminal", parents=[common],
        description="Cafeteria POS terminal. Without a sub-command it opens the cashier app.")
    gui = parser.add_argument_group("cashier app (no sub-command)")
    gui.add_argument("--server", dest="gui_server", metavar="URL",
                     help="enroll on first start against this sync server")
    gui.add_argument("--enroll-code", dest="gui_code", metavar="CODE",
                     help="one-time enrollment code used on first start")
    gui.add_argument("--name", dest="gui_name", metavar="NAME",
                     help="terminal name used on first start, e.g. 'Counter 1'")
    gui.add_argument("--reader", dest="gui_reader", default="simulated",
                     choices=["pcsc", "nfc", "wedge", "simulated"],
                     help="bracelet reader (default: simulated, for the demo)")
    gui.add_argument("--reader-device", dest="gui_reader_device", metavar="DEVICE",
                     help="reader device (pcsc reader name, nfc path)")
    gui.add_argument("--fullscreen", dest="gui_fullscreen", action="store_true",
                     help="kiosk mode: fill the screen")
    gui.add_argument("--smoke-test", dest="gui_smoke_test", action="store_true",
                     help="start, print what the first screen showed (one JSON line: screen, "
                          "Qt platform, translations and sounds loaded) and exit; 0 when all "
                          "loaded")
    sub = parser.add_subparsers(dest="command")

    p = sub.add_parser("enroll", parents=[common], help="enroll with a one-time code")
    p.add_argument("--server", required=True, help="sync server URL, e.g. https://pos.school")
    p.add_argument("--code", required=True, help="one-time enrollment code")
    p.add_argument("--name", required=True, help="name shown to admins, e.g. 'Counter 1'")

    sub.add_parser("sync", parents=[common], help="push queued sales, pull the snapshot")

    p = sub.add_parser("sell", parents=[common],
                       help="record one sale (the till's rules apply, online or not)")
    p.add_argument("--cashier", required=True)
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--uid", help="bracelet UID (hex)")
    who.add_argument("--wallet", help="wallet ID, for a student looked up by hand")
    p.add_argument("--item", action="append", default=[], metavar="PRODUCT_ID[:QTY]")

    p = sub.add_parser("void", parents=[common], help="reverse one sale of this terminal")
    p.add_argument("--ref", required=True)
    p.add_argument("--cashier", required=True)

    sub.add_parser("status", parents=[common], help="queue, sync and device state")

    p = sub.add_parser("reader-check", parents=[common], help="try a bracelet reader")
    p.add_argument("--reader", required=True, choices=["pcsc", "nfc", "wedge", "simulated"])
    p.add_argument("--device", help="reader device (e.g. usb:072f:2200, /dev/input/event3)")
    p.add_argument("--seconds", type=float, default=30.0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    as_json: bool = getattr(args, "json", False)
    data_dir: Path = getattr(args, "data_dir", None) or default_data_dir()

    if args.command is None:
        return _open_gui(data_dir, args)
    if args.command == "reader-check":
        return _reader_check(args)

    from terminal.core import Terminal
    from terminal.errors import (
        DeviceNotAuthorized,
        SaleRefused,
        ServerUnreachable,
        TerminalError,
    )

    terminal = Terminal(data_dir)
    try:
        if args.command == "sell":
            return _sell(terminal, args, as_json)
        if args.command == "void":
            return _void(terminal, args, as_json)
        if args.command == "status":
            return _status(terminal, as_json)
        if args.command == "sync":
            return _sync(terminal, as_json)
        if args.command == "enroll":
            return _enroll(terminal, args, as_json)
    except SaleRefused as refused:
        _emit({"refused": refused.code, "message": refused.message}, as_json,
              f"refused ({refused.code}): {refused.message}")
        return EXIT_REFUSED
    except ServerUnreachable as exc:
        return _fail(str(exc), EXIT_UNREACHABLE)
    except DeviceNotAuthorized as exc:
        return _fail(str(exc), EXIT_UNAUTHORIZED)
    except TerminalError as exc:
        return _fail(str(exc), EXIT_ERROR)
    except ValueError as exc:
        return _fail(str(exc), EXIT_USAGE)
    finally:
        terminal.close()
    parser.error(f"unknown command {args.command}")
    return EXIT_USAGE  # pragma: no cover


def _sell(terminal: Terminal, args: argparse.Namespace, as_json: bool) -> int:
    items = [_parse_item(text) for text in args.item]
    receipt = terminal.record_sale(args.cashier, items, uid=args.uid, wallet_id=args.wallet)
    money = _money(terminal)
    _emit(receipt.cli_json(), as_json,
          f"sale {receipt.seq} recorded: {money(receipt.total)} to {receipt.display_name}, "
          f"balance about {money(receipt.balance_estimate)} (ref {receipt.ref})")
    return EXIT_OK


def _void(terminal: Terminal, args: argparse.Namespace, as_json: bool) -> int:
    receipt = terminal.void(args.ref, args.cashier)
    money = _money(terminal)
    _emit(receipt.cli_json(), as_json,
          f"void {receipt.seq} recorded: {money(receipt.total)} back to "
          f"{receipt.display_name}, balance about {money(receipt.balance_estimate)} "
          f"(ref {receipt.ref})")
    return EXIT_OK


# Status fields that are amounts (minor units in --json, formatted in the text).
_STATUS_MONEY = ("queued_total",)


def _status(terminal: Terminal, as_json: bool) -> int:
    status = terminal.status()
    money = _money(terminal)
    lines = [f"{key}: {money(value) if key in _STATUS_MONEY else value}"
             for key, value in status.items()]
    if status["enrolled"]:
        caps = terminal.school_settings()
        # Named as they work: the school's "offline" caps apply to every sale of this till,
        # online or not (terminal/selling/rules.py).
        lines += [f"largest sale allowed (online or offline): {money(caps.offline_max_sale)}",
                  "most waiting to sync before selling stops: "
                  f"{money(caps.offline_max_unsynced_total)}",
                  f"longest without a sync before selling stops: "
                  f"{caps.offline_max_hours} hours"]
    _emit(status, as_json, "\n".join(lines))
    return EXIT_OK


def _money(terminal: Terminal) -> Callable[[int], str]:
    from shared.money import format_minor

    currency = terminal.currency()

    def money(amount: int) -> str:
        return format_minor(amount, currency)
    return money


def _sync(terminal: Terminal, as_json: bool) -> int:
    report = terminal.sync_once()
    doc: dict[str, Any] = {"results": report.counts, "acked_seq": report.acked_seq,
                           "queued": report.queued}
    human = (f"applied {report.counts['applied']}, duplicate {report.counts['duplicate']}, "
             f"conflict {report.counts['conflict']}, rejected {report.counts['rejected']}; "
             f"acked_seq {report.acked_seq}; queued {report.queued}")
    if report.refill_from_seq is not None:  # the server had lost sales: said, not hidden
        doc["refilled_from_seq"] = report.refill_from_seq
        human += (f"; the server had lost sales (restored from a backup?): re-sent every sale "
                  f"held above seq {report.refill_from_seq}")
    _emit(doc, as_json, human)
    if report.unreachable:
        return _fail(report.error or "server not reachable", EXIT_UNREACHABLE)
    if report.auth_problem is not None:
        return _fail(report.error or "device not authorized", EXIT_UNAUTHORIZED)
    if report.error is not None:
        return _fail(report.error, EXIT_ERROR)
    return EXIT_OK


def _enroll(terminal: Terminal, args: argparse.Namespace, as_json: bool) -> int:
    enrollment = terminal.enroll(args.server, args.code, args.name)
    _emit({"device_id": enrollment.device_id, "school_id": enrollment.school_id}, as_json,
          f"enrolled as device {enrollment.device_id} of school {enrollment.school_id}")
    report = enrollment.first_snapshot
    if not report.completed:
        code = EXIT_UNREACHABLE if report.unreachable else EXIT_ERROR
        return _fail(f"enrolled, but the first snapshot failed: {report.error}; "
                     "run 'pos-terminal sync'", code)
    return EXIT_OK


def _parse_item(text: str) -> tuple[str, int]:
    product_id, sep, qty = text.rpartition(":")
    if sep and product_id and qty.isdigit():
        quantity = int(qty)
        if quantity < 1:
            raise ValueError(f"--item {text}: quantity must be at least 1")
        return product_id, quantity
    return text, 1


def _reader_check(args: argparse.Namespace) -> int:
    try:
        from terminal.readers.check import check_reader
        from terminal.readers.factory import create_reader
    except ImportError as exc:
        return _fail(f"reader support is not installed yet ({exc.name or exc})", EXIT_ERROR)
    options: dict[str, Any] = {}
    if args.device:
        options["device"] = args.device
    try:
        reader = create_reader(args.reader, **options)
    except (ValueError, RuntimeError, OSError) as exc:
        return _fail(f"cannot open the {args.reader} reader: {exc}", EXIT_ERROR)

    def echo(line: str) -> None:
        print(line, flush=True)

    return int(check_reader(reader, args.seconds, echo))


def _open_gui(data_dir: Path, args: argparse.Namespace) -> int:
    try:
        from terminal.app import AppOptions, main
    except ImportError as exc:
        return _fail(f"the cashier app cannot start ({exc.name or exc} is not installed); "
                     "use a sub-command (enroll, sync, sell, void, status, reader-check)",
                     EXIT_USAGE)
    options = AppOptions(server=args.gui_server, enroll_code=args.gui_code,
                         name=args.gui_name, reader=args.gui_reader,
                         reader_device=args.gui_reader_device,
                         fullscreen=args.gui_fullscreen,
                         smoke_test=args.gui_smoke_test)
    return int(main(data_dir, options))


def _emit(doc: dict[str, Any], as_json: bool, text: str) -> None:
    out = json.dumps(doc) if as_json else text
    sys.stdout.write(out + "\n")
    sys.stdout.flush()


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"pos-terminal: {message}\n")
    sys.stderr.flush()
    return code
