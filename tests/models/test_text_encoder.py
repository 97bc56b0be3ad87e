"""Text encoder helpers that need no pretrained weights."""

from __future__ import annotations

import torch

from vidsynth.models.text_encoder import sentence_embedding


def test_sentence_embedding_is_the_unit_mean_of_the_present_tokens() -> None:
    states = torch.tensor([[[3.0, 0.0], [1.0, 2.0], [0.0, 0.0]]])  # the last token is padding
    assert torch.allclose(sentence_embedding(states), torch.tensor([[2.0, 1.0]]) / 5**0.5)
    assert torch.isfinite(sentence_embedding(torch.zeros(1, 3, 2))).all()  # nothing present
