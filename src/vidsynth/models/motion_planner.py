"""A motion planner: reads from a caption's token states how its object travels.

Text-to-video with a planned layout, as LLM-grounded video diffusion (Lian et al. 2023) plans
boxes with a language model before drawing: here a small network on the frozen text encoder's
token states picks the clip's motion from a codebook (the world's: four directions at three
speeds, growing, shrinking, rotating, and standing still), and the UNet is given its first
frame animated by that motion (``first_frame.warp_frames``).

Why it exists: the shapes model, trained for 12k steps, drew "moving left" and "moving right"
alike (its denoising loss did not change when the word was swapped, while it did for "growing"
and "shrinking"; issue 3's notes). A classifier on the token states learns the direction words
in seconds. Attention pooling lets it weigh the one word that names the motion instead of a
mean over a dozen tokens.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from vidsynth.models.records import load_with_record
from vidsynth.models.text_encoder import sentence_embedding


class MotionPlanner(ModelMixin, ConfigMixin):
    """Token states (B, L, D) → logits (B, S, K) over `velocities` for each of S `slots`, K
    motions per frame at `fps`: (vx, vy) in frame sides, and optionally the size factor's
    change and the rotation in degrees, clockwise (``first_frame.motion_guide``'s rows;
    planners before these had the velocity only). Padding tokens (all zeros) are ignored.

    With `colours` (the world's palette, RGB in [0, 1]) slot k reads the k-th object the
    caption names: its motion and its colour, or that there is no k-th object (logits (B, S,
    len(colours) + 1), the last "none"). The colour is how the pipeline finds that object's
    pixels in the first frame (``first_frame.colour_masks``). Slots tell first from second
    by a learned position embedding of the tokens; each pools them by its own attention.
    (A planner asked one colour at a time, the colour as a bilinear query, did not learn to
    bind it to the motion: 53-59% of two-object prompts in 800 steps; slots by order of
    mention got 96 objects of 96: issue 3's notes.) Such a planner has one more pooling in
    front, without positions, for the motion of a caption's lone object: positions learned on
    training captions mislead on sentences built otherwise (42 of 64 paraphrases read right
    by the first slot, against 53 without positions).

    With `shapes` (the world's shape names) each pooling also reads its object's shape
    (``shape_logits``), which a shape reader checks the drawn first frames for
    (``models.shape_reader``). With `name_weight` too, a lone object's shape reading adds
    `name_weight` × the cosine of the caption's sentence embedding with each shape's name's
    (zero-shot, as CLIP reads a class by its name): the planner learns shape words from the
    few the training captions use, while the frozen encoder was trained on a billion sentence
    pairs to place "a ball" near "a circle". (Of val1's and val2's paraphrases, the planner
    alone read 54 and 52 of 64 shapes right; with the names at weight 150, 56 and 57.)
    """

    config_name = "config.json"

    @register_to_config
    def __init__(
        self,
        velocities: list[list[float]],
        hidden_size: int = 384,
        width: int = 128,
        heads: int = 4,
        fps: float = 8.0,
        slots: int = 1,
        colours: list[list[float]] | None = None,
        max_length: int = 64,
        shapes: list[str] | None = None,
        name_weight: float | None = None,
    ) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not a multiple of heads {heads}")
        if slots > 1 and not colours:
            raise ValueError("a planner with several slots needs the colours that tell them apart")
        if name_weight is not None and (not shapes or name_weight < 0):
            raise ValueError("name_weight needs the planner's shapes and is at least 0")
        self.norm = nn.LayerNorm(hidden_size)
        # one attention query per head and pooling: one per slot, and one for a lone object
        self.score = nn.Linear(hidden_size, heads * self.poolings(slots))
        self.value = nn.Linear(hidden_size, width)
        self.head = nn.Sequential(
            nn.Linear(width, width), nn.SiLU(), nn.Linear(width, len(velocities))
        )
        if slots > 1:
            self.position = nn.Embedding(max_length, hidden_size)
            nn.init.normal_(self.position.weight, std=0.02)
        if colours:
            self.colour = nn.Sequential(
                nn.Linear(width, width), nn.SiLU(), nn.Linear(width, len(colours) + 1)
            )
        if shapes:
            self.shape = nn.Sequential(
                nn.Linear(width, width), nn.SiLU(), nn.Linear(width, len(shapes))
            )
        codebook = torch.tensor(velocities, dtype=torch.float32).reshape(len(velocities), -1)
        codebook = nn.functional.pad(codebook, (0, 4 - codebook.shape[1]))
        self.register_buffer("codebook", codebook, persistent=False)

    @staticmethod
    def poolings(slots: int) -> int:
        """How many poolings a planner of `slots` has: one, or a lone object's and a slot's."""
        return 1 if slots == 1 else slots + 1

    def forward(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Motion logits (B, P, K) and colour logits (B, S, len(colours) + 1) (None without
        colours), P = `poolings`: a planner with several slots gives the lone object's motion
        first, then each slot's."""
        pooled = self.pool(context)
        colour = self.colour(pooled[:, 1:]) if self.config.colours else None
        return self.head(pooled), colour

    def shape_logits(
        self, context: torch.Tensor, shape_names: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Shape logits (B, P, len(shapes)), the poolings in ``forward``'s order (a planner
        with `shapes` only). With `shape_names`, the token states (len(shapes), L, D) of each
        shape's name alone, and a `name_weight`, the lone object's are log-probabilities plus
        `name_weight` × the caption's likeness to each name (the class docstring); a slot's
        are not, since a caption of two objects is like both their names."""
        if not self.config.shapes:
            raise ValueError("this planner reads no shapes (it was made without `shapes`)")
        logits = self.shape(self.pool(context))
        weight = self.config.name_weight
        if shape_names is None or not weight:
            return logits
        likeness = sentence_embedding(context) @ sentence_embedding(shape_names).T  # (B, K)
        lone = logits[:, :1].log_softmax(dim=-1) + weight * likeness[:, None]
        return torch.cat([lone, logits[:, 1:]], dim=1)

    def pool(self, context: torch.Tensor) -> torch.Tensor:
        """Each pooling's summary (B, P, width) of token states (B, L, D)."""
        b, length, _ = context.shape
        heads, slots = self.config.heads, self.config.slots
        present = context.abs().amax(dim=-1) > 0  # (B, L): zero-padded tokens are absent
        x = context.to(self.norm.weight.dtype)
        scores = self.score(self.norm(x)).view(b, length, -1, heads)
        values = self.value(self.norm(x))
        if slots > 1:  # the slots' poolings see where each token is
            if length > self.config.max_length:
                raise ValueError(
                    f"{length} tokens: this planner places at most {self.config.max_length}"
                )
            placed = self.norm(x + self.position.weight[:length])
            scores = torch.cat([scores[:, :, :1], self.score(placed).view_as(scores)[:, :, 1:]], 2)
            values = torch.stack([values, self.value(placed)], dim=2)  # (B, L, 2, width)
        else:
            values = values[:, :, None]
        weights = scores.masked_fill(~present[..., None, None], float("-inf")).softmax(dim=1)
        values = values.view(b, length, values.shape[2], heads, -1)
        lone = torch.einsum("blh,blhw->bhw", weights[:, :, 0], values[:, :, 0])[:, None]
        pooled = lone.flatten(2)  # (B, 1, width)
        if slots > 1:
            each = torch.einsum("blsh,blhw->bshw", weights[:, :, 1:], values[:, :, 1])
            pooled = torch.cat([pooled, each.flatten(2)], dim=1)  # (B, 1 + S, width)
        return pooled

    @torch.no_grad()
    def objects(
        self, context: torch.Tensor, fps: float | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Each object's most likely motion (B, S, 4), per frame at `fps` (default: the
        planner's own; motion is a rate in time, so a higher frame rate moves less per frame),
        and its colour (B, S), an index in `colours`, -1 past the objects the caption names
        (and everywhere for a planner without colours). A caption names one object unless
        its second slot finds a colour other than the first's (a world scene's objects never
        share one); a lone object's motion is read without positions."""
        logits, colour = self(context)
        rows = self.codebook.to(context.device)[logits.argmax(dim=-1)].cpu()
        rows = rows * (self.config.fps / (fps or self.config.fps))
        if colour is None:
            return rows, torch.full(logits.shape[:2], -1, dtype=torch.long)
        names = colour.argmax(dim=-1).cpu()
        names = names.masked_fill(names == len(self.config.colours), -1)
        motion = rows[:, 1:].clone()
        if names.shape[1] > 1:
            lone = (names[:, 1] < 0) | (names[:, 1] == names[:, 0])
            motion[lone, 0], motion[lone, 1:] = rows[lone, 0], 0.0
            names[lone, 1:] = -1
        return motion, names

    @torch.no_grad()
    def object_shapes(
        self,
        context: torch.Tensor,
        names: torch.Tensor | None = None,
        shape_names: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Each named object's most likely shape (B, S), an index in `shapes`, -1 past the
        objects the caption names (as ``objects`` counts them: `names`, its colours, where the
        caller has them already); a lone object's shape is read without positions, as its
        motion is, and by the shapes' names where given (``shape_logits``)."""
        shape = self.shape_logits(context, shape_names).argmax(dim=-1).cpu()  # (B, P)
        if names is None:
            _, names = self.objects(context)
        if shape.shape[1] == 1:  # one pooling: the lone object's
            return shape.masked_fill(names < 0, -1)
        out = shape[:, 1:].clone()
        lone = (names[:, 1:] < 0).all(dim=1)
        out[lone, 0] = shape[lone, 0]
        return out.masked_fill(names < 0, -1)

    @torch.no_grad()
    def motion(self, context: torch.Tensor, fps: float | None = None) -> torch.Tensor:
        """The first object's most likely motion (B, 4), per frame at `fps` (``objects``)."""
        return self.objects(context, fps)[0][:, 0]


def load_planner(folder: str | Path) -> MotionPlanner:
    """A saved planner, in float32 (it is tiny), with ``record``: how it was trained (its
    training.json, kept so that a model exported with it says so too)."""
    return load_with_record(MotionPlanner, folder)
