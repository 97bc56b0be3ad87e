"""Captions for shapes-world scenes: canonical, varied training wording, held-out paraphrases.

Canonical form (docs/world.md), one object::

    a [small|large] {colour} {shape} {motion} [on a {background} background]

with the motion words ``moving left|right|up|down`` (speed modifier after the direction:
``moving left slowly`` / ``moving left quickly``; normal speed is unnamed), ``standing
still``, ``growing``, ``shrinking``, ``rotating``. The article is "an" before a vowel
("an orange star"); objects of a level-2 clip are joined by " and ". A black background is
left out unless ``name_black`` is set, since an unnamed background means black.

``random_caption`` draws from TRAIN_LEXICON only; ``eval_paraphrase`` always states each
object's motion with an EVAL_LEXICON phrase that contains a word TRAIN_LEXICON never
uses, so no held-out paraphrase can ever come out of the training generator.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np

from .spec import (
    BACKGROUNDS,
    DEFAULT_BACKGROUND,
    DEFAULT_SIZE,
    PALETTE,
    ObjectSpec,
    SceneSpec,
    is_translation,
)

# ---------------------------------------------------------------------------------------
# canonical


def _article(next_word: str) -> str:
    return "an" if next_word[:1] in "aeiou" else "a"


def canonical_motion(obj: ObjectSpec) -> str:
    """Canonical motion words of one object, e.g. ``moving left slowly``."""
    if is_translation(obj.motion):
        speed = "" if obj.speed == "normal" else f" {obj.speed}"
        return f"moving {obj.motion}{speed}"
    if obj.motion == "still":
        return "standing still"
    return obj.motion


def canonical_object(obj: ObjectSpec) -> str:
    """Canonical phrase of one object, e.g. ``a large red circle moving right``."""
    words = [] if obj.size == DEFAULT_SIZE else [obj.size]
    words += [obj.colour, obj.shape, canonical_motion(obj)]
    return " ".join([_article(words[0]), *words])


def canonical_caption(scene: SceneSpec, name_black: bool = False) -> str:
    """The canonical caption of ``scene`` (black background named only if ``name_black``)."""
    text = " and ".join(canonical_object(o) for o in scene.objects)
    if scene.background != DEFAULT_BACKGROUND or name_black:
        text += f" on a {scene.background} background"
    return text


# ---------------------------------------------------------------------------------------
# lexicons: every word either generator can emit comes from one of these tables

Lexicon = Mapping[str, Mapping[str, Sequence[str]]]

TRAIN_LEXICON: Lexicon = {
    "shape": {
        "circle": ("circle", "circle", "ball", "disk", "disc", "dot"),
        "square": ("square", "square", "box", "block"),
        "triangle": ("triangle",),
        "star": ("star",),
    },
    "size": {"small": ("small", "small", "tiny", "little"), "large": ("large", "large", "big")},
    # {v}: a translation verb, {d}: a direction phrase, {s}: a speed word
    "move_part": {"verb": ("moving", "moving", "sliding", "drifting", "travelling", "traveling")},
    "move_fin": {"verb": ("moves", "moves", "slides", "drifts", "travels")},
    "direction": {
        "left": ("left", "to the left", "leftwards"),
        "right": ("right", "to the right", "rightwards"),
        "up": ("up", "upwards"),
        "down": ("down", "downwards"),
    },
    "speed": {"slowly": ("slowly", "slowly", "slow"), "quickly": ("quickly", "quickly", "fast")},
    "speed_order": {
        "adverb": ("{v} {d} {s}", "{v} {s} {d}", "{s} {v} {d}"),
        # "fast"/"slow" read badly before the verb
        "plain": ("{v} {d} {s}", "{v} {s} {d}"),
    },
    "still_part": {"still": ("standing still", "staying still", "not moving", "sitting still")},
    "still_fin": {"still": ("stands still", "stays still", "does not move", "sits still")},
    "change_part": {
        "growing": ("growing", "growing", "getting bigger", "expanding"),
        "shrinking": ("shrinking", "shrinking", "getting smaller"),
        "rotating": ("rotating", "rotating", "spinning", "turning", "rotating in place"),
    },
    "change_fin": {
        "growing": ("grows", "gets bigger", "expands"),
        "shrinking": ("shrinks", "gets smaller"),
        "rotating": ("rotates", "spins", "turns", "spins in place"),
    },
    "article": {"any": ("a", "a", "the", "one", "")},
    # {np}: noun phrase, {mp}: participle motion phrase, {mf}: finite motion phrase;
    # "opening" templates only start a caption or a clause
    "object": {"phrase": ("{np} {mp}", "{np} {mp}", "{np} {mf}"), "opening": ("{mp}, {np}",)},
    "background": {
        "suffix": (
            "on a {bg} background",
            "against a {bg} background",
            "in front of a {bg} background",
            "on a plain {bg} background",
        ),
        "prefix": ("on a {bg} background,", "against a {bg} background,", "{bg} background:"),
    },
    "join": {"phrase": (" and ", " and ", ", and "), "clause": ("; ",)},
    "gray": {"gray": ("gray", "grey")},
}

EVAL_LEXICON: Lexicon = {
    "shape": {
        "circle": ("circle", "orb", "round shape"),
        "square": ("square", "square tile", "four-sided shape"),
        "triangle": ("triangle", "three-sided shape"),
        "star": ("star", "five-pointed star"),
    },
    "size": {"small": ("miniature", "teeny"), "large": ("oversized", "giant")},
    "move_part": {"verb": ("heading", "going", "gliding", "shifting")},
    "move_fin": {"verb": ("heads", "goes", "glides", "shifts")},
    "direction": {
        "left": ("left", "toward the left", "leftward"),
        "right": ("right", "toward the right", "rightward"),
        "up": ("up", "toward the top", "upward"),
        "down": ("down", "toward the bottom", "downward"),
    },
    "speed": {
        "slowly": ("unhurriedly", "at a leisurely pace", "gently"),
        "quickly": ("swiftly", "rapidly", "at high speed"),
    },
    # adjectival "rightward-moving" (normal speed only)
    "speed_order": {"adverb": ("{v} {d} {s}", "{s} {v} {d}"), "plain": ("{v} {d} {s}",)},
    "direction_adj": {
        "left": ("leftward",),
        "right": ("rightward",),
        "up": ("upward",),
        "down": ("downward",),
    },
    "still_part": {"still": ("motionless", "stationary", "at rest", "frozen in place")},
    "still_fin": {"still": ("remains motionless", "is stationary", "rests in place")},
    "change_part": {
        "growing": ("swelling", "enlarging", "increasing in size", "ballooning"),
        "shrinking": ("contracting", "dwindling", "decreasing in size", "becoming tinier"),
        "rotating": ("revolving", "twirling", "whirling", "pivoting in place"),
    },
    "change_fin": {
        "growing": ("swells", "enlarges", "increases in size"),
        "shrinking": ("contracts", "dwindles", "decreases in size"),
        "rotating": ("revolves", "twirls", "whirls"),
    },
    "article": {"any": ("a", "a", "one")},
    # {size}/{colour}/{shape} separately so the structures differ from training
    "object": {
        "phrase": ("{art} {sizec}{shape} {mp}", "{art} {sizes}{shape}, {colour}, {mp}"),
        "opening": (
            "there is {art} {sizec}{shape} that {mf}",
            "you can see {art} {sizec}{shape} {mp}",
        ),
        "adjectival": ("{art} {dadj}-moving {sizec}{shape}",),
    },
    "background": {
        "suffix": ("set against {bg}", "with a {bg} backdrop", "over a plain {bg} backdrop"),
        "prefix": ("the backdrop is {bg}.", "against a {bg} backdrop,"),
    },
    "join": {"phrase": (", as well as ", ", together with "), "clause": (" while ", ". also ")},
    "gray": {"gray": ("gray", "grey")},
}

# Lexicon groups that hold motion phrases (participle and finite forms).
_MOTION_GROUPS = ("move_part", "move_fin", "still_part", "still_fin", "change_part", "change_fin")


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _article_for(rng: np.random.Generator, lex: Lexicon, next_word: str) -> str:
    """A random article from ``lex`` ("" allowed), "a" turned into "an" where needed."""
    art = _pick(rng, lex["article"]["any"])
    return _article(next_word) if art == "a" else art


def _with_article(rng: np.random.Generator, lex: Lexicon, phrase: str) -> str:
    art = _article_for(rng, lex, phrase)
    return f"{art} {phrase}" if art else phrase


def _translation_phrase(rng: np.random.Generator, lex: Lexicon, obj: ObjectSpec, group: str) -> str:
    verb = _pick(rng, lex[group]["verb"])
    direction = _pick(rng, lex["direction"][obj.motion])
    if obj.speed == "normal":
        return f"{verb} {direction}"
    speed = _pick(rng, lex["speed"][obj.speed])
    # only single-word "-ly" adverbs may go before the verb ("slowly moving left")
    adverb = speed.endswith("ly") and " " not in speed
    template = _pick(rng, lex["speed_order"]["adverb" if adverb else "plain"])
    return template.format(v=verb, d=direction, s=speed)


def _motion_phrase(rng: np.random.Generator, lex: Lexicon, obj: ObjectSpec, finite: bool) -> str:
    form = "fin" if finite else "part"
    if is_translation(obj.motion):
        return _translation_phrase(rng, lex, obj, f"move_{form}")
    if obj.motion == "still":
        return _pick(rng, lex[f"still_{form}"]["still"])
    return _pick(rng, lex[f"change_{form}"][obj.motion])


def _background_name(rng: np.random.Generator, lex: Lexicon, background: str) -> str:
    return _pick(rng, lex["gray"]["gray"]) if background == "gray" else background


def _assemble(
    rng: np.random.Generator,
    lex: Lexicon,
    scene: SceneSpec,
    make_object: Callable[[np.random.Generator, ObjectSpec, bool], str],
) -> str:
    """Join object phrases in random order and add the background phrase somewhere."""
    kind = _pick(rng, ("phrase", "clause"))
    order = rng.permutation(len(scene.objects))
    # an object may open a clause when it comes first or after a clause joiner
    parts = [
        make_object(rng, scene.objects[i], n == 0 or kind == "clause") for n, i in enumerate(order)
    ]
    text = _pick(rng, lex["join"][kind]).join(parts)
    # an unnamed background means black, so black is named only half of the time
    if scene.background != DEFAULT_BACKGROUND or rng.random() < 0.5:
        bg = _background_name(rng, lex, scene.background)
        if rng.random() < 0.6:
            text = f"{text} {_pick(rng, lex['background']['suffix']).format(bg=bg)}"
        else:
            text = f"{_pick(rng, lex['background']['prefix']).format(bg=bg)} {text}"
    if rng.random() < 0.3:
        text = text[0].upper() + text[1:]
    if rng.random() < 0.3:
        text += "."
    return text


def _templates(lex: Lexicon, opening: bool) -> list[str]:
    table = lex["object"]
    return [*table["phrase"], *table["opening"]] if opening else list(table["phrase"])


def _train_object(rng: np.random.Generator, obj: ObjectSpec, opening: bool) -> str:
    lex = TRAIN_LEXICON
    words = [] if obj.size == DEFAULT_SIZE else [_pick(rng, lex["size"][obj.size])]
    words += [obj.colour, _pick(rng, lex["shape"][obj.shape])]
    np_ = _with_article(rng, lex, " ".join(words))
    template = _pick(rng, _templates(lex, opening))
    return template.format(
        np=np_,
        mp=_motion_phrase(rng, lex, obj, finite=False),
        mf=_motion_phrase(rng, lex, obj, finite=True),
    )


def random_caption(scene: SceneSpec, rng: np.random.Generator) -> str:
    """A training caption of ``scene`` with randomly varied wording, order and articles."""
    return _assemble(rng, TRAIN_LEXICON, scene, _train_object)


def _eval_object(rng: np.random.Generator, obj: ObjectSpec, opening: bool) -> str:
    lex = EVAL_LEXICON
    size = "" if obj.size == DEFAULT_SIZE else _pick(rng, lex["size"][obj.size]) + " "
    fields = {
        "sizec": f"{size}{obj.colour} ",
        "sizes": size,
        "colour": obj.colour,
        "shape": _pick(rng, lex["shape"][obj.shape]),
        "mp": _motion_phrase(rng, lex, obj, finite=False),
        "mf": _motion_phrase(rng, lex, obj, finite=True),
    }
    templates = _templates(lex, opening)
    if is_translation(obj.motion) and obj.speed == "normal":
        fields["dadj"] = _pick(rng, lex["direction_adj"][obj.motion])
        templates += list(lex["object"]["adjectival"])
    template = _pick(rng, templates)
    # the article agrees with whatever word follows it in this template
    next_word = template.split("{art} ", 1)[1].format(**fields).split()[0]
    return template.format(**fields, art=_article_for(rng, lex, next_word))


def eval_paraphrase(scene: SceneSpec, rng: np.random.Generator) -> str:
    """A held-out paraphrase of ``scene``: wording ``random_caption`` never produces."""
    return _assemble(rng, EVAL_LEXICON, scene, _eval_object)


# ---------------------------------------------------------------------------------------
# vocabulary checks


def words(text: str) -> list[str]:
    """Lower-case word tokens of ``text`` (letters only; hyphens and punctuation split)."""
    return re.findall(r"[a-z]+", text.lower())


def _strings(lex: Lexicon) -> Iterator[str]:
    for table in lex.values():
        for options in table.values():
            yield from options


def lexicon_words(lex: Lexicon) -> set[str]:
    """Every word a lexicon's phrases and templates contain (placeholders excluded)."""
    return {w for s in _strings(lex) for w in words(re.sub(r"\{[a-z]+\}", " ", s))}


def training_vocabulary() -> set[str]:
    """Every word ``random_caption`` can emit: its lexicon plus the scene vocabulary."""
    return lexicon_words(TRAIN_LEXICON) | set(PALETTE) | set(BACKGROUNDS) | {"an"}


def eval_motion_phrases() -> Iterator[str]:
    """Every motion phrase (and adjectival direction) the held-out generator can use."""
    lex = EVAL_LEXICON
    for group in _MOTION_GROUPS:
        for options in lex[group].values():
            yield from options
    for options in lex["direction_adj"].values():
        yield from options
