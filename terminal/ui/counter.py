"""The counter: one cashier, one cart, bracelet taps in, outcomes out.

This is the Qt side of a sale, kept apart from any widget so tests and the benchmark can drive
it directly. It decides nothing about money: the tap de-duplication is
:class:`terminal.selling.taps.TapGuard`, the rules and the recording are
:meth:`Terminal.record_sale`. Recording is a ~1 ms durable SQLite write, so it runs right here
on the GUI thread (the cashier sees the result in the same frame); the network never does.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal

from shared.ids import mask_uid
from terminal.core import Terminal
from terminal.errors import SaleRefused, TerminalError
from terminal.selling.rules import Refusal, refusal
from terminal.selling.taps import TapGuard
from terminal.ui.cart_model import CartModel

log = logging.getLogger(__name__)

# How long a tapped student stays "at the counter" for the restriction check of items the
# cashier adds after the tap (a balance check, or a refusal, then the order is put together).
STUDENT_HOLD_S = 60.0


@dataclass(frozen=True, slots=True)
class Student:
    """The student whose bracelet (or looked-up name) was last answered, not yet served."""

    name: str
    uid: str | None = None
    wallet_id: str | None = None
    since: float = 0.0


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the result panel shows after a tap, a lookup sale or a void."""

    kind: str                 # approved | refused | restricted | info | voided | notice
    name: str                 # the student's display name ("" when unknown)
    message: str              # plain words: the refusal reason, or what happened
    total: int | None = None
    before: int | None = None
    after: int | None = None
    code: str | None = None   # refusal code
    read_at: float | None = None   # perf_counter() of the reader's report (for timing)
    offline: bool = False
    grade: str | None = None
    homeroom: str | None = None
    # The core's refusal (key + values), so the panel says it in the cashier's language and
    # says it again after a language switch; ``message`` is its English for logs.
    refusal: Refusal | None = None


def _refusal_outcome(key: str, read_at: float | None = None) -> Outcome:
    """A refusal the till makes without asking the core (no cashier, unknown bracelet)."""
    refused = refusal(key)
    return Outcome("refused", "", refused.message, code=refused.code, read_at=read_at,
                   refusal=refused)


class Counter(QObject):
    outcome = Signal(object)          # Outcome
    recorded = Signal(object)         # Receipt (sale or void) durably stored
    cashier_changed = Signal(str, str)  # cashier_id, name ("" when locked)

    def __init__(self, terminal: Terminal, guard: TapGuard | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.terminal = terminal
        self.guard = guard or TapGuard()
        self.cart = CartModel(terminal.currency())
        self.cashier_id: str | None = None
        self.ignored_repeats = 0
        self.student: Student | None = None
        self.cart.total_changed.connect(self._cart_changed)

    # -- cashier

    def log_in(self, cashier_id: str, name: str) -> None:
        if cashier_id != self.cashier_id:
            self.cart.clear()  # one cashier's order is not another's
        self.cashier_id = cashier_id
        self.cart.currency = self.terminal.currency()
        self.cashier_changed.emit(cashier_id, name)

    def lock(self) -> None:
        """Keep the cart (the same cashier usually comes back), forget who is selling."""
        self.cashier_id = None
        self.student = None
        self.cashier_changed.emit("", "")

    @property
    def locked(self) -> bool:
        return self.cashier_id is None

    # -- the student at the counter, and items they may not have

    def current_student(self) -> Student | None:
        if self.student is not None and time.monotonic() - self.student.since > STUDENT_HOLD_S:
            self.student = None
        return self.student

    def _remember(self, name: str, *, uid: str | None, wallet_id: str | None) -> None:
        self.student = Student(name, uid, wallet_id, time.monotonic())

    def _cart_changed(self, total: int) -> None:
        if total == 0:  # the order was cleared or sold: the next one is another student's
            self.student = None

    def add_product(self, product_id: str, name: str, price: int) -> bool:
        """Add one of a product to the cart, unless the student already tapped for this
        order may not have it (core :meth:`Terminal.item_refusal`, offline like every rule):
        then RESTRICTED is shown with the item and the reason, and nothing is added."""
        student = self.current_student()
        if student is not None:
            refused = self.terminal.item_refusal(product_id, uid=student.uid,
                                                 wallet_id=student.wallet_id)
            if refused is not None:
                view = (self.terminal.wallet_for_uid(student.uid) if student.uid
                        else self.terminal.wallet_view(student.wallet_id or ""))
                balance = view.balance_estimate if view is not None else None
                self.outcome.emit(Outcome(
                    "restricted", student.name, refused.message, total=self.cart.total,
                    before=balance, after=balance, code=refused.code, refusal=refused,
                    grade=getattr(view, "grade", None),
                    homeroom=getattr(view, "homeroom", None)))
                return False
        self.cart.add(product_id, name, price)
        return True

    # -- taps and sales

    def on_tap(self, uid: str, read_at: float | None = None) -> None:
        """A bracelet was read (already on the GUI thread)."""
        if not self.guard.admit(uid):
            self.ignored_repeats += 1
            log.info("repeat read of %s within the window ignored", mask_uid(uid))
            return
        if self.cashier_id is None:
            self.outcome.emit(Outcome("notice", "", "Log in first: the counter is locked.",
                                      code="locked", read_at=read_at))
            return
        if self.cart.is_empty():
            self._balance_inquiry(uid, read_at)
            return
        self.charge(uid=uid, read_at=read_at)

    def charge(self, *, uid: str | None = None, wallet_id: str | None = None,
               read_at: float | None = None) -> Outcome:
        """Record the cart as a sale to a bracelet or (looked up by name) a wallet."""
        if self.cashier_id is None:
            result = _refusal_outcome("cashier_unknown", read_at)
            self.outcome.emit(result)
            return result
        try:
            receipt = self.terminal.record_sale(self.cashier_id, self.cart.items(),
                                                uid=uid, wallet_id=wallet_id)
        except SaleRefused as refused:
            result = self._refused(refused, uid=uid, wallet_id=wallet_id, read_at=read_at)
        except TerminalError as error:
            result = Outcome("refused", "", str(error), code="error", read_at=read_at)
        else:
            grade, homeroom = self._class_of(receipt.wallet_id)
            result = Outcome(
                "approved", receipt.display_name, "Paid", total=receipt.total,
                before=receipt.balance_estimate + receipt.total,
                after=receipt.balance_estimate, read_at=read_at, offline=receipt.offline,
                grade=grade, homeroom=homeroom)
            self.cart.clear()
            self.student = None
            self.recorded.emit(receipt)
        self.outcome.emit(result)
        return result

    def void(self, ref: str) -> Outcome:
        if self.cashier_id is None:
            result = _refusal_outcome("cashier_unknown")
        else:
            try:
                receipt = self.terminal.void(ref, self.cashier_id)
            except SaleRefused as refused:
                result = Outcome("refused", "", refused.message, code=refused.code,
                                 refusal=refused.refusal)
            else:
                result = Outcome("voided", receipt.display_name,
                                 "Sale voided: the money goes back to the student.",
                                 code="voided",
                                 total=receipt.total,
                                 before=receipt.balance_estimate - receipt.total,
                                 after=receipt.balance_estimate,
                                 offline=receipt.offline)
                self.recorded.emit(receipt)
        self.outcome.emit(result)
        return result

    def _refused(self, refused: SaleRefused, *, uid: str | None, wallet_id: str | None,
                 read_at: float | None) -> Outcome:
        view = None
        if uid is not None:
            view = self.terminal.wallet_for_uid(uid)
        elif wallet_id is not None:
            view = self.terminal.wallet_view(wallet_id)
        balance = view.balance_estimate if view is not None else None
        if view is not None:  # items added next are checked against this student
            self._remember(view.display_name, uid=uid, wallet_id=wallet_id)
        kind = "restricted" if refused.code == "restricted_item" else "refused"
        return Outcome(kind, view.display_name if view else "", refused.message,
                       total=self.cart.total, before=balance, after=balance,
                       code=refused.code, read_at=read_at, refusal=refused.refusal,
                       grade=getattr(view, "grade", None),
                       homeroom=getattr(view, "homeroom", None))

    def _class_of(self, wallet_id: str) -> tuple[str | None, str | None]:
        """Grade and homeroom, shown beside the name (two students may share a name)."""
        view = self.terminal.wallet_view(wallet_id)
        return getattr(view, "grade", None), getattr(view, "homeroom", None)

    def show_balance(self, wallet_id: str) -> None:
        """A student found by name with an empty cart: who it is and the balance."""
        view = self.terminal.wallet_view(wallet_id)
        if view is None:
            return
        self._remember(view.display_name, uid=None, wallet_id=wallet_id)
        self.outcome.emit(Outcome("info", view.display_name,
                                  "Balance only: the cart is empty, nothing was charged.",
                                  code="balance_only",
                                  before=view.balance_estimate, after=view.balance_estimate,
                                  grade=getattr(view, "grade", None),
                                  homeroom=getattr(view, "homeroom", None)))

    def _balance_inquiry(self, uid: str, read_at: float | None) -> None:
        """A tap with an empty cart shows who it is and the balance; nothing is sold."""
        view = self.terminal.wallet_for_uid(uid)
        if view is None:
            self.outcome.emit(_refusal_outcome("credential_unknown", read_at))
            return
        self._remember(view.display_name, uid=uid, wallet_id=None)
        self.outcome.emit(Outcome("info", view.display_name,
                                  "Balance only: the cart is empty, nothing was charged.",
                                  code="balance_only",
                                  before=view.balance_estimate, after=view.balance_estimate,
                                  read_at=read_at, grade=getattr(view, "grade", None),
                                  homeroom=getattr(view, "homeroom", None)))
