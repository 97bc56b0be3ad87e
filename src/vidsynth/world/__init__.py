"""The shapes world: procedurally rendered, captioned clips and a judge that scores videos.

docs/world.md is the contract; ``spec`` holds its vocabulary as data.
"""

from .captions import canonical_caption, eval_paraphrase, random_caption
from .judge import (
    ATTRIBUTES,
    CORE_ATTRIBUTES,
    DetectedObject,
    JudgeResult,
    ObjectJudgement,
    confusion,
    describe,
    detect,
    judge,
    score,
)
from .parse import parse_caption
from .renderer import object_coverage, render, render_clip
from .sampling import sample_scene
from .spec import (
    BACKGROUNDS,
    COLOURS,
    MOTIONS,
    PALETTE,
    SHAPES,
    SIZES,
    SPEEDS,
    ObjectSpec,
    SceneSpec,
)
from .target import ObjectTarget, SceneTarget

__all__ = [
    "ATTRIBUTES",
    "BACKGROUNDS",
    "COLOURS",
    "CORE_ATTRIBUTES",
    "MOTIONS",
    "PALETTE",
    "SHAPES",
    "SIZES",
    "SPEEDS",
    "DetectedObject",
    "JudgeResult",
    "ObjectJudgement",
    "ObjectSpec",
    "ObjectTarget",
    "SceneSpec",
    "SceneTarget",
    "canonical_caption",
    "confusion",
    "describe",
    "detect",
    "eval_paraphrase",
    "judge",
    "object_coverage",
    "parse_caption",
    "random_caption",
    "render",
    "render_clip",
    "sample_scene",
    "score",
]
