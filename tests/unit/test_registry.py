"""The partner catalogue is discovered: packages under syncd.connectors, and third-party
partners installed with a ``syncd.partners`` entry point; a partner's name stays in its
own package."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from syncd.connectors import registry

SYNCD = Path(registry.__file__).resolve().parents[1]


@pytest.fixture
def fresh_catalogue() -> Iterator[None]:
    registry.partners.cache_clear()
    yield
    registry.partners.cache_clear()


def _own_places(name: str) -> tuple[str, ...]:
    return (f"syncd/connectors/{name}/", f"syncd/simulator/profiles/{name}/")


def generic_files_naming(names: set[str]) -> dict[str, list[str]]:
    """Files under syncd/ outside their partner's own places that name a partner (as a word,
    in any case), each with the names found."""
    found: dict[str, list[str]] = {}
    words = {n: re.compile(rf"\b{re.escape(n)}\b", re.IGNORECASE) for n in names}
    for path in sorted(SYNCD.rglob("*")):
        if not path.is_file() or path.suffix not in (
            ".py",
            ".sql",
            ".toml",
            ".md",
            ".txt",
            ".html",
            ".css",
            ".js",
        ):
            continue
        relative = path.relative_to(SYNCD.parent).as_posix()
        text = path.read_text(encoding="utf-8", errors="replace")
        named = [
            n for n, word in words.items() if word.search(text) and not relative.startswith(_own_places(n))
        ]
        if named:
            found[relative] = named
    return found


def test_generic_modules_name_no_partner(fresh_catalogue: None) -> None:
    names = set(registry.partners())
    assert names, "no partner package discovered"
    offending = generic_files_naming(names)
    assert offending == {}


def test_every_package_under_syncd_connectors_exporting_a_partner_is_found(fresh_catalogue: None) -> None:
    packages = {
        p.parent.name
        for p in (SYNCD / "connectors").glob("*/__init__.py")
        if re.search(r"^PARTNER = PartnerInfo\(", p.read_text(), re.MULTILINE)
    }
    found = registry.partners()
    assert packages and packages <= set(found)
    for name in packages:
        assert found[name].connect is not None, f"{name} exports no connect factory"


def test_a_partner_installed_with_an_entry_point_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_catalogue: None
) -> None:
    dist = tmp_path / "syncd_acme-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: syncd-acme\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[syncd.partners]\nacme = tests.integration.http.acme_partner:PARTNER\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    from tests.integration.http import acme_partner

    catalogue = registry.partners()
    assert catalogue["acme"] is acme_partner.PARTNER
    assert registry.schemas()["acme"].credential_sets == acme_partner.PARTNER.credential_sets
    assert set(catalogue) - {"acme"}, "the bundled partners are still there"


def test_two_partners_of_one_name_are_refused() -> None:
    first = next(iter(registry.partners().values()))
    twin = replace(first, base_url="https://elsewhere.invalid")
    with pytest.raises(RuntimeError, match="two partner packages"):
        registry.discover(iter([first, twin]))


def test_an_entry_point_that_is_not_a_partner_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_catalogue: None
) -> None:
    dist = tmp_path / "syncd_broken-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: syncd-broken\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[syncd.partners]\nbroken = tests.integration.http.acme_partner:connect\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(TypeError, match="not a PartnerInfo"):
        registry.partners()


def test_partner_info_needs_no_network_stack() -> None:
    """A package's PartnerInfo is static data: importing it loads no HTTP client."""
    import subprocess

    names = [p.parent.name for p in (SYNCD / "connectors").glob("*/__init__.py")]
    code = "import sys\n" + "".join(f"import syncd.connectors.{n}\n" for n in names)
    code += (
        "assert 'httpx' not in sys.modules and 'syncd.http.client' not in sys.modules, sorted(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=SYNCD.parent)
