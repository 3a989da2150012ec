"""This till's own settings: sound volume, mute, and the language its cashiers read.

They belong to the terminal, not the school (one counter is by the noisy kitchen, another by
the library), and live in the core's local settings (:meth:`Terminal.local_settings`), so they
survive a restart. Saving goes through :meth:`Terminal.update_local_settings`, which checks
the values and tells every view what changed; the window then applies the new volume and, for
a new language, switches the whole application (:func:`terminal.ui.i18n.switch`).
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from terminal.core import Terminal
from terminal.ui.sound import SoundPlayer

# Each language is named in its own script, so a cashier finds theirs whatever is on screen.
LANGUAGES = (("en", "English"), ("ar", "\u0627\u0644\u0639\u0631\u0628\u064a\u0629"))


class SettingsDialog(QDialog):
    def __init__(self, terminal: Terminal, player: SoundPlayer,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.terminal = terminal
        self.player = player
        settings = terminal.local_settings()
        self.resize(520, 300)
        outer = QVBoxLayout(self)
        form = QFormLayout()
        self.volume = QSlider(Qt.Orientation.Horizontal)
        self.volume.setRange(0, 100)
        self.volume.setSingleStep(5)
        self.volume.setPageStep(10)
        self.volume.setValue(int(settings.sound_volume))
        self.volume_value = QLabel()
        self.volume_value.setMinimumWidth(48)
        self.volume.valueChanged.connect(lambda v: self.volume_value.setText(f"{v}%"))
        self.volume_value.setText(f"{self.volume.value()}%")
        volume_row = QHBoxLayout()
        volume_row.addWidget(self.volume, 1)
        volume_row.addWidget(self.volume_value)
        self.test_button = QPushButton()
        self.test_button.clicked.connect(self.try_sound)
        volume_row.addWidget(self.test_button)
        self.volume_label = QLabel()
        form.addRow(self.volume_label, volume_row)
        self.muted = QCheckBox()
        self.muted.setChecked(bool(settings.sound_muted))
        self.muted_label = QLabel()
        form.addRow(self.muted_label, self.muted)
        self.language = QComboBox()
        for code, name in LANGUAGES:
            self.language.addItem(name, code)
        index = self.language.findData(settings.language)
        self.language.setCurrentIndex(max(0, index))
        self.language_label = QLabel()
        form.addRow(self.language_label, self.language)
        outer.addLayout(form)
        self.message = QLabel()
        self.message.setWordWrap(True)
        outer.addWidget(self.message)
        outer.addStretch(1)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        outer.addWidget(self.buttons)
        self.retranslate()

    def retranslate(self) -> None:
        self.setWindowTitle(self.tr("Till settings"))
        self.volume_label.setText(self.tr("Sound volume"))
        self.test_button.setText(self.tr("Try"))
        self.muted_label.setText(self.tr("Mute"))
        self.muted.setText(self.tr("No sounds on this till"))
        self.language_label.setText(self.tr("Language"))

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self.retranslate()
        super().changeEvent(event)

    def try_sound(self) -> None:
        """Play "approved" at the volume on the slider, before saving it."""
        volume, muted = self.player.volume, self.player.muted
        self.player.configure(volume=self.volume.value(), muted=False)
        try:
            self.player.play("approved")
        finally:
            self.player.configure(volume=volume, muted=muted)

    def chosen_language(self) -> str:
        return str(self.language.currentData())

    def save(self) -> None:
        try:
            self.terminal.update_local_settings(
                sound_volume=self.volume.value(), sound_muted=self.muted.isChecked(),
                language=self.chosen_language())
        except ValueError as exc:  # the core's words; nothing was saved
            self.message.setText(str(exc))
            return
        self.accept()
