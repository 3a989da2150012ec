"""``pos-terminal`` with no sub-command opens the app with the GUI options."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import terminal.app
from terminal import cli


def test_no_sub_command_opens_the_app_with_its_options(monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def fake_main(data_dir: Path, options: terminal.app.AppOptions) -> int:
        seen["data_dir"], seen["options"] = data_dir, options
        return 0

    monkeypatch.setattr(terminal.app, "main", fake_main)
    code = cli.main(["--data-dir", str(tmp_path), "--server", "http://s:8080",
                     "--enroll-code", "ABCD-EFGH", "--name", "Counter 2",
                     "--reader", "simulated"])
    assert code == 0
    assert seen["data_dir"] == tmp_path
    options = seen["options"]
    assert (options.server, options.enroll_code, options.name, options.reader) == (
        "http://s:8080", "ABCD-EFGH", "Counter 2", "simulated")
    # the sub-commands keep their own --server
    args = cli.build_parser().parse_args(["enroll", "--server", "u", "--code", "c",
                                          "--name", "n"])
    assert args.server == "u" and args.gui_server is None


def test_unknown_reader_option_is_one_line(tmp_path: Path, qapp: Any,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    options = terminal.app.AppOptions(reader="simulated", reader_device="/dev/x")
    assert terminal.app.main(tmp_path, options) == 2
    assert "no device to choose" in capsys.readouterr().err
