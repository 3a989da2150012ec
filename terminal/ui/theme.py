"""Look of the cashier app: large type for a counter seen from a step away, and colours a
cashier reads without reading words (green approved, red refused), with white text on both
for contrast. Sizes are chosen so every screen fits 1024x600 (small kiosk panels)."""

from __future__ import annotations

from PySide6.QtGui import QFont
from PySide6.QtWidgets import QApplication

FONT_FAMILY = "DejaVu Sans"
BASE_PT = 13

APPROVED = "#1b7f3b"
REFUSED = "#c62828"
RESTRICTED = "#6a1b9a"  # purple: an item this student may not have, not "no money"
INFO = "#1565c0"
WAITING = "#263238"
IDLE = "#eceff1"
WARNING = "#f9a825"
PROBLEM = "#b71c1c"
ONLINE = "#2e7d32"
OFFLINE = "#c62828"

STYLE = f"""
QWidget {{ font-family: "{{family}}"; font-size: {BASE_PT}pt; }}
QPushButton {{ min-height: 40px; padding: 4px 10px; border: 1px solid #90a4ae;
              border-radius: 6px; background: #fafafa; }}
QPushButton:pressed {{ background: #cfd8dc; }}
QPushButton:disabled {{ color: #9e9e9e; }}
QPushButton:checked {{ background: #1565c0; color: white; border-color: #0d47a1; }}
QPushButton[role="product"] {{ font-size: 12pt; min-height: 76px; background: #e3f2fd;
                               border-color: #64b5f6; text-align: center; }}
QPushButton[role="primary"] {{ background: #1565c0; color: white; font-weight: bold;
                               border-color: #0d47a1; }}
QPushButton[role="danger"] {{ background: #ffebee; color: #b71c1c; border-color: #e57373; }}
QLineEdit {{ min-height: 40px; padding: 2px 8px; border: 1px solid #90a4ae;
            border-radius: 6px; background: white; }}
QTableView {{ gridline-color: #cfd8dc; selection-background-color: #bbdefb;
             selection-color: black; }}
QHeaderView::section {{ background: #eceff1; padding: 4px; border: none;
                       border-bottom: 1px solid #b0bec5; font-weight: bold; }}
QTabBar::tab {{ min-height: 36px; padding: 4px 14px; font-weight: bold; }}
QTabBar::tab:selected {{ background: #1565c0; color: white; }}
QLabel[role="title"] {{ font-size: 20pt; font-weight: bold; }}
QLabel[role="total"] {{ font-size: 22pt; font-weight: bold; }}
QLabel[role="error"] {{ color: {REFUSED}; font-weight: bold; }}
"""


def style(family: str = FONT_FAMILY) -> str:
    """The style sheet with ``family`` as the type face (i18n picks one per script)."""
    return STYLE.replace("{family}", family)


def apply(app: QApplication, family: str = FONT_FAMILY) -> None:
    app.setFont(QFont(family, BASE_PT))
    app.setStyleSheet(style(family))


def set_role(widget: object, role: str) -> None:
    """Tag a widget for the style sheet (``QPushButton[role="product"]``)."""
    widget.setProperty("role", role)  # type: ignore[attr-defined]
