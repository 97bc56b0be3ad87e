"""The first-frame input: the first frame's latents on every frame, and a flag channel."""

from __future__ import annotations

import pytest
import torch

from vidsynth.models.first_frame import first_frame_channels, first_frame_concat


def test_the_first_frame_is_repeated_over_the_frames_and_frame_0_flagged() -> None:
    like = torch.randn(3, 4, 5, 6, 7)
    first = torch.randn(3, 4, 6, 7)
    concat = first_frame_concat(first, like)
    assert concat.shape == (3, first_frame_channels(4), 5, 6, 7) == (3, 5, 5, 6, 7)
    for f in range(5):
        assert torch.equal(concat[:, :4, f], first)
    # the flag marks frame 0 (the start of the clip), and only it
    assert (concat[:, 4, 0] == 1).all() and not concat[:, 4, 1:].any()


def test_no_first_frame_is_all_zeros_per_clip_or_for_all() -> None:
    like = torch.randn(3, 4, 2, 6, 6)
    first = torch.randn(3, 4, 6, 6) + 5  # never zero
    assert not first_frame_concat(None, like).any()
    kept = first_frame_concat(first, like, keep=torch.tensor([True, False, True]))
    assert not kept[1].any()
    assert kept[0, :4].all() and kept[2, :4].all() and kept[[0, 2], 4, 0].all()


def test_a_first_frame_of_the_wrong_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="first frame latents must be"):
        first_frame_concat(torch.randn(2, 4, 6, 6), torch.randn(2, 4, 3, 8, 8))
