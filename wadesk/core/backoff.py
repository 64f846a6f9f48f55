"""Exponential backoff with jitter."""

from __future__ import annotations

import random


def backoff_delay(
    attempt: int,
    *,
    base: float = 1.0,
    cap: float = 60.0,
    jitter: float = 0.2,
    rng: random.Random | None = None,
) -> float:
    """Delay before try number ``attempt`` (1-based): base doubling up to cap, +-jitter.

    1 s, 2 s, 4 s, ... 60 s, each scattered by up to 20 % so that many clients that lost
    the network together do not come back in lockstep; never above ``cap``.
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    nominal = min(cap, base * 2 ** min(attempt - 1, 62))
    spread = (rng or random).uniform(1 - jitter, 1 + jitter)
    return min(cap, nominal * spread)
