"""Seeded Gaussian noise: one generator per sample, so a video depends only on its seed."""

from __future__ import annotations

import random
from collections.abc import Sequence

import torch

from vidsynth.errors import InvalidParameter

MAX_SEED = 2**63 - 1


def random_seed() -> int:
    """A fresh seed from the OS entropy pool, small enough to type back on a command line."""
    return random.SystemRandom().randrange(0, 2**32)


def resolve_seed(seed: int | None) -> int:
    """`None` or a negative seed means "pick one"; the seed is returned so it can be reported."""
    if seed is None or seed < 0:
        return random_seed()
    if seed > MAX_SEED:
        raise InvalidParameter(f"seed must be at most {MAX_SEED}, got {seed}")
    return int(seed)


def derive_seed(seed: int, stream: int) -> int:
    """The seed of another random stream of one clip (a cascade stage, an augmentation noise).

    Reusing one seed for noises of different shapes would correlate them (their first elements
    coincide); a SeedSequence hash of (seed, stream) gives independent streams, and the result
    is still a pure function of the clip's seed.
    """
    import numpy as np

    state = np.random.SeedSequence([int(seed), int(stream)]).generate_state(1, np.uint64)[0]
    return int(state) >> 1  # at most MAX_SEED


def seeded_noise(
    shape: Sequence[int],
    seeds: Sequence[int],
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Gaussian noise of `shape` = (B, ...), row `i` drawn from its own generator seeded `seeds[i]`.

    Drawn on the CPU in fp32 and then moved, so the same seed gives the same video on any
    device and at any batch size (as in EDM2's per-sample generators).
    """
    if len(seeds) != shape[0]:
        raise ValueError(f"need one seed per sample: {len(seeds)} seeds for batch {shape[0]}")
    rows = []
    for seed in seeds:
        gen = torch.Generator(device="cpu").manual_seed(int(seed))
        rows.append(torch.randn(tuple(shape[1:]), generator=gen, dtype=torch.float32))
    return torch.stack(rows).to(device=device, dtype=dtype)
