"""The frame scorer: a caption's and an image's embeddings, each clip scored on its own."""

from __future__ import annotations

import pytest
import torch

from vidsynth.models.frame_scorer import FrameScorer, load_scorer


def _tiny(**kw) -> FrameScorer:
    torch.manual_seed(0)
    return FrameScorer(
        hidden_size=16, embed_dim=8, heads=2, image_size=16, channels=(4, 8), groups=2, **kw
    ).eval()


def test_each_image_is_scored_with_its_own_caption_whatever_the_batch() -> None:
    scorer = _tiny()
    images, context = torch.rand(3, 3, 16, 16), torch.randn(3, 5, 16)
    with torch.no_grad():
        together = scorer(images, context)
        alone = torch.cat([scorer(images[i : i + 1], context[i : i + 1]) for i in range(3)])
        table = scorer.logits(scorer.embed_image(images), scorer.embed_text(context))
    assert together.shape == (3,)
    assert torch.allclose(together, alone, atol=1e-5)
    assert torch.allclose(together, table.diagonal(), atol=1e-5)
    # the score is a scaled cosine: at most the scale
    assert (together.abs() <= scorer.scale.exp() + 1e-5).all()


def test_padding_tokens_are_ignored_and_other_sizes_resized() -> None:
    scorer = _tiny()
    image, context = torch.rand(1, 3, 16, 16), torch.randn(1, 5, 16)
    padded = torch.cat([context, torch.zeros(1, 4, 16)], dim=1)
    big = image.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)  # the same at 32×32
    with torch.no_grad():
        assert torch.allclose(scorer(image, context), scorer(image, padded), atol=1e-6)
        assert torch.allclose(scorer(image, context), scorer(big, context), atol=1e-5)


def test_saved_and_loaded_with_its_record(tmp_path) -> None:
    scorer = _tiny(candidates=3)
    scorer.save_pretrained(tmp_path / "scorer")
    (tmp_path / "scorer" / "training.json").write_text('{"steps": 7}')
    again = load_scorer(tmp_path / "scorer")
    assert again.config.candidates == 3 and again.record == {"steps": 7}
    image, context = torch.rand(2, 3, 16, 16), torch.randn(2, 5, 16)
    with torch.no_grad():
        assert torch.allclose(scorer(image, context), again(image, context))


def test_an_image_size_its_levels_cannot_halve_is_refused() -> None:
    with pytest.raises(ValueError, match="not divisible"):
        FrameScorer(image_size=24, channels=(4, 4, 4, 4))
