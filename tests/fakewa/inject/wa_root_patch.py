"""Swap whatsmeow's pinned Noise root key (``WACertPubKey``) in the loaded neonize library.

whatsmeow only accepts a server whose Noise certificate chain is signed by WhatsApp's root
key, compiled into the library. For tests against the fake server that key is overwritten,
in this process's memory only, with the fake server's root. The library file on disk is not
touched. Standard library only, so this also works inside the application's container image.

Call after neonize has been imported (that loads the library). Linux only (/proc/self/maps).
"""

from __future__ import annotations

import ctypes

REAL_WA_ROOT = bytes.fromhex("142375574d0a587166aae71ebe516437c4a28b73e3695c6ce1f7f9545da8ee6b")
SO_NAME = "neonize-linux-amd64.so"


def patch_wa_cert_root(new_pub: bytes, old_pub: bytes = REAL_WA_ROOT) -> int:
    """Replace ``old_pub`` by ``new_pub`` in the library's writable data; returns the address.

    Requires exactly one match: fails loudly if the key is not found (already patched, or a
    different neonize build) or found more than once.
    """
    if len(new_pub) != 32 or len(old_pub) != 32:
        raise ValueError("Curve25519 public keys are 32 bytes")
    hits = []
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) < 6 or not parts[5].endswith(SO_NAME) or not parts[1].startswith("rw"):
                continue
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            buf = ctypes.string_at(lo, hi - lo)
            i = buf.find(old_pub)
            while i >= 0:
                hits.append(lo + i)
                i = buf.find(old_pub, i + 1)
    if len(hits) != 1:
        raise RuntimeError(
            f"expected exactly one WACertPubKey in the writable mappings of {SO_NAME}, found {len(hits)}"
        )
    ctypes.memmove(hits[0], new_pub, 32)
    if ctypes.string_at(hits[0], 32) != new_pub:
        raise RuntimeError("WACertPubKey patch did not stick")
    return hits[0]
