"""Score frames against a caption's target, seeing only the pixels.

The judge never looks at a scene spec; it segments the frames and measures what it sees:

1. Background: the colour most border pixels are closest to (black, white or gray).
2. Foreground: pixels far from the measured background colour, split per frame into
   connected components. Each pixel is labelled with the palette colour whose segment
   background -> colour it lies closest to (so anti-aliased edges count for their object),
   in a luma-weighted metric because codecs halve the chroma resolution. A colour is an
   object in a component if it has interior pixels there (all 8 neighbours share the
   label; thin edge junk has none); touching objects are split between their colours.
   Objects are the colours present in at least half of the frames.
3. Per object and frame, a soft coverage map (projection of each pixel onto the background
   -> colour segment) gives the area, the centroid (on the torus, so objects wrapping
   around the frame edge stay whole) and the angular harmonics
   ``M_k = sum(a r^2 e^{ik theta}) / sum(a r^2)`` around the centroid.
4. Shape: the harmonic magnitudes are rotation invariant; a triangle only has k = 3, 6, ..,
   a square k = 4, 8, .., a star k = 5, 10, .., a circle none, so |M3|, |M4|, |M5|
   (each relative to its value for the ideal shape) name the shape.
5. Motion: a centroid that travels is a translation (direction from the velocity, speed
   from its magnitude); otherwise a falling or rising area is shrinking or growing;
   otherwise a turning phase of the shape's own harmonic is rotating; otherwise still.
   Growth and size are fitted over the first 16 frames, the span growth is defined on;
   size is the start radius from the area at frame 0 and the detected shape.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from .spec import (
    BACKGROUNDS,
    BASE_FRAMES,
    PALETTE,
    SIZES,
    SPEEDS,
    UNIT_AREA,
    ObjectSpec,
)
from .target import ObjectTarget, SceneTarget

CORE_ATTRIBUTES: tuple[str, ...] = ("colour", "shape", "motion", "background")
EXTRA_ATTRIBUTES: tuple[str, ...] = ("size", "speed", "count")
ATTRIBUTES: tuple[str, ...] = CORE_ATTRIBUTES + EXTRA_ATTRIBUTES

_PALETTE_NAMES = tuple(PALETTE)
_PALETTE_RGB = np.array([PALETTE[c] for c in _PALETTE_NAMES], dtype=np.float32)
_BG_NAMES = tuple(BACKGROUNDS)
_BG_RGB = np.array([BACKGROUNDS[b] for b in _BG_NAMES], dtype=np.float32)

# --- thresholds (RGB distances are Euclidean on 0..255 channels) ---
# A pixel farther than this from the background is foreground. The weakest contrast in the
# world (purple on gray) is ~100, H.264 noise on flat areas is a few units.
FG_DISTANCE = 30.0
# Border pixels farther than this from every background colour do not vote for one.
BG_VOTE_DISTANCE = 40.0
# Palette colours closer than this to the background cannot be seen on it (white on white).
MIN_CONTRAST = 40.0
# A colour needs this many interior pixels (fraction of the frame) in a component to count.
MIN_SEED_FRACTION = 0.0005
# Components smaller than this fraction of the frame are noise.
MIN_AREA_FRACTION = 0.0008
# An object must be present in at least this fraction of the frames.
MIN_PRESENCE = 0.5
# Translation: centroid speed (frame sides per frame) above this; half the slow speed.
MIN_SPEED = 0.005
# Growing/shrinking: |change of log area| over a 16-frame span above this (ideal: 1.18).
MIN_LOG_AREA_CHANGE = 0.4
# Rotating: turning rate above this (ideal: 15 degrees per frame).
MIN_ROTATION_DEG = 5.0
# Shape: relative harmonic strength below this for all of k = 3, 4, 5 means a circle.
CIRCLE_MAX_HARMONIC = 0.35
# Frames whose area is at least this share of the largest are used for shape features.
SHAPE_AREA_SHARE = 0.6

_SHAPE_ORDER = {"triangle": 3, "square": 4, "star": 5}


@dataclass(frozen=True)
class DetectedObject:
    """What the judge saw of one object; ``features`` holds the raw measurements."""

    colour: str
    shape: str
    motion: str
    speed: str | None
    size: str
    frames_present: int
    features: dict[str, float] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class ObjectJudgement:
    """One target object, the detected object it was matched with and the verdicts."""

    target: ObjectTarget
    detected: DetectedObject | None
    checks: dict[str, bool]


@dataclass(frozen=True)
class JudgeResult:
    """Verdicts for one clip.

    ``checks`` maps each checked attribute to its verdicts (one per object for object
    attributes, one for "background" and "count"); size and speed are only checked where
    the target names them. ``all_correct`` covers the contract's attributes (colour, shape,
    motion, background); ``strict_correct`` every checked one.
    """

    objects: tuple[ObjectJudgement, ...]
    background: str
    target_background: str
    detected: tuple[DetectedObject, ...]
    checks: dict[str, list[bool]]

    @property
    def accuracy(self) -> dict[str, float]:
        """Fraction of passed verdicts per checked attribute."""
        return {k: sum(v) / len(v) for k, v in self.checks.items() if v}

    @property
    def all_correct(self) -> bool:
        """Colour, shape and motion of every object and the background are right."""
        return all(all(self.checks.get(a, [])) for a in CORE_ATTRIBUTES)

    @property
    def strict_correct(self) -> bool:
        """Every checked attribute (size, speed and object count too) is right."""
        return all(all(v) for v in self.checks.values())


# ---------------------------------------------------------------------------------------
# segmentation


def detect_background(frames: np.ndarray) -> tuple[str, np.ndarray]:
    """(name, measured RGB) of the background, voted by the border pixels of all frames."""
    _, h, w, _ = frames.shape
    ring = max(1, min(h, w) // 64)
    border = np.concatenate(
        [
            frames[:, :ring].reshape(-1, 3),
            frames[:, -ring:].reshape(-1, 3),
            frames[:, ring:-ring, :ring].reshape(-1, 3),
            frames[:, ring:-ring, -ring:].reshape(-1, 3),
        ]
    ).astype(np.float32)
    dist = np.linalg.norm(border[:, None, :] - _BG_RGB[None], axis=2)
    nearest = dist.argmin(axis=1)
    votes = np.bincount(nearest[dist.min(axis=1) < BG_VOTE_DISTANCE], minlength=len(_BG_NAMES))
    if votes.sum() == 0:  # no flat background at all: take the overall nearest
        votes = np.bincount(nearest, minlength=len(_BG_NAMES))
    best = int(votes.argmax())
    chosen = border[nearest == best]
    return _BG_NAMES[best], np.median(chosen, axis=0).astype(np.float32)


# Rows: luma and the two chroma differences of BT.601, chroma at half weight.
_METRIC = np.array(
    [
        [0.299, 0.587, 0.114],
        [-0.168736 * 0.5, -0.331264 * 0.5, 0.5 * 0.5],
        [0.5 * 0.5, -0.418688 * 0.5, -0.081312 * 0.5],
    ],
    dtype=np.float32,
)


def _metric(x: np.ndarray) -> np.ndarray:
    """RGB differences -> (Y, w*Cb, w*Cr) with BT.601 weights.

    Video codecs keep luma at full resolution but halve chroma (yuv420p), so coverage and
    colour distances lean on luma; chroma still tells colours of similar brightness apart.
    """
    return x @ _METRIC.T


def _segment_projection(diff: np.ndarray, bg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel and palette colour: coverage along bg -> colour and distance to that segment.

    ``diff`` is (N, 3) pixel minus background. Returns alpha (N, K) and the squared
    residual (N, K), both in the luma-weighted metric; colours that cannot be seen on this
    background get an infinite residual.
    """
    d = _metric(_PALETTE_RGB - bg[None])  # (K, 3)
    x = _metric(diff)  # (N, 3)
    d2 = (d * d).sum(axis=1)
    dot = x @ d.T  # (N, K)
    alpha = dot / np.maximum(d2, 1e-6)
    a = np.clip(alpha, 0.0, 1.0)
    # |x - a d|^2 without an (N, K, 3) temporary
    res = (x * x).sum(axis=1, keepdims=True) - 2.0 * a * dot + a * a * d2[None]
    rgb_contrast = np.linalg.norm(_PALETTE_RGB - bg[None], axis=1)
    res[:, rgb_contrast < MIN_CONTRAST] = np.inf
    return alpha, res


@dataclass
class _Track:
    """Pixels of one colour across the clip: per frame (flat indices, soft coverage)."""

    colour: int
    pixels: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


def _interior(lab: np.ndarray) -> np.ndarray:
    """Pixels whose 8 neighbours carry the same colour label (thin edge junk never does)."""
    core = lab >= 0
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy or dx:
                core &= lab == np.roll(lab, (dy, dx), axis=(1, 2))
    return core


def _segment(frames: np.ndarray, bg: np.ndarray) -> list[_Track]:
    """Split the foreground into one track per palette colour (see the module docstring)."""
    f, h, w, _ = frames.shape
    diff = frames.astype(np.float32) - bg
    fg = np.einsum("fhwc,fhwc->fhw", diff, diff) > FG_DISTANCE**2
    # label each frame on its own: a 3-D structure that only connects within a frame
    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = True
    labels, n = ndimage.label(fg, structure=structure)
    if n == 0:
        return []
    idx = np.flatnonzero(labels)
    comp = labels.ravel()[idx] - 1
    alpha, res = _segment_projection(diff.reshape(-1, 3)[idx], bg)
    nearest = res.argmin(axis=1)
    k = len(_PALETTE_NAMES)
    lab = np.full(f * h * w, -1, dtype=np.int8)
    lab[idx] = nearest
    seed = _interior(lab.reshape(f, h, w)).ravel()[idx]

    # colours with enough interior pixels in a component are objects there; a component
    # without any (a blob too thin to have an interior) keeps its majority colour
    min_area = max(2.0, MIN_AREA_FRACTION * h * w)
    min_seed = max(2.0, MIN_SEED_FRACTION * h * w)
    seeds = np.bincount(comp[seed] * k + nearest[seed], minlength=n * k).reshape(n, k)
    present = seeds >= min_seed
    votes = np.bincount(comp * k + nearest, minlength=n * k).reshape(n, k)
    no_seed = ~present.any(axis=1)
    present[no_seed, votes[no_seed].argmax(axis=1)] = True
    # every pixel joins the nearest of its component's colours
    assigned = np.where(present[comp], res, np.inf).argmin(axis=1)

    frame_of = idx // (h * w)
    pix_in_frame = idx % (h * w)
    tracks: dict[int, _Track] = {}
    key = frame_of * k + assigned
    order = np.argsort(key, kind="stable")
    keys, starts, counts = np.unique(key[order], return_index=True, return_counts=True)
    for kk, s0, c in zip(keys, starts, counts, strict=True):
        if c < min_area:  # specks of H.264 noise
            continue
        sel = order[s0 : s0 + c]
        fr, col = divmod(int(kk), k)
        track = tracks.setdefault(col, _Track(col))
        track.pixels[fr] = (pix_in_frame[sel], alpha[sel, col])
    keep = [t for t in tracks.values() if len(t.pixels) >= max(1, math.ceil(MIN_PRESENCE * f))]
    _add_soft_edges(keep, diff, fg, bg)
    return keep


def _dilate(mask: np.ndarray) -> np.ndarray:
    """3x3 binary dilation of (F, H, W) masks within each frame (wrapping at the edges)."""
    out = mask | np.roll(mask, 1, axis=1) | np.roll(mask, -1, axis=1)
    return out | np.roll(out, 1, axis=2) | np.roll(out, -1, axis=2)


def _add_soft_edges(tracks: list[_Track], diff: np.ndarray, fg: np.ndarray, bg: np.ndarray) -> None:
    """Add the faint anti-aliased rim (below FG_DISTANCE) around each object's pixels."""
    f, h, w, _ = diff.shape
    taken = np.zeros((f, h * w), dtype=bool)
    for t in tracks:
        for fr, (pix, _) in t.pixels.items():
            taken[fr, pix] = True
    free = ~taken & ~fg.reshape(f, h * w)
    d = _metric(_PALETTE_RGB - bg[None])
    for t in tracks:
        dk = d[t.colour]
        mask = np.zeros((f, h * w), dtype=bool)
        for fr, (pix, _) in t.pixels.items():
            mask[fr, pix] = True
        grown = (_dilate(mask.reshape(f, h, w)).reshape(f, h * w)) & free
        for fr, (pix, a) in list(t.pixels.items()):
            rim = np.flatnonzero(grown[fr])
            rim_a = _metric(diff[fr].reshape(-1, 3)[rim]) @ dk / float(dk @ dk)
            t.pixels[fr] = (np.concatenate([pix, rim]), np.concatenate([a, rim_a]))


# ---------------------------------------------------------------------------------------
# measurement


@dataclass
class _FrameFeatures:
    area: float  # fraction of the frame
    cx: float
    cy: float
    harmonics: np.ndarray  # complex M_1..M_6


def _frame_features(pix: np.ndarray, a: np.ndarray, h: int, w: int) -> _FrameFeatures | None:
    a = np.clip(a, 0.0, 1.0).astype(np.float64)
    total = a.sum()
    if total <= 0:
        return None
    x = (pix % w + 0.5) / w
    y = (pix // w + 0.5) / h
    # centre on the torus first (an object may wrap around an edge), then refine
    cx0 = np.angle((a * np.exp(2j * np.pi * x)).sum()) / (2 * np.pi)
    cy0 = np.angle((a * np.exp(2j * np.pi * y)).sum()) / (2 * np.pi)
    dx = (x - cx0 + 0.5) % 1.0 - 0.5
    dy = (y - cy0 + 0.5) % 1.0 - 0.5
    mx, my = (a * dx).sum() / total, (a * dy).sum() / total
    dx, dy = dx - mx, dy - my
    # e^{i theta} with theta measured clockwise from "up" on screen, like the renderer
    z = -dy + 1j * dx
    r = np.abs(z)
    u = np.where(r > 0, z / np.maximum(r, 1e-12), 0.0)
    wgt = a * r * r
    norm = max(float(wgt.sum()), 1e-12)
    harmonics = np.empty(6, dtype=np.complex128)
    term = wgt.astype(np.complex128)
    for k in range(6):
        term = term * u
        harmonics[k] = term.sum() / norm
    return _FrameFeatures(
        area=total / (h * w), cx=(cx0 + mx) % 1.0, cy=(cy0 + my) % 1.0, harmonics=harmonics
    )


@functools.cache
def _ideal() -> dict[str, float]:
    """|M_k| of each ideal shape at its own order k, measured once on a large clean render."""
    from .renderer import object_coverage  # the judge only borrows the ideal outlines

    out = {}
    for shape, k in _SHAPE_ORDER.items():
        cov = object_coverage(ObjectSpec(shape, "red", "large"), size=256, num_frames=1)[0]
        pix = np.flatnonzero(cov.ravel() > 0)
        ff = _frame_features(pix, cov.ravel()[pix], 256, 256)
        assert ff is not None
        out[shape] = float(abs(ff.harmonics[k - 1]))
    return out


def _fit_slope(t: np.ndarray, v: np.ndarray) -> tuple[float, float]:
    """Least-squares (slope, intercept) of v over t (slope 0 with a single point)."""
    if len(t) < 2:
        return 0.0, float(v[0])
    slope, intercept = np.polyfit(t, v, 1)
    return float(slope), float(intercept)


def _classify(colour: str, feats: dict[int, _FrameFeatures]) -> DetectedObject:
    """Shape, motion, speed and size of one object from its per-frame features."""
    t = np.array(sorted(feats), dtype=np.float64)
    ff = [feats[int(i)] for i in t]
    area = np.array([f.area for f in ff])
    harm = np.stack([f.harmonics for f in ff])  # (T, 6)

    # shape: harmonic strengths relative to the ideal shapes, over the larger frames
    big = area >= SHAPE_AREA_SHARE * area.max()
    ideal = _ideal()
    strength = {
        s: float(np.median(np.abs(harm[big, k - 1]))) / ideal[s] for s, k in _SHAPE_ORDER.items()
    }
    best = max(strength, key=lambda s: strength[s])
    shape = best if strength[best] >= CIRCLE_MAX_HARMONIC else "circle"

    # translation: unwrapped centroid path
    cx = np.array([f.cx for f in ff])
    cy = np.array([f.cy for f in ff])
    ux = np.concatenate([[cx[0]], cx[0] + np.cumsum((np.diff(cx) + 0.5) % 1.0 - 0.5)])
    uy = np.concatenate([[cy[0]], cy[0] + np.cumsum((np.diff(cy) + 0.5) % 1.0 - 0.5)])
    vx, x0 = _fit_slope(t, ux)
    vy, y0 = _fit_slope(t, uy)
    speed_v = math.hypot(vx, vy)

    # growth: log-area slope over the first 16 frames (the span growth is defined on; in
    # longer clips an object stops growing at the frame edge), scaled to that span
    early = t < BASE_FRAMES
    if early.sum() < 2:  # absent early on: use what there is
        early = np.ones_like(early)
    log_area = np.log(np.maximum(area, 1e-9))
    log_change = _fit_slope(t[early], log_area[early])[0] * (BASE_FRAMES - 1)

    # rotation: turning rate of the phase of the shape's own harmonic
    rot_deg = 0.0
    if shape != "circle" and len(t) >= 2:
        k = _SHAPE_ORDER[shape]
        mk = harm[:, k - 1]
        step = np.angle(mk[1:] * np.conj(mk[:-1])) / np.diff(t)
        rot_deg = float(np.degrees(np.median(step)) / k)

    speed: str | None = None
    if speed_v >= MIN_SPEED:
        motion = (
            ("right" if vx > 0 else "left") if abs(vx) >= abs(vy) else ("down" if vy > 0 else "up")
        )
        speed = _nearest_log(speed_v, SPEEDS)
    elif abs(log_change) >= MIN_LOG_AREA_CHANGE:
        motion = "growing" if log_change > 0 else "shrinking"
    elif abs(rot_deg) >= MIN_ROTATION_DEG:
        motion = "rotating"
    else:
        motion = "still"

    # size: radius at frame 0 from the area, fitted linearly in sqrt(area) like growth
    _, intercept = _fit_slope(t[early], np.sqrt(area[early]))
    r0 = math.sqrt(max(intercept, 1e-9) ** 2 / UNIT_AREA[shape])
    size = _nearest_log(r0, SIZES)

    features = {
        "vx": vx,
        "vy": vy,
        "speed": speed_v,
        "x0": x0,  # the centre at frame 0, on the fitted path (frame sides)
        "y0": y0,
        "log_area_change": log_change,
        "rotation_deg": rot_deg,
        "radius0": r0,
        "area_max": float(area.max()),
        **{f"h_{s}": v for s, v in strength.items()},
    }
    return DetectedObject(colour, shape, motion, speed, size, len(t), features)


def _nearest_log(value: float, table: dict[str, float]) -> str:
    """Key of ``table`` whose value is nearest to ``value`` on a log scale."""
    lv = math.log(max(value, 1e-9))
    return min(table, key=lambda k: abs(math.log(table[k]) - lv))


def detect(frames: np.ndarray) -> tuple[str, tuple[DetectedObject, ...]]:
    """Background name and every object the judge finds in ``frames`` (F, H, W, 3)."""
    frames = _check_frames(frames)
    _, h, w, _ = frames.shape
    background, bg = detect_background(frames)
    objects = []
    for track in _segment(frames, bg):
        feats = {}
        for fr, (pix, a) in track.pixels.items():
            ff = _frame_features(pix, a, h, w)
            if ff is not None:
                feats[fr] = ff
        if feats:
            objects.append(_classify(_PALETTE_NAMES[track.colour], feats))
    # largest first, so unmatched targets pick the most prominent leftovers
    objects.sort(key=lambda o: -o.features["area_max"])
    return background, tuple(objects)


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be shaped (F, H, W, 3), got {frames.shape}")
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, got {frames.dtype}")
    return frames


# ---------------------------------------------------------------------------------------
# judging


def _match(
    targets: Sequence[ObjectTarget], detected: Sequence[DetectedObject]
) -> list[DetectedObject | None]:
    """Pair targets with detections: same colour first, then the largest leftovers."""
    left = list(detected)
    out: list[DetectedObject | None] = [None] * len(targets)
    for i, tgt in enumerate(targets):
        for d in left:
            if d.colour == tgt.colour:
                out[i] = d
                left.remove(d)
                break
    for i in range(len(targets)):
        if out[i] is None and left:
            out[i] = left.pop(0)
    return out


def _object_checks(tgt: ObjectTarget, det: DetectedObject | None) -> dict[str, bool]:
    names = ["colour", "shape", "motion"]
    if tgt.size is not None:
        names.append("size")
    if tgt.speed is not None:
        names.append("speed")
    if det is None:
        return dict.fromkeys(names, False)
    checks = {
        "colour": det.colour == tgt.colour,
        "shape": det.shape == tgt.shape,
        "motion": det.motion == tgt.motion,
    }
    if tgt.size is not None:
        checks["size"] = det.size == tgt.size
    if tgt.speed is not None:
        # scored on its own: the direction is the motion check's business, but an object
        # that does not translate at all has no speed (None) and fails
        checks["speed"] = det.speed == tgt.speed
    return checks


def judge(frames: np.ndarray, target: SceneTarget) -> JudgeResult:
    """Score uint8 frames (F, H, W, 3) against ``target`` using the pixels only."""
    background, detected = detect(frames)
    matched = _match(target.objects, detected)
    judgements = tuple(
        ObjectJudgement(tgt, det, _object_checks(tgt, det))
        for tgt, det in zip(target.objects, matched, strict=True)
    )
    checks: dict[str, list[bool]] = {}
    for j in judgements:
        for name, ok in j.checks.items():
            checks.setdefault(name, []).append(ok)
    checks["background"] = [background == target.background]
    checks["count"] = [len(detected) == len(target.objects)]
    return JudgeResult(judgements, background, target.background, detected, checks)


def tally(results: Iterable[JudgeResult]) -> dict[str, tuple[int, int]]:
    """(passed, total) verdicts per attribute (pooled over objects), plus all/strict correct
    (per clip): what ``score``'s fractions are made of."""
    results = list(results)
    passed: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for r in results:
        for name, verdicts in r.checks.items():
            passed[name] += sum(verdicts)
            total[name] += len(verdicts)
    out = {name: (passed[name], total[name]) for name in ATTRIBUTES if total[name]}
    if results:
        out["all_correct"] = (sum(r.all_correct for r in results), len(results))
        out["strict_correct"] = (sum(r.strict_correct for r in results), len(results))
    return out


def score(results: Iterable[JudgeResult]) -> dict[str, float]:
    """Dataset accuracy per attribute (pooled over objects), plus all/strict correct."""
    return {name: passed / total for name, (passed, total) in tally(results).items()}


def confusion(results: Iterable[JudgeResult], attribute: str) -> dict[tuple[str, str], int]:
    """Counts of (target value, detected value) for "colour", "shape", "motion", "size" or
    "speed" ("-" where nothing was detected), to see what a judge or a model confuses."""
    counts: Counter[tuple[str, str]] = Counter()
    for r in results:
        for j in r.objects:
            want = getattr(j.target, attribute)
            if want is None:
                continue
            got = getattr(j.detected, attribute) if j.detected is not None else "-"
            counts[(want, got or "-")] += 1
    return dict(counts)


def describe(result: JudgeResult) -> str:
    """One line per object and failed check, for logs and debugging."""
    lines = [f"background: want {result.target_background}, saw {result.background}"]
    for j in result.objects:
        d = j.detected
        saw = (
            "nothing"
            if d is None
            else (
                f"{d.size} {d.colour} {d.shape} {d.motion}"
                + (f" ({d.speed})" if d.speed else "")
                + " "
                + ", ".join(f"{k}={v:.3g}" for k, v in d.features.items())
            )
        )
        t = j.target
        want = f"{t.size or '?'} {t.colour} {t.shape} {t.motion}" + (
            f" ({t.speed})" if t.speed else ""
        )
        bad = [k for k, ok in j.checks.items() if not ok]
        lines.append(f"want {want}; saw {saw}; wrong: {bad or 'nothing'}")
    return "\n".join(lines)
