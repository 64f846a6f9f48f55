"""Write THIRD-PARTY-LICENSES: the licenses of everything a wadesk build ships.

    python packaging/third_party_licenses.py -o THIRD-PARTY-LICENSES 'wadesk[gui]' --runtime

Run it with the Python of the environment the build packs (the PyInstaller build
environment, the image's virtual environment): it reads the installed distributions'
metadata, starting from the given requirements and following their dependencies (with their
markers and extras evaluated for this environment), and writes, for each distribution, its
name, version, license (the SPDX expression, else the License field or classifiers, else
recognised from the license file) and the full text of every license file it ships. The
roots themselves (wadesk) are left out: their license is LICENSE next to this file.

Components that are not Python distributions are added where they are shipped:
- whatsmeow (MPL-2.0), compiled into neonize's Go library, whenever neonize is listed;
- Qt (LGPL-3.0), inside the PySide6 wheels, whenever PySide6 is listed;
- with --runtime (the desktop bundle): the Python interpreter and libmagic, which PyInstaller
  copies into the bundle. The image takes both from its base image, which has their notices.

Standard library only, plus ``packaging`` (or pip's copy of it) to evaluate requirements.
Exit code 1 when a requirement is not installed.
"""

from __future__ import annotations

import argparse
import re
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

try:
    from packaging.markers import default_environment
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
except ImportError:  # an environment without packaging: pip carries a copy
    from pip._vendor.packaging.markers import default_environment  # type: ignore[no-redef]
    from pip._vendor.packaging.requirements import Requirement  # type: ignore[no-redef]
    from pip._vendor.packaging.utils import canonicalize_name  # type: ignore[no-redef]

HERE = Path(__file__).resolve().parent
TEXTS = HERE / "licenses"  # full texts of licenses that some components name but do not ship
LICENSE_FILE = re.compile(r"(^|/)(LICEN[CS]E|COPYING|NOTICE|COPYRIGHT|AUTHORS)[^/]*$", re.I)
RULE = "=" * 78

# The first line that names a license, for distributions whose metadata names none.
RECOGNISED = [
    (re.compile(r"Apache License\s+Version 2\.0", re.I), "Apache-2.0"),
    (re.compile(r"Mozilla Public License,? (version|v\.?) 2\.0", re.I), "MPL-2.0"),
    (re.compile(r"GNU LESSER GENERAL PUBLIC LICENSE\s+Version 3", re.I), "LGPL-3.0"),
    (re.compile(r"Permission is hereby granted, free of charge", re.I), "MIT"),
    (re.compile(r"Redistribution and use in source and binary forms", re.I), "BSD"),
    (re.compile(r"ISC License", re.I), "ISC"),
    (re.compile(r"PYTHON SOFTWARE FOUNDATION LICENSE", re.I), "PSF-2.0"),
]

EXTRA_COMPONENTS = {
    "neonize": {
        "name": "whatsmeow",
        "license": "MPL-2.0",
        "where": "compiled into neonize's Go library (neonize/neonize-<os>-<arch>.so)",
        "source": "https://github.com/tulir/whatsmeow (neonize's Go code: https://github.com/krypton-byte/neonize)",
        "text": "MPL-2.0.txt",
    },
    "pyside6-essentials": {
        "name": "Qt 6",
        "license": "LGPL-3.0-only",
        "where": "the Qt libraries and plugins inside PySide6 (PySide6/Qt/), as separate shared "
        "libraries that can be replaced by other builds of the same Qt version",
        "source": "https://code.qt.io/cgit/qt/qt5.git (PySide6: https://code.qt.io/cgit/pyside/pyside-setup.git)",
        "text": "LGPL-3.0.txt",
    },
}
# Distributions whose metadata carries a license name but no license file.
TEXT_FOR_EXPRESSION = {
    "LGPL-3.0-only OR GPL-2.0-only OR GPL-3.0-only": "LGPL-3.0.txt",
}


def distribution(name: str) -> metadata.Distribution | None:
    try:
        return metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return None


def closure(roots: list[str]) -> tuple[list[metadata.Distribution], list[str]]:
    """The installed distributions the requirements ``roots`` need, without the roots; and
    the roots that are not installed."""
    base_env = default_environment()
    seen: dict[str, metadata.Distribution] = {}
    extras_done: set[tuple[str, str]] = set()
    missing: list[str] = []
    root_names = set()
    queue: list[tuple[Requirement, bool]] = [(Requirement(r), True) for r in roots]
    while queue:
        req, is_root = queue.pop()
        key = canonicalize_name(req.name)
        if is_root:
            root_names.add(key)
        dist = seen.get(key) or distribution(req.name)
        if dist is None:
            if is_root:
                missing.append(req.name)
            continue  # an optional dependency that is not installed is not shipped either
        seen[key] = dist
        for extra in ["", *sorted(req.extras)]:
            if (key, extra) in extras_done:
                continue
            extras_done.add((key, extra))
            for line in dist.requires or []:
                dep = Requirement(line)
                env = dict(base_env, extra=extra)
                if dep.marker is None or dep.marker.evaluate(env):
                    queue.append((dep, False))
    dists = [d for k, d in seen.items() if k not in root_names]
    return sorted(dists, key=lambda d: canonicalize_name(d.metadata["Name"])), missing


def license_files(dist: metadata.Distribution) -> list[tuple[str, str]]:
    """(file name, text) of every license file the distribution ships in its metadata folder
    (PEP 639 License-File entries first, else files named like LICENSE, COPYING, NOTICE)."""
    found: list[tuple[str, str]] = []
    names = dist.metadata.get_all("License-File") or []
    seen = set()
    for entry in dist.files or []:
        path = str(entry)
        in_metadata_dir = path.split("/")[0].endswith((".dist-info", ".egg-info"))
        base = path.split("/", 1)[-1]
        if not in_metadata_dir:
            continue
        if base in names or base.removeprefix("licenses/") in names or LICENSE_FILE.search(path):
            text = dist.read_text(base)
            if text is None:
                text = Path(str(dist.locate_file(entry))).read_text(encoding="utf-8", errors="replace")
            if base not in seen and text.strip():
                seen.add(base)
                found.append((base.removeprefix("licenses/"), text))
    return found


def license_name(dist: metadata.Distribution, texts: list[tuple[str, str]]) -> str:
    md = dist.metadata
    expression = md.get("License-Expression")
    if expression:
        return expression.strip()
    field = (md.get("License") or "").strip()
    if field and "\n" not in field and len(field) <= 100 and field.upper() != "UNKNOWN":
        return field
    classifiers = [c.split(" :: ")[-1] for c in md.get_all("Classifier") or [] if c.startswith("License ::")]
    if classifiers:
        return " AND ".join(classifiers)
    for _, text in texts:
        for pattern, name in RECOGNISED:
            if pattern.search(text[:2000]):
                return name
    return "not stated in its metadata"


def bundled_text(file_name: str) -> str:
    return (TEXTS / file_name).read_text(encoding="utf-8")


def python_runtime() -> dict[str, str]:
    version = ".".join(map(str, sys.version_info[:3]))
    candidates = [
        Path(sys.base_prefix) / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "LICENSE.txt",
        Path(sysconfig.get_paths()["stdlib"]) / "LICENSE.txt",
        Path(sys.base_prefix) / "LICENSE.txt",
        Path("/usr/share/doc") / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "copyright",
    ]
    text = next((p.read_text(encoding="utf-8", errors="replace") for p in candidates if p.is_file()), "")
    return {
        "name": f"Python {version}",
        "license": "PSF-2.0",
        "where": "the interpreter and standard library inside the bundle",
        "source": "https://www.python.org/downloads/source/",
        "body": text or "See https://docs.python.org/3/license.html",
    }


def libmagic_runtime() -> dict[str, str]:
    copyright_file = Path("/usr/share/doc/libmagic1/copyright")
    return {
        "name": "libmagic (file)",
        "license": "BSD-2-Clause",
        "where": "libmagic.so.1 and magic.mgc, copied from the build machine",
        "source": "https://www.darwinsys.com/file/",
        "body": copyright_file.read_text(encoding="utf-8", errors="replace")
        if copyright_file.is_file()
        else (
            "Copyright (c) Ian F. Darwin 1986, 1987, 1989, 1990, 1991, 1992, 1994, 1995.\n"
            "Software written by Ian F. Darwin and others; maintained 1994- Christos Zoulas.\n"
            "Distributed under a BSD 2-clause license: see https://github.com/file/file/blob/master/COPYING"
        ),
    }


def render(roots: list[str], runtime: bool) -> tuple[str, list[str]]:
    dists, missing = closure(roots)
    entries = []
    others = []
    for dist in dists:
        texts = license_files(dist)
        name = license_name(dist, texts)
        if not texts and name in TEXT_FOR_EXPRESSION:
            texts = [
                (
                    f"{TEXT_FOR_EXPRESSION[name]} (the license its metadata names)",
                    bundled_text(TEXT_FOR_EXPRESSION[name]),
                )
            ]
        entries.append((dist, name, texts))
        extra = EXTRA_COMPONENTS.get(canonicalize_name(dist.metadata["Name"]))
        if extra:
            others.append(dict(extra, body=bundled_text(extra["text"])))
    if runtime:
        others += [python_runtime(), libmagic_runtime()]

    out = [
        "THIRD-PARTY LICENSES",
        "",
        "wadesk is licensed under the Apache License 2.0 (LICENSE). This build contains the",
        f"following {len(entries)} Python distributions and {len(others)} other components, each under its",
        "own license, as listed here with the full license texts they ship.",
        "",
        "Python distributions:",
    ]
    width = max((len(d.metadata["Name"]) + len(d.version) for d, _, _ in entries), default=10) + 3
    for dist, name, _ in entries:
        out.append(f"  {(dist.metadata['Name'] + ' ' + dist.version).ljust(width)}{name}")
    if others:
        out += ["", "Other components:"]
        out += [f"  {o['name'].ljust(width)}{o['license']}" for o in others]
    for dist, name, texts in entries:
        md = dist.metadata
        home = md.get("Home-page") or next(
            (u.split(",", 1)[1].strip() for u in md.get_all("Project-URL") or [] if "," in u), ""
        )
        out += ["", RULE, f"{md['Name']} {dist.version}", f"License: {name}"]
        if home:
            out.append(f"Home: {home}")
        if not texts:
            out.append("(this distribution ships no license file)")
        for file_name, text in texts:
            out += ["", f"--- {file_name} ---", text.rstrip()]
    for other in others:
        out += ["", RULE, other["name"], f"License: {other['license']}", f"Where: {other['where']}"]
        out += [f"Source code: {other['source']}", "", other["body"].rstrip()]
    return "\n".join(out) + "\n", missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("requirements", nargs="+", help="what the build ships, e.g. 'wadesk[gui]'")
    parser.add_argument("-o", "--output", type=Path, help="file to write (default: standard output)")
    parser.add_argument(
        "--runtime", action="store_true", help="add the Python interpreter and libmagic (the desktop bundle)"
    )
    args = parser.parse_args(argv)
    text, missing = render(args.requirements, args.runtime)
    if missing:
        print(f"third_party_licenses.py: not installed here: {', '.join(missing)}", file=sys.stderr)
        return 1
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
