"""docs/protocol.md and the OpenAPI document stay in step, and the docs link only inside the repo.

The OpenAPI document is generated from the wire models; these tests fail when a path, a
status, a sale status, a flag, a reject code, a payment event type or a hold reason is added
there (or here) without the words following it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

from shared.protocol import KNOWN_PAYMENT_EVENTS, RejectCode, SaleFlag, SaleStatus
from sync_server import __version__
from sync_server.api.openapi import build_document
from sync_server.ledger.payments import HOLD_WORDS

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL = ROOT / "docs" / "protocol.md"


def _sections(text: str) -> dict[str, str]:
    """``"GET /api/v1/health"`` -> the text under its ``### `GET /api/v1/health` `` heading."""
    parts = re.split(r"^### `([A-Z]+ /\S+)`.*$", text, flags=re.M)
    return {parts[i]: parts[i + 1].split("\n## ")[0] for i in range(1, len(parts), 2)}


def test_every_operation_has_a_section_naming_each_of_its_statuses() -> None:
    sections = _sections(PROTOCOL.read_text(encoding="utf-8"))
    text = PROTOCOL.read_text(encoding="utf-8")
    for path, methods in build_document(__version__)["paths"].items():
        for method, op in methods.items():
            name = f"{method.upper()} {path}"
            assert name in sections, f"docs/protocol.md has no section for {name}"
            # Statuses every operation shares are told once, under "Ground rules".
            for status in op["responses"]:
                assert status in sections[name] or status in text.split("## Endpoints")[0], \
                    f"{name}: status {status} is not explained"


def test_every_path_named_in_the_doc_is_in_the_document_or_marked_not_yet_implemented() -> None:
    paths = set(build_document(__version__)["paths"])
    for line in PROTOCOL.read_text(encoding="utf-8").splitlines():
        for path in re.findall(r"/api/v1/[a-z/._]*[a-z]", line):
            assert path in paths or "not yet implemented" in line, (path, line)


def test_every_value_of_the_models_is_explained() -> None:
    text = PROTOCOL.read_text(encoding="utf-8")
    values = [*get_args(SaleStatus), *get_args(SaleFlag), *get_args(RejectCode),
              *KNOWN_PAYMENT_EVENTS, *HOLD_WORDS]
    missing = [v for v in values if f"`{v}`" not in text]
    assert missing == []


def test_docs_link_only_to_files_inside_the_repository() -> None:
    bad = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text(encoding="utf-8")):
            if re.match(r"(https?|mailto):", target) or target.startswith("#"):
                continue
            resolved = (doc.parent / target.split("#")[0]).resolve()
            if not resolved.is_relative_to(ROOT) or not resolved.exists():
                bad.append(f"{doc.relative_to(ROOT)}: {target}")
    assert bad == []
    assert "](docs/protocol.md)" in (ROOT / "README.md").read_text(encoding="utf-8")
