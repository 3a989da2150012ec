"""A cart: the lines of one sale, priced from the snapshot at the moment of sale."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class CartLine:
    product_id: str
    name: str
    quantity: int
    unit_price: int

    @property
    def amount(self) -> int:
        return self.quantity * self.unit_price

    def wire(self) -> dict[str, Any]:
        return {"product_id": self.product_id, "name": self.name,
                "quantity": self.quantity, "unit_price": self.unit_price}


@dataclass(slots=True)
class Cart:
    """Lines in the order the cashier added them; adding a product again raises its quantity
    (one line per product keeps receipts and the server's price checks simple)."""

    lines: list[CartLine] = field(default_factory=list)

    def add(self, product_id: str, name: str, unit_price: int, quantity: int = 1) -> None:
        if quantity < 1:
            raise ValueError("quantity must be at least 1")
        if unit_price < 0:
            raise ValueError("a price cannot be negative")
        for i, line in enumerate(self.lines):
            if line.product_id == product_id:
                self.lines[i] = CartLine(product_id, line.name, line.quantity + quantity,
                                         line.unit_price)
                return
        self.lines.append(CartLine(product_id, name, quantity, unit_price))

    def set_quantity(self, product_id: str, quantity: int) -> None:
        """Change a line's quantity in place (the cashier's +/- buttons); 0 removes it."""
        if quantity < 0:
            raise ValueError("quantity cannot be negative")
        if quantity == 0:
            self.remove(product_id)
            return
        self.lines = [CartLine(line.product_id, line.name, quantity, line.unit_price)
                      if line.product_id == product_id else line for line in self.lines]

    def clear(self) -> None:
        self.lines = []

    def remove(self, product_id: str) -> None:
        self.lines = [line for line in self.lines if line.product_id != product_id]

    @property
    def total(self) -> int:
        return sum(line.amount for line in self.lines)

    def is_empty(self) -> bool:
        return not self.lines

    def wire(self) -> list[dict[str, Any]]:
        return [line.wire() for line in self.lines]
