"""The demo data is reproducible: a fixed, reported seed makes the same students, balances and
bracelets every time (the lunch-flow UI test runs on it), with the restrictions and allergens
the till's RESTRICTED answer is tried on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sync_server.demo import DEMO_SEED, seed
from sync_server.storage.engine import create_engine
from sync_server.storage.migrate import upgrade


async def _seeded(path: Path, **kwargs: Any) -> dict[str, Any]:
    url = f"sqlite:///{path}"
    await upgrade(url)
    engine = create_engine(url)
    try:
        return await seed(engine, **kwargs)
    finally:
        await engine.dispose()


def _people(demo: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(w["display_name"], w["balance"], w["credential_uid"], w["grade"], w["homeroom"],
             w["daily_limit"], w["status"])
            for school in demo["schools"] for w in school["wallets"]]


async def test_the_same_seed_makes_the_same_students(tmp_path: Path) -> None:
    first = await _seeded(tmp_path / "a.db")
    second = await _seeded(tmp_path / "b.db")
    other = await _seeded(tmp_path / "c.db", seed_value=7)
    assert first["seed"] == second["seed"] == DEMO_SEED and other["seed"] == 7
    assert _people(first) == _people(second)
    assert _people(first) != _people(other)

    school = first["schools"][0]
    restricted = [w for w in school["wallets"]
                  if any(w["restrictions"][k] for k in w["restrictions"])]
    assert len(restricted) == 2
    assert {tuple(w["restrictions"]["allergens"]) for w in restricted} >= {("nuts",)}
    granola = next(p for p in school["products"] if p["name"] == "Granola bar")
    assert "nuts" in granola["allergens"]
    assert all(w["homeroom"] for w in school["wallets"])
