"""Training crops of super-resolution stages: where they land and what they cut."""

from __future__ import annotations

import pytest
import torch

from vidsynth.training.crops import crop_corners, take_crops


def test_focused_crops_centre_on_the_detail_on_the_grid():
    interest = torch.zeros(3, 64, 64)
    interest[0, 40, 50] = 1.0  # one pixel of work: the crop must hold it
    interest[1, 2, 3] = 1.0  # near the corner: the crop is pushed inside the frame
    interest[2, 63, 63] = 1.0
    gen = torch.Generator().manual_seed(0)
    corners = crop_corners(interest, 16, align=4, focus=1.0, generator=gen)
    assert corners == [(32, 40), (0, 0), (48, 48)]
    for (top, left), (y, x) in zip(corners, [(40, 50), (2, 3), (63, 63)], strict=True):
        assert top % 4 == 0 and left % 4 == 0
        assert top <= y < top + 16 and left <= x < left + 16


def test_unfocused_crops_are_uniform_over_the_frame():
    interest = torch.zeros(400, 32, 32)
    interest[:, 0, 0] = 1.0  # ignored with focus 0
    corners = crop_corners(interest, 8, align=4, focus=0.0, generator=torch.Generator())
    tops = {t for t, _ in corners}
    lefts = {le for _, le in corners}
    assert tops == lefts == {0, 4, 8, 12, 16, 20, 24}  # every aligned position, none outside


def test_no_detail_falls_back_to_uniform_crops():
    corners = crop_corners(torch.zeros(50, 32, 32), 16, align=8, focus=1.0)
    assert {c for c in corners} <= {(t, le) for t in (0, 8, 16) for le in (0, 8, 16)}
    assert len(set(corners)) > 1


def test_focus_is_the_share_of_centred_crops():
    interest = torch.zeros(2000, 64, 64)
    interest[:, 60, 60] = 1.0
    corners = crop_corners(interest, 16, focus=0.75, generator=torch.Generator().manual_seed(1))
    share = sum(c == (48, 48) for c in corners) / len(corners)
    assert 0.70 < share < 0.81  # 0.75 centred (all at (48, 48)), plus uniform hits there


def test_a_crop_larger_than_the_frame_is_refused():
    with pytest.raises(ValueError, match="does not fit"):
        crop_corners(torch.zeros(1, 8, 8), 16)


def test_crops_of_a_coarser_grid_cover_the_same_window():
    high = torch.arange(2 * 1 * 2 * 16 * 16, dtype=torch.float32).reshape(2, 1, 2, 16, 16)
    low = high[..., ::4, ::4]  # the same image on a 4× coarser grid
    corners = [(4, 8), (0, 12)]
    hi, lo = take_crops(high, corners, 4), take_crops(low, corners, 4, scale=4)
    assert hi.shape == (2, 1, 2, 4, 4) and lo.shape == (2, 1, 2, 1, 1)
    assert torch.equal(hi[:, :, :, :1, :1], lo)
    assert torch.equal(hi[1, 0, 0], high[1, 0, 0, 0:4, 12:16])
