"""The sale screen: product buttons by category, the cart, the total and the big answer.

Made for touch and for the keyboard: every button is at least 40 px high, and the frequent
actions have keys (see ``docs/cashier-app.md``). The screen holds no rule: it adds lines to
the :class:`CartModel`, and bracelet taps go to the :class:`Counter`, which asks the core.
"""

from __future__ import annotations

from functools import partial

from PySide6.QtCore import QEvent, Qt, QTimer, Signal, SignalInstance
from PySide6.QtGui import QKeySequence, QResizeEvent, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QScrollArea,
    QStackedWidget,
    QTabBar,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from shared.money import format_minor
from terminal.store.snapshot import Product
from terminal.ui import i18n, theme
from terminal.ui.counter import Counter, Outcome
from terminal.ui.result_panel import ResultPanel

COLUMNS = 3
RESULT_HOLD_MS = 6000  # an answer stays this long unless the cashier starts the next order
RESULT_SHARE = 0.42    # of the sale screen's height, for the answer band
RESULT_MIN_PX = 200


def _looks(product: Product) -> tuple[object, ...]:
    """What a product button shows and where it sits."""
    return (product.product_id, product.name, product.price, product.category,
            getattr(product, "position", None))


class SaleView(QWidget):
    lookup_requested = Signal()
    history_requested = Signal()
    sync_requested = Signal()
    lock_requested = Signal()
    demo_requested = Signal()
    settings_requested = Signal()

    def __init__(self, counter: Counter, *, demo_reader: bool = False,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.counter = counter
        self.cart = counter.cart
        self.products: list[Product] = []
        self.product_buttons: dict[str, QPushButton] = {}
        self.categories: list[str] = []   # tab order

        outer = QVBoxLayout(self)
        outer.setContentsMargins(8, 6, 8, 6)
        outer.setSpacing(6)

        # -- header: the actions a cashier uses all day, each with its key
        header = QHBoxLayout()
        header.setSpacing(6)
        self.lookup_button = self._header_button(header, self.lookup_requested)
        self.history_button = self._header_button(header, self.history_requested)
        self.sync_button = self._header_button(header, self.sync_requested)
        self.demo_button = self._header_button(header, self.demo_requested)
        self.demo_button.setVisible(demo_reader)
        header.addStretch(1)
        self.settings_button = self._header_button(header, self.settings_requested)
        self.lock_button = self._header_button(header, self.lock_requested)
        outer.addLayout(header)

        body = QHBoxLayout()
        body.setSpacing(10)
        outer.addLayout(body, 1)

        # -- left: categories and products
        left = QVBoxLayout()
        left.setSpacing(4)
        self.tabs = QTabBar()
        self.tabs.setExpanding(False)
        self.tabs.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.tabs.currentChanged.connect(self._show_category)
        left.addWidget(self.tabs)
        self.pages = QStackedWidget()
        left.addWidget(self.pages, 1)
        body.addLayout(left, 11)

        # -- right: cart, total, answer
        right = QVBoxLayout()
        right.setSpacing(4)
        self.table = QTableView()
        self.table.setModel(self.cart)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(34)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        hh.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        right.addWidget(self.table, 1)

        buttons = QHBoxLayout()
        self.minus_button = QPushButton("\u2212")
        self.plus_button = QPushButton("+")
        self.remove_button = QPushButton()
        self.clear_button = QPushButton()
        theme.set_role(self.clear_button, "danger")
        for button in (self.minus_button, self.plus_button, self.remove_button,
                       self.clear_button):
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            buttons.addWidget(button)
        self.minus_button.clicked.connect(lambda: self.cart.decrement(self.current_row()))
        self.plus_button.clicked.connect(lambda: self.cart.increment(self.current_row()))
        self.remove_button.clicked.connect(lambda: self.cart.remove(self.current_row()))
        self.clear_button.clicked.connect(self.cart.clear)
        right.addLayout(buttons)

        total_row = QHBoxLayout()
        self.total_caption = QLabel()
        total_row.addWidget(self.total_caption)
        self.total_label = QLabel()
        theme.set_role(self.total_label, "total")
        self.total_label.setAlignment(Qt.AlignmentFlag.AlignRight)
        total_row.addWidget(self.total_label, 1)
        right.addLayout(total_row)

        body.addLayout(right, 9)

        # -- the answer, full width under both: at least a third of the window (resizeEvent)
        self.result = ResultPanel(self.cart.currency)
        outer.addWidget(self.result)

        self._hold = QTimer(self)
        self._hold.setSingleShot(True)
        self._hold.timeout.connect(self._back_to_waiting)
        self.cart.total_changed.connect(self._total_changed)
        self.cart.rowsInserted.connect(lambda _p, first, _l: i18n.select_row(self.table, first))
        counter.outcome.connect(self.show_outcome)
        self._install_shortcuts()
        self._total_changed(self.cart.total)
        self.retranslate()

    def retranslate(self) -> None:
        """Texts in the language now in force; the keys keep their names (F3, Del, Esc are
        printed on the keyboard)."""
        self.lookup_button.setText(self.tr("Name lookup F3"))
        self.history_button.setText(self.tr("History F4"))
        self.sync_button.setText(self.tr("Sync now F5"))
        self.demo_button.setText(self.tr("Demo bracelets F9"))
        self.settings_button.setText(self.tr("Settings F10"))
        self.lock_button.setText(self.tr("Lock F12"))
        self.remove_button.setText(self.tr("Remove Del"))
        self.clear_button.setText(self.tr("Clear Esc"))
        self.total_caption.setText(self.tr("Total"))
        self.cart.retranslate()
        for index, category in enumerate(self.categories):
            self.tabs.setTabText(index, self._tab_text(category))

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self.retranslate()
        super().changeEvent(event)

    def _tab_text(self, category: str) -> str:
        count = sum(1 for p in self.products if (p.category or "Other") == category)
        # a product without a category is in "Other", said in the cashier's language
        name = self.tr("Other") if category == "Other" else category.replace("&", "&&")
        return f"{name} ({count})"

    def resizeEvent(self, event: QResizeEvent) -> None:
        """The answer band takes :data:`RESULT_SHARE` of this screen's height, so it covers at
        least a third of the window at 1024x600 and 1280x800 (tests/ui/test_counter_screen)."""
        self.result.setFixedHeight(max(RESULT_MIN_PX, int(event.size().height() * RESULT_SHARE)))
        super().resizeEvent(event)

    def _header_button(self, row: QHBoxLayout, signal: SignalInstance) -> QPushButton:
        button = QPushButton()
        button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        button.clicked.connect(signal.emit)
        row.addWidget(button)
        return button

    def _install_shortcuts(self) -> None:
        # Window-wide, but a QShortcut only fires while its widget is visible, so these keys
        # belong to the sale screen alone (the PIN pad's digits are not product keys).
        context = Qt.ShortcutContext.WindowShortcut
        keys = {
            "+": lambda: self.cart.increment(self.current_row()),
            "=": lambda: self.cart.increment(self.current_row()),
            "-": lambda: self.cart.decrement(self.current_row()),
            "Del": lambda: self.cart.remove(self.current_row()),
            "Esc": self.cart.clear,
            "Up": lambda: self._move_selection(-1),
            "Down": lambda: self._move_selection(+1),
            "PgDown": lambda: self._switch_category(+1),
            "PgUp": lambda: self._switch_category(-1),
            "F3": self.lookup_requested.emit,
            "F4": self.history_requested.emit,
            "F5": self.sync_requested.emit,
            "F9": self.demo_requested.emit,
            "F10": self.settings_requested.emit,
            "F12": self.lock_requested.emit,
            "Ctrl+L": self.lock_requested.emit,
        }
        for number in range(1, 10):
            keys[str(number)] = partial(self.add_nth, number)
        self.shortcuts = []
        for key, action in keys.items():
            shortcut = QShortcut(QKeySequence(key), self)
            shortcut.setContext(context)
            shortcut.activated.connect(action)
            self.shortcuts.append(shortcut)

    # -- products

    def load_products(self, products: list[Product]) -> None:
        """Rebuild the grid (after a sync the catalogue, prices or order may have changed).

        ``products`` come in the order the school set (``position``, from the core), and so do
        the buttons, the tabs (a category sits where its first product does) and the number
        keys: a product the school adds goes last and never renumbers the others."""
        if [_looks(p) for p in products] == [_looks(p) for p in self.products]:
            return
        self.products = products
        index = self.tabs.currentIndex()
        current = self.categories[index] if 0 <= index < len(self.categories) else None
        while self.tabs.count():
            self.tabs.removeTab(0)
        while self.pages.count():
            page = self.pages.widget(0)
            if page is None:
                break
            self.pages.removeWidget(page)
            page.deleteLater()
        self.product_buttons.clear()
        categories: dict[str, list[Product]] = {}
        for product in products:
            categories.setdefault(product.category or "Other", []).append(product)
        self.categories = list(categories)
        for category, items in categories.items():
            grid_host = QWidget()
            grid = QGridLayout(grid_host)
            grid.setSpacing(6)
            grid.setContentsMargins(0, 0, 0, 0)
            for i, product in enumerate(items):
                button = self._product_button(product, i + 1)
                grid.addWidget(button, i // COLUMNS, i % COLUMNS)
            grid.setRowStretch(len(items) // COLUMNS + 1, 1)
            scroll = QScrollArea()
            scroll.setWidgetResizable(True)
            scroll.setFrameShape(QScrollArea.Shape.NoFrame)
            scroll.setWidget(grid_host)
            self.pages.addWidget(scroll)
            self.tabs.addTab(self._tab_text(category))
            if category == current:
                self.tabs.setCurrentIndex(self.tabs.count() - 1)

    def _product_button(self, product: Product, number: int) -> QPushButton:
        price = format_minor(product.price, self.cart.currency, with_code=False)
        key = f"[{number}] " if number <= 9 else ""
        # "&" would be taken as a mnemonic marker and vanish ("Rice & chicken" showed as
        # "Rice  chicken"): double it so the name reads as the school wrote it.
        button = QPushButton(f"{product.name.replace('&', '&&')}\n{key}{price}")
        theme.set_role(button, "product")
        button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        button.setMinimumWidth(110)
        button.clicked.connect(lambda: self.add_product(product))
        self.product_buttons[product.product_id] = button
        return button

    def category_products(self) -> list[Product]:
        index = self.tabs.currentIndex()
        if not 0 <= index < len(self.categories):
            return []
        name = self.categories[index]
        return [p for p in self.products if (p.category or "Other") == name]

    def add_product(self, product: Product) -> None:
        if self.result.stopped is None:
            self.counter.add_product(product.product_id, product.name, product.price)

    def show_stopped(self, message: str | None) -> None:
        """The terminal may not sell at all (``message`` says why and what to do), or may
        again (``None``): the answer panel says so and the product buttons are greyed out;
        History, Sync and Lock stay usable."""
        self.result.set_stopped(message)
        self.tabs.setEnabled(message is None)
        self.pages.setEnabled(message is None)

    def add_nth(self, number: int) -> None:
        items = self.category_products()
        if 0 < number <= len(items):
            self.add_product(items[number - 1])

    def _show_category(self, index: int) -> None:
        if 0 <= index < self.pages.count():
            self.pages.setCurrentIndex(index)

    def _switch_category(self, step: int) -> None:
        if self.tabs.count():
            self.tabs.setCurrentIndex((self.tabs.currentIndex() + step) % self.tabs.count())

    # -- cart

    def current_row(self) -> int:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            return rows[0].row()
        return self.cart.rowCount() - 1

    def _move_selection(self, step: int) -> None:
        count = self.cart.rowCount()
        if count:
            i18n.select_row(self.table,
                             max(0, min(count - 1, self.current_row() + step)))

    def _total_changed(self, total: int) -> None:
        self.total_label.setText(format_minor(total, self.cart.currency))
        if self.result.outcome is None or total > 0:
            self._hold.stop()
            self.result.show_waiting(total)

    # -- answers

    def show_outcome(self, outcome: Outcome) -> None:
        if outcome.code == "locked":
            return  # this screen is hidden while locked: the login screen says it
        self.result.show_outcome(outcome)
        self._hold.start(RESULT_HOLD_MS)

    def _back_to_waiting(self) -> None:
        self.result.show_waiting(self.cart.total)

    def set_currency(self, currency: str) -> None:
        self.result.currency = currency
        self.cart.currency = currency
        self._total_changed(self.cart.total)
