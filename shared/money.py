"""Money is an integer count of minor units everywhere; this module only formats it for people.

There is deliberately no parsing from floats. Amounts typed by people (admin top-ups) are
parsed from decimal strings with :func:`parse_major`, which refuses more decimals than the
currency has.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

# ISO 4217 minor-unit exponents for currencies a school is likely to use; default 2.
_EXPONENTS = {"SAR": 2, "AED": 2, "USD": 2, "EUR": 2, "GBP": 2, "KWD": 3, "BHD": 3, "OMR": 3,
              "JOD": 3, "JPY": 0, "KRW": 0}


def exponent(currency: str) -> int:
    return _EXPONENTS.get(currency.upper(), 2)


def format_minor(amount: int, currency: str = "", *, with_code: bool = True) -> str:
    """``-1205, "SAR"`` -> ``"-12.05 SAR"``. Integer arithmetic only."""
    exp = exponent(currency) if currency else 2
    sign = "-" if amount < 0 else ""
    units, minor = divmod(abs(amount), 10**exp)
    text = f"{sign}{units:,}" + (f".{minor:0{exp}d}" if exp else "")
    return f"{text} {currency}" if with_code and currency else text


def parse_major(text: str, currency: str) -> int:
    """``"12.5"`` -> ``1250`` for SAR. Raises ValueError with a sentence a person understands."""
    exp = exponent(currency)
    try:
        value = Decimal(text.strip().replace(",", ""))
    except InvalidOperation:
        raise ValueError(f"'{text}' is not an amount") from None
    if not value.is_finite():
        raise ValueError(f"'{text}' is not an amount")
    try:
        scaled = value.scaleb(exp)
    except ArithmeticError:  # decimal.Overflow: '1e99999999999'
        raise ValueError(f"'{text}' is not an amount") from None
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{currency} amounts have at most {exp} decimals")
    return int(scaled)
