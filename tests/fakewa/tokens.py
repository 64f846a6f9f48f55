"""whatsmeow's binary-XML token dictionaries, read out of the loaded neonize library.

Nothing of whatsmeow is vendored: ``SingleByteTokens`` is a ``[236]string`` and
``DoubleByteTokens`` a ``[4][]string`` (each 256 long) in the Go library's data. Go string
headers are (ptr, len) pairs and slice headers (ptr, len, cap); once the dynamic loader has
applied relocations they hold real addresses, so the tables can be walked in process memory.
Linux only (uses /proc/self/maps).
"""

from __future__ import annotations

import ctypes
import re
import struct
from collections.abc import Callable, Iterator

SO_NAME = "neonize-linux-amd64.so"

Mapping = tuple[int, int, str]  # (start, end, permissions)


def _maps() -> list[Mapping]:
    out = []
    with open("/proc/self/maps") as f:
        for line in f:
            p = line.split()
            if len(p) >= 6 and p[5].endswith(SO_NAME):
                lo, hi = (int(x, 16) for x in p[0].split("-"))
                out.append((lo, hi, p[1]))
    return out


def _find_all(maps: list[Mapping], needle: bytes, perms_pred: Callable[[str], bool]) -> list[int]:
    hits = []
    for lo, hi, perms in maps:
        if not perms_pred(perms):
            continue
        buf = ctypes.string_at(lo, hi - lo)
        i = buf.find(needle)
        while i >= 0:
            hits.append(lo + i)
            i = buf.find(needle, i + 1)
    return hits


def _is_data(perms: str) -> bool:
    return perms.startswith("r") and "x" not in perms


def _may_hold_pointers(perms: str) -> bool:
    return perms.startswith("rw") or perms == "r--p"


def extract_tokens(
    n_single: int = 236,
    n_dicts: int = 4,
    first_single: str = "xmlstreamstart",
    first_double: str = "read-self",
) -> tuple[list[str], list[list[str]]]:
    """Return (single-byte tokens, double-byte token dictionaries) from the loaded library.

    neonize must already be imported (that loads the library).
    """
    maps = _maps()
    if not maps:
        raise RuntimeError(f"{SO_NAME} is not loaded in this process (import neonize first)")
    lo_all, hi_all = min(m[0] for m in maps), max(m[1] for m in maps)

    def read_str(ptr: int, n: int) -> str:
        if not (lo_all <= ptr < hi_all) or n > 200:
            raise ValueError("not a string header")
        return ctypes.string_at(ptr, n).decode()

    def string_array_at(addr: int, count: int) -> list[str]:
        out = []
        for i in range(count):
            ptr, n = struct.unpack("<QQ", ctypes.string_at(addr + 16 * i, 16))
            out.append("" if n == 0 else read_str(ptr, n))
        return out

    def header_addrs(s: str) -> Iterator[int]:
        for a in _find_all(maps, s.encode(), _is_data):
            yield from _find_all(maps, struct.pack("<QQ", a, len(s)), _may_hold_pointers)

    single = None
    for h in header_addrs(first_single):
        try:
            cand = string_array_at(h - 16, n_single)
        except ValueError:
            continue
        if cand[0] == "" and cand[3] == "s.whatsapp.net":
            single = cand
            break

    double = None
    for h in header_addrs(first_double):
        for sh in _find_all(maps, struct.pack("<Q", h), _may_hold_pointers):
            hdrs = [struct.unpack("<QQQ", ctypes.string_at(sh + 24 * d, 24)) for d in range(n_dicts)]
            if all(n == c and 0 < n <= 256 for _, n, c in hdrs):
                try:
                    double = [string_array_at(p, n) for p, n, _ in hdrs]
                    break
                except ValueError:
                    continue
        if double:
            break

    if single is None or double is None:
        raise RuntimeError("token tables not found in " + SO_NAME)
    return single, double


class Tokens:
    """Token dictionaries (DictVersion 3) with reverse indexes for encoding."""

    def __init__(self, single: list[str], double: list[list[str]]) -> None:
        self.single = single
        self.double = double
        self.single_idx = {t: i for i, t in enumerate(single) if t}
        self.double_idx = {t: (d, i) for d, ts in enumerate(double) for i, t in enumerate(ts)}

    @classmethod
    def from_library(cls) -> Tokens:
        """Read the tables from the neonize library loaded in this process (loads it if needed)."""
        import neonize.client  # noqa: F401  (loads the Go library)

        return cls(*extract_tokens())

    @classmethod
    def from_token_go(cls, path: str) -> Tokens:
        """Parse whatsmeow's ``binary/token/token.go`` (to cross-check the extraction)."""
        with open(path, encoding="utf-8") as f:
            src = f.read()
        lit = re.compile(r'"((?:[^"\\]|\\.)*)"')
        m1 = re.search(r"SingleByteTokens = \[\.\.\.\]string\{(.*?)\}\n", src, re.S)
        m2 = re.search(r"DoubleByteTokens = \[\.\.\.\]\[\]string\{\n(.*?)\n\t\}\n", src, re.S)
        if m1 is None or m2 is None:
            raise ValueError(f"no token tables in {path}")
        single = lit.findall(m1.group(1))
        double = [lit.findall(line) for line in m2.group(1).split("\n") if line.strip()]
        return cls(single, double)
