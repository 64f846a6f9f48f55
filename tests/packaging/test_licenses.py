"""The license, the package metadata and THIRD-PARTY-LICENSES (packaging/third_party_licenses.py)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from container_harness import ROOT

SCRIPT = ROOT / "packaging" / "third_party_licenses.py"


def pyproject() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]


def test_license_file_is_the_license_the_metadata_names() -> None:
    project = pyproject()
    assert project["license"] == "Apache-2.0"
    assert project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    # PEP 639: a license expression excludes license classifiers
    assert not [c for c in project["classifiers"] if c.startswith("License ::")]
    assert {"Source", "Issues"} <= set(project["urls"])


def test_pyroma_rates_the_package_9_or_more(tmp_path: Path) -> None:
    exe = shutil.which("pyroma") or str(Path(sys.executable).with_name("pyroma"))
    if not Path(exe).exists():
        pytest.skip("pyroma is not installed (pip install -e '.[test]')")
    result = subprocess.run(
        [exe, "--directory", "--min", "9", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        check=False,
    )
    found = re.search(r"Final rating: (\d+)/10", result.stdout)
    assert found, result.stdout + result.stderr
    assert int(found.group(1)) >= 9, result.stdout
    assert result.returncode == 0, result.stdout + result.stderr


def sections(text: str) -> dict[str, str]:
    """Each component's section of THIRD-PARTY-LICENSES, by its heading line."""
    parts = text.split("\n" + "=" * 78 + "\n")[1:]
    return {part.split("\n", 1)[0]: part for part in parts}


@pytest.fixture(scope="module")
def listing(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("licenses") / "THIRD-PARTY-LICENSES"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--runtime", "-o", str(out), "wadesk[gui]"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out.read_text(encoding="utf-8")


def summary_rows(listing: str) -> dict[str, str]:
    """The listing's summary, "  <name> <version>   <license>": the name's first word, and the license."""
    summary = listing.split("\n" + "=" * 78, 1)[0]
    return {
        cells[0].split()[0]: cells[1]
        for line in summary.splitlines()
        if line.startswith("  ") and len(cells := re.split(r"\s{2,}", line.strip(), maxsplit=1)) == 2
    }


def test_third_party_licenses_name_each_distribution_with_its_license(listing: str) -> None:
    rows = summary_rows(listing)
    assert rows["neonize"] == "Apache-2.0"  # recognised from its license file: no metadata field
    assert rows["Flask"] == "BSD-3-Clause"
    assert rows["PySide6_Essentials"].startswith("LGPL-3.0-only")
    assert "MPL-2.0" in rows["whatsmeow"]
    assert rows["Python"] == "PSF-2.0"
    # the dependency closure of wadesk[gui], nothing else from this environment: no test tools,
    # and not wadesk itself (its license is LICENSE)
    for absent in ("pytest", "wadesk", "mypy", "schemathesis", "pip"):
        assert absent not in rows, absent


# GPL, AGPL or "GNU General Public License", but not LGPL or "GNU Lesser General Public License"
STRONG_COPYLEFT = re.compile(r"(?<![L])GPL|GNU (Affero )?General Public License", re.I)


def test_nothing_in_a_build_is_under_a_strong_copyleft_alone(listing: str) -> None:
    """Every component is permissive or a weak copyleft (MPL-2.0, LGPL), or offers one of those.

    So a build (the bundle, the .deb, the image) as a whole stays under wadesk's Apache-2.0;
    a GPL-only dependency would make it a GPL combination.
    """
    rows = summary_rows(listing)
    assert len(rows) > 40
    for name, license in rows.items():
        choices = re.split(r"\s+OR\s+", license)
        assert any(not STRONG_COPYLEFT.search(choice) for choice in choices), (name, license)
    assert "mutagen" not in rows


def test_third_party_licenses_carry_the_full_texts(listing: str) -> None:
    parts = sections(listing)
    neonize = next(v for k, v in parts.items() if k.startswith("neonize "))
    assert "Apache License" in neonize and "Version 2.0, January 2004" in neonize
    flask = next(v for k, v in parts.items() if k.startswith("Flask "))
    assert "Redistribution and use in source and binary forms" in flask
    # PySide6's wheel ships no license file: the LGPL it names is included
    pyside = next(v for k, v in parts.items() if k.startswith("PySide6_Essentials "))
    assert "GNU LESSER GENERAL PUBLIC LICENSE" in pyside
    whatsmeow = parts["whatsmeow"]
    assert "Mozilla Public License Version 2.0" in whatsmeow
    assert "https://github.com/tulir/whatsmeow" in whatsmeow  # where its source is (MPL 3.2)


def test_third_party_licenses_refuse_a_requirement_that_is_not_installed(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "-o", str(tmp_path / "out"), "no-such-distribution-here"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "no-such-distribution-here" in result.stderr
    assert not (tmp_path / "out").exists()
