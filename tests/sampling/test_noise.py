import pytest
import torch

from vidsynth.errors import InvalidParameter
from vidsynth.sampling.noise import resolve_seed, seeded_noise


def test_row_depends_only_on_its_seed():
    one = seeded_noise((1, 4, 3, 5, 5), [7])
    many = seeded_noise((3, 4, 3, 5, 5), [1, 7, 2])
    assert torch.equal(one[0], many[1])
    assert not torch.equal(many[0], many[2])


def test_same_noise_in_any_dtype_up_to_rounding():
    a = seeded_noise((1, 2, 2, 4, 4), [3], dtype=torch.float32)
    b = seeded_noise((1, 2, 2, 4, 4), [3], dtype=torch.bfloat16)
    assert torch.allclose(a, b.float(), atol=0.05)


def test_seed_count_must_match_batch():
    with pytest.raises(ValueError, match="one seed per sample"):
        seeded_noise((2, 4, 1, 2, 2), [1])


def test_resolve_seed():
    assert resolve_seed(5) == 5
    assert 0 <= resolve_seed(None) < 2**32
    assert 0 <= resolve_seed(-1) < 2**32
    with pytest.raises(InvalidParameter, match="seed"):
        resolve_seed(2**64)


def test_derived_seeds_are_fixed_distinct_and_in_range():
    from vidsynth.sampling.noise import MAX_SEED, derive_seed

    assert derive_seed(7, 1) == derive_seed(7, 1)
    seeds = {derive_seed(s, k) for s in range(20) for k in range(5)}
    assert len(seeds) == 100 and all(0 <= s <= MAX_SEED for s in seeds)
    assert derive_seed(MAX_SEED, 3) <= MAX_SEED
