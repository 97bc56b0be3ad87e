"""Text → video: prompt embeddings, seeded latents, guided denoising, chunked VAE decode."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from diffusers import AutoencoderKL
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from vidsynth.devices import available_memory
from vidsynth.errors import InvalidParameter
from vidsynth.models.first_frame import (
    MotionGuide,
    colour_masks,
    first_frame_concat,
    keep_in_frame,
    motion_guide,
    object_centre,
    object_mask,
    warp_scene,
)
from vidsynth.models.frame_scorer import FrameScorer
from vidsynth.models.image_unet import ImageUNet
from vidsynth.models.motion_planner import MotionPlanner
from vidsynth.models.shape_reader import ShapeReader
from vidsynth.models.text_encoder import TextEncoder
from vidsynth.models.unet3d import UNet3DModel
from vidsynth.models.vae import decode_to_uint8, decode_video, encode_video, iter_decode
from vidsynth.pipelines.conditioning import PromptAndScheduler
from vidsynth.pipelines.memory import estimate_peak_bytes
from vidsynth.pipelines.params import GenerationParams
from vidsynth.pipelines.result import VideoResult
from vidsynth.sampling.denoise import StepCallback, denoise
from vidsynth.sampling.guidance import DenoisedGuidance
from vidsynth.sampling.noise import derive_seed, seeded_noise
from vidsynth.sampling.schedulers import strength_timesteps

# derive_seed's stream for the noise a first-frame UNet draws a clip's first frame from.
FIRST_FRAME_STREAM = 0xF1257

# progress(stage, step, total): a UI hook; raising from it cancels the call.
ProgressFn = Callable[[str, int, int], None]


class MemoryBudgetExceeded(InvalidParameter):
    """The request would not fit in the device's memory."""


@dataclass
class Defaults:
    """A model's own generation defaults (from model_index.json's "vidsynth" section)."""

    num_frames: int = 16
    height: int = 256
    width: int = 256
    num_inference_steps: int = 50
    guidance_scale: float = 9.0
    fps: float = 8.0
    candidates: int | None = None  # first frames per clip to pick from; None: the scorer's
    # noise levels [lo] or [lo, hi] where guidance applies (hi None: no upper bound)
    guidance_interval: Sequence[float | None] = (0.0, None)
    # the same for the first frames' image stage: guided at every step unless a model says
    first_frame_guidance_interval: Sequence[float | None] = (0.0, None)
    # a model that draws first frames: the share of the schedule its clips are drawn over,
    # from the first frame animated by the plan (1: from pure noise)
    clip_strength: float = 1.0
    # a model that draws first frames: their denoising steps (None: the clip's)
    first_frame_steps: int | None = None
    scheduler: str | None = None  # None: the checkpoint's own scheduler
    negative_prompt: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class TextToVideoPipeline(PromptAndScheduler):
    """ModelScope-style latent video diffusion: `pipe("a red circle moving right")`."""

    def __init__(
        self,
        unet: UNet3DModel,
        vae: AutoencoderKL,
        text_encoder: TextEncoder,
        scheduler_config: dict[str, Any],
        *,
        defaults: Defaults | None = None,
        name: str = "",
        memory_budget: int | None = None,
        planner: MotionPlanner | None = None,
        scorer: FrameScorer | None = None,
        image_unet: ImageUNet | UNet3DModel | None = None,
        shape_reader: ShapeReader | None = None,
    ) -> None:
        if unet.config.first_frame_motion and planner is None:
            raise InvalidParameter(
                "this UNet follows a planned motion (first_frame_motion) and needs a motion "
                "planner (the model folder's planner/)"
            )
        self.planner = planner.eval() if planner is not None else None
        self.scorer = scorer.eval() if scorer is not None else None
        if shape_reader is not None and (planner is None or not planner.config.shapes):
            raise InvalidParameter(
                "a shape reader checks the shapes the motion planner reads from the caption; "
                "this model's planner reads none (train one with vidsynth train-planner)"
            )
        self.shape_reader = shape_reader.eval() if shape_reader is not None else None
        # the first frames' own UNet (an ImageUNet, or a UNet3D that learned first frames
        # alone, run with its temporal layers bypassed); without one, the video UNet draws them
        self.image_unet = image_unet.eval() if image_unet is not None else None
        self.unet = unet.eval()
        self.vae = vae.eval()
        self.text_encoder = text_encoder.eval()
        self.scheduler_config = dict(scheduler_config)
        self.defaults = defaults or Defaults()
        self.name = name
        self.memory_budget = memory_budget
        self._empty_embedding: torch.Tensor | None = None
        self._shape_names: torch.Tensor | None = None  # the planner's shape names, encoded

    # -- properties -----------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.unet.device

    @property
    def dtype(self) -> torch.dtype:
        return self.unet.dtype

    @property
    def vae_scale(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def latent_channels(self) -> int:
        return int(self.vae.config.latent_channels)

    @property
    def draws_first_frames(self) -> bool:
        """Whether each clip's first frame is drawn as an image before the clip (a UNet with a
        first-frame input, Emu Video's factorisation)."""
        return bool(self.unet.config.first_frame)

    def to(self, device: torch.device | str) -> TextToVideoPipeline:
        modules = (self.unet, self.vae, self.text_encoder, self.planner, self.scorer)
        for module in (*modules, self.image_unet, self.shape_reader):
            if module is not None:
                module.to(device)
        self._empty_embedding = self._shape_names = None
        return self

    @property
    def default_candidates(self) -> int:
        """First frames drawn per clip when neither caller nor model folder says: the frame
        scorer's own number, or 1 without one."""
        return 1 if self.scorer is None else int(self.scorer.config.candidates)

    # -- building blocks -------------------------------------------------------------------
    def check_params(self, batch: int, **kwargs: Any) -> GenerationParams:
        """Resolve defaults, validate, and refuse requests that cannot fit in memory."""
        d = self.defaults

        def pick(key: str, default: Any) -> Any:
            # `is None`, not `or`: zero steps must be an error, not the default
            value = kwargs.get(key)
            return default if value is None else value

        params = GenerationParams.checked(
            num_frames=pick("num_frames", d.num_frames),
            height=pick("height", d.height),
            width=pick("width", d.width),
            num_inference_steps=pick("num_inference_steps", d.num_inference_steps),
            guidance_scale=pick("guidance_scale", d.guidance_scale),
            fps=pick("fps", d.fps),
            candidates=pick("candidates", d.candidates or self.default_candidates),
            guidance_interval=pick("guidance_interval", d.guidance_interval),
            first_frame_guidance_interval=pick(
                "first_frame_guidance_interval", d.first_frame_guidance_interval
            ),
            clip_strength=pick("clip_strength", d.clip_strength),
            first_frame_steps=pick("first_frame_steps", d.first_frame_steps),
            spatial_factor=self.vae_scale,
        )
        if params.clip_strength < 1 and not self.draws_first_frames:
            raise InvalidParameter(
                f"clip_strength={params.clip_strength} starts each clip from its first frame, "
                "and this model draws none (its UNet has no first-frame input): use 1"
            )
        if params.first_frame_steps is not None and not self.draws_first_frames:
            raise InvalidParameter(
                f"first_frame_steps={params.first_frame_steps} sets the steps of the first "
                "frames, and this model draws none (its UNet has no first-frame input): leave "
                "it out"
            )
        if params.candidates > 1 and (self.scorer is None or not self.draws_first_frames):
            raise InvalidParameter(
                f"candidates={params.candidates} needs a model that draws a first frame and "
                "has a frame scorer (scorer/) to pick one; this one does not: use candidates=1"
            )
        self._check_memory(batch, params)
        return params

    def _check_memory(self, batch: int, params: GenerationParams) -> None:
        budget = self.memory_budget or available_memory(self.device)
        if budget is None:
            return
        cfg_batch = batch * (2 if params.guidance_scale > 1 else 1)
        latent = {
            "latent_height": params.height // self.vae_scale,
            "latent_width": params.width // self.vae_scale,
            "bytes_per_element": torch.finfo(self.dtype).bits // 8,
            "num_parameters": 0,  # already resident
        }
        need = estimate_peak_bytes(
            self.unet.config, batch=cfg_batch, num_frames=params.num_frames, **latent
        )
        if self.draws_first_frames:
            # the first frames are drawn before the clip, all candidates in one batch of
            # images, by the image stage when the model has one: the larger peak counts
            stage = self.image_unet if self.image_unet is not None else self.unet
            need = max(
                need,
                estimate_peak_bytes(
                    stage.config, batch=cfg_batch * params.candidates, num_frames=1, **latent
                ),
            )
        if need > budget:
            gib = 1024**3
            raise MemoryBudgetExceeded(
                f"{params.num_frames} frames at {params.width}x{params.height} need about "
                f"{need / gib:.1f} GiB on {self.device}, more than the {budget / gib:.1f} GiB "
                "available; ask for fewer frames or a smaller size"
            )

    def initial_latents(self, seeds: Sequence[int], params: GenerationParams) -> torch.Tensor:
        """Each clip's starting noise (B, C, F, h, w), from its own seed."""
        return self._noise(seeds, params, params.num_frames)

    def _noise(self, seeds: Sequence[int], params: GenerationParams, frames: int) -> torch.Tensor:
        shape = (
            len(seeds),
            self.latent_channels,
            frames,
            params.height // self.vae_scale,
            params.width // self.vae_scale,
        )
        return seeded_noise(shape, seeds, device=self.device, dtype=self.dtype)

    def model_fn(
        self,
        first: torch.Tensor | None = None,
        *,
        image: bool = False,
        guide: Sequence[MotionGuide] | None = None,
        animated: torch.Tensor | None = None,
    ) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
        """The UNet as a sampling function. A UNet with a first-frame input gets `first`
        (B, C, h, w), the latents every clip starts from, for both halves of a guided batch;
        without it the input says "no first frame". A `guide` (one per object) animates that
        frame by a planned motion (`plan_motion`), or `animated` (B, C, F, h, w) is that frame
        already animated (`animate`). `image`: the image stage, which draws
        first frames: the model's image UNet, or without one the video UNet with each frame a
        separate image (temporal layers bypassed)."""
        unet = self.image_unet if image and self.image_unet is not None else self.unet
        if isinstance(unet, ImageUNet):
            return lambda x, t, context: unet(x.to(unet.dtype), t, context)

        def fn(x: torch.Tensor, t: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
            concat = None
            if unet.config.first_frame:
                given, plan, moving = first, guide, animated
                if given is not None and given.shape[0] != x.shape[0]:  # [uncond, cond]
                    n = x.shape[0] // given.shape[0]
                    given = given.repeat(n, 1, 1, 1)
                    if plan is not None:
                        plan = [g.repeat(n) for g in plan]
                    if moving is not None:
                        moving = moving.repeat(n, 1, 1, 1, 1)
                concat = first_frame_concat(given, x, guide=plan, animated=moving)
            return unet(x.to(unet.dtype), t, context, concat=concat, independent_frames=image)

        return fn

    @torch.inference_mode()
    def sample(
        self,
        prompts: Sequence[str],
        negative_prompts: Sequence[str],
        latents: torch.Tensor,
        sched: SchedulerMixin,
        timesteps: torch.Tensor,
        guidance_scale: float,
        progress: ProgressFn | None = None,
        *,
        first: torch.Tensor | None = None,
        image: bool = False,
        guide: Sequence[MotionGuide] | None = None,
        animated: torch.Tensor | None = None,
        guidance_interval: tuple[float, float] = (0.0, math.inf),
        denoised_guidance: DenoisedGuidance | None = None,
    ) -> torch.Tensor:
        """Guided denoising of noisy `latents` along `timesteps` (set on `sched`), guidance
        applied at the noise levels in `guidance_interval` (and `denoised_guidance` at its own).

        The core shared by text-to-video (the full schedule from pure noise) and
        video-to-video (the tail of the schedule from a noised input video). `first`,
        `image`, `guide` and `animated` go to `model_fn`.
        """
        context = self.encode_prompts(prompts)
        guided = guidance_scale > 1.0
        uncond = self.encode_prompts(negative_prompts) if guided else None
        callback: StepCallback | None = None
        if progress is not None:
            callback = lambda i, total, t: progress("denoise", i + 1, total)
        return denoise(
            self.model_fn(first, image=image, guide=guide, animated=animated),
            latents.to(self.device, self.dtype),
            sched,
            num_inference_steps=len(timesteps),
            timesteps=timesteps,
            context=context,
            uncond_context=uncond,
            guidance_scale=guidance_scale,
            callback=callback,
            guidance_interval=guidance_interval,
            denoised_guidance=denoised_guidance,
        )

    # -- the main entry points ---------------------------------------------------------------
    @torch.inference_mode()
    def generate_latents(
        self,
        prompts: Sequence[str],
        negative_prompts: Sequence[str],
        seeds: Sequence[int],
        params: GenerationParams,
        *,
        scheduler: str | None = None,
        latents: torch.Tensor | None = None,
        progress: ProgressFn | None = None,
    ) -> torch.Tensor:
        """The denoised latents (B, C, F, h, w) for one batch.

        A UNet with a first-frame input draws each clip in two stages (Emu Video's
        factorisation): the first frame alone from the text, as an image (temporal layers
        bypassed, so it costs about one frame in F), then the clip from the text and that frame,
        animated by the planned motion (`animate`). With ``params.clip_strength`` < 1 the clip
        starts from that animation noised to that share of the schedule (SDEdit, Meng et al.
        2022), not from pure noise: fewer steps, and the first frame's shapes carry further.
        """
        if latents is None:
            latents = self.initial_latents(seeds, params)
        if not self.draws_first_frames:
            return self._from_noise(prompts, negative_prompts, latents, params, scheduler, progress)
        first = self.first_frame(prompts, negative_prompts, seeds, params, scheduler=scheduler)
        image = None
        if self.unet.config.first_frame_motion:
            image = self.decode(first[:, :, None])[:, :, 0].float().cpu()  # (B, 3, H, W)
        guide = self.plan_motion(prompts, params, first, image=image)
        animated = self.animate(first, guide, params.num_frames, image=image)
        if params.clip_strength < 1:
            return self.from_latents(
                prompts,
                negative_prompts,
                animated,
                latents,
                params,
                params.clip_strength,
                scheduler,
                progress,
                first=first,
                animated=animated,
            )
        return self._from_noise(
            prompts,
            negative_prompts,
            latents,
            params,
            scheduler,
            progress,
            first=first,
            animated=animated,
        )

    @torch.inference_mode()
    def animate(
        self,
        first: torch.Tensor,
        guide: Sequence[MotionGuide] | None,
        num_frames: int,
        *,
        image: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The first frames' latents (B, C, h, w) animated over `num_frames` frames by their
        `guide` (`plan_motion`) → (B, C, F, h, w): the clip the UNet is led to.

        The frame is moved in pixels and each frame encoded again (`image`: the decoded first
        frame, (B, 3, H, W) in [0, 1], if the caller has it). Moving the latents themselves
        interpolates them, which blurs what is a latent pixel or two wide: a small star's points
        (rendered stars moving across 64×64 frames, judged: 46 of 48 kept their shape warped in
        pixels, 32 of 48 warped as latents). A clip whose guides move nothing (or without a
        guide) has its first frame standing still, its latents as drawn: whether a clip goes
        through the VAE does not depend on the rest of the batch.
        """
        still = first[:, :, None].expand(-1, -1, num_frames, -1, -1)
        moves = torch.zeros(first.shape[0], dtype=torch.bool)
        for g in guide or ():
            moves |= g.moves().cpu()
        if not moves.any():
            return still
        if image is None:
            image = self.decode(first[:, :, None])[:, :, 0].float().cpu()
        moving = warp_scene(image * 2 - 1, guide).clamp(-1, 1)
        rows = moves.nonzero().flatten()
        out = still.clone()
        out[rows.to(out.device)] = encode_video(self.vae, moving[rows]).to(out.device, out.dtype)
        return out

    @torch.inference_mode()
    def from_latents(
        self,
        prompts: Sequence[str],
        negative_prompts: Sequence[str],
        init: torch.Tensor,
        noise: torch.Tensor,
        params: GenerationParams,
        strength: float,
        scheduler: str | None = None,
        progress: ProgressFn | None = None,
        **model_kwargs: Any,
    ) -> torch.Tensor:
        """SDEdit: `init` latents (B, C, F, h, w) noised by unit `noise` to `strength` of the
        schedule, then denoised with the prompts over the rest of it; `model_kwargs` go to
        `sample`."""
        sched = self.scheduler(scheduler)
        sched.set_timesteps(params.num_inference_steps, device=self.device)
        timesteps = strength_timesteps(sched, params.num_inference_steps, strength)
        init = init.to(self.device, self.dtype)
        start = timesteps[:1].repeat(init.shape[0])
        latents = sched.add_noise(init, noise.to(self.device, self.dtype), start)
        return self.sample(
            prompts,
            negative_prompts,
            latents,
            sched,
            timesteps,
            params.guidance_scale,
            progress,
            guidance_interval=params.guidance_interval,
            **model_kwargs,
        )

    @torch.inference_mode()
    def plan_motion(
        self,
        prompts: Sequence[str],
        params: GenerationParams,
        first: torch.Tensor,
        *,
        image: torch.Tensor | None = None,
    ) -> list[MotionGuide] | None:
        """How each clip's `first` frame (latents (B, C, h, w)) is animated for a UNet that
        follows a guide (``first_frame_motion``): one guide per object slot of the planner,
        each the planner's motion for that object, about the object, its path offset so the
        object stays in view (``keep_in_frame``; all found on the decoded frame, where a flat
        background is flat); None for other UNets. A caption of one object moves the whole
        frame; of two, each object is found by the colour the planner read for it
        (``colour_masks``) and moves on its own (``warp_scene``). `image` is `first` decoded,
        (B, 3, H, W) in [0, 1], if the caller has it."""
        if not self.unet.config.first_frame_motion:
            return None
        assert self.planner is not None  # __init__ refuses the UNet without one
        context = self.encode_prompts(prompts).float()
        motion, colours = self.planner.objects(context, fps=params.fps)
        if (colours[:, 1:] < 0).all():  # one object per caption: the whole frame moves
            motion = motion[:, :1]
        b, slots = len(prompts), motion.shape[1]
        guides = [motion_guide(motion[:, k], b, params.num_frames) for k in range(slots)]
        if not any(g.any() for g in guides):
            return guides[:1]
        if image is None:
            image = self.decode(first[:, :, None])[:, :, 0].float().cpu()  # (B, 3, H, W)
        found = None
        if slots > 1:
            palette = torch.tensor(self.planner.config.colours, dtype=torch.float32)
            masks = colour_masks(image, palette, colours)
            # a lone object's mask is the whole frame: find it as one object always was
            found = [masks[:, k] > 0.5 for k in range(slots)]
            whole = masks[:, 0].flatten(1).amin(dim=1) > 0.5
            for i in torch.nonzero(whole).flatten().tolist():
                alone = object_mask(image[i])
                found[0][i] = alone if alone is not None else False
        out = []
        for k, g in enumerate(guides):
            where = None if found is None else found[k]
            shift = keep_in_frame(image, g.shift, masks=where)
            centre = object_centre(image, masks=where)
            mask = None if found is None else masks[:, k]
            out.append(MotionGuide(shift, g.scale, g.angle, centre, mask))
        return out

    @torch.inference_mode()
    def first_frame(
        self,
        prompts: Sequence[str],
        negative_prompts: Sequence[str],
        seeds: Sequence[int],
        params: GenerationParams,
        *,
        scheduler: str | None = None,
    ) -> torch.Tensor:
        """The first frames' latents (B, C, h, w), drawn as images from the text by the image
        stage (`model_fn` with ``image``).

        Their noise is a stream of its own (``derive_seed(seed, FIRST_FRAME_STREAM)``), so a
        clip still depends only on its prompt and seed. With ``params.candidates`` = N > 1,
        N frames are drawn per clip (the first from that same noise, so N = 1 is the same
        frame) and the frame scorer keeps the one it finds likest its prompt (best-of-N).

        A shape reader with ``sure`` set draws them in two rounds: its ``first_round`` frames,
        then the rest of the N only for the clips whose best frame the reader is not sure of
        (log-likelihood of the planned shapes below ``sure``). Candidate j has the same noise
        either way, so a clip is the pick among the first round or among all N, as if drawn
        alone; most one-object prompts stop after the first round. A reader with
        ``guidance`` set guides the frames it draws for want of a sure one (the second round;
        all N for a reader without ``sure``) toward the planned shapes (`shape_guidance`);
        `candidates` up to ``first_round`` draw no second round, so none is guided."""
        n = params.candidates
        reader = self.shape_reader
        first_round = n
        guides = reader is not None and reader.config.guidance is not None
        if reader is not None and reader.config.sure is not None:
            first_round = min(n, reader.config.first_round)
        frames = self.first_frame_candidates(
            prompts,
            negative_prompts,
            seeds,
            params,
            scheduler=scheduler,
            count=first_round,
            guided=guides and reader.config.sure is None,
        )
        if n == 1:
            return frames
        scores, likelihood = self.scores(prompts, frames, first_round)
        best = scores.argmax(dim=1)
        picked = frames.unflatten(0, (len(seeds), first_round))[torch.arange(len(seeds)), best]
        if first_round == n:
            return picked
        assert reader is not None and likelihood is not None
        unsure = (likelihood.gather(1, best[:, None])[:, 0] < reader.config.sure).nonzero()
        rows = unsure.flatten().tolist()
        if not rows:
            return picked
        more = self.first_frame_candidates(
            [prompts[i] for i in rows],
            [negative_prompts[i] for i in rows],
            [seeds[i] for i in rows],
            params,
            scheduler=scheduler,
            start=first_round,
            count=n - first_round,
            guided=guides,
        ).unflatten(0, (len(rows), n - first_round))
        more_scores, _ = self.scores(
            [prompts[i] for i in rows], more.flatten(0, 1), n - first_round
        )
        for k, i in enumerate(rows):
            # the first round's best against the new ones: ties keep the earlier frame, as
            # argmax over all N would
            if more_scores[k].max() > scores[i, best[i]]:
                picked[i] = more[k, more_scores[k].argmax()]
        return picked

    @torch.inference_mode()
    def first_frame_candidates(
        self,
        prompts: Sequence[str],
        negative_prompts: Sequence[str],
        seeds: Sequence[int],
        params: GenerationParams,
        *,
        scheduler: str | None = None,
        start: int = 0,
        count: int | None = None,
        guided: bool = False,
    ) -> torch.Tensor:
        """First frames `start` .. `start` + `count` (default: all ``params.candidates``) of
        each clip, latents (B * count, C, h, w), clip-major, that `first_frame` picks from;
        `guided`: with the shape reader's guidance (`shape_guidance`)."""
        count = params.candidates - start if count is None else count
        rows = [p for p in prompts for _ in range(count)]
        streams = [derive_seed(s, FIRST_FRAME_STREAM) for s in seeds]
        noise = self._noise(
            [
                stream if j == 0 else derive_seed(stream, j)
                for stream in streams
                for j in range(start, start + count)
            ],
            params,
            1,
        )
        return self._from_noise(
            rows,
            [p for p in negative_prompts for _ in range(count)],
            noise,
            params,
            scheduler,
            guidance_interval=params.first_frame_guidance_interval,
            denoised_guidance=self.shape_guidance(rows) if guided else None,
            steps=params.first_frame_num_steps,
            image=True,
        )[:, :, 0]

    @torch.inference_mode()
    def planned_shapes(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The colour and shape (B, S) of each object the planner reads in token states
        `context` (float32), indices in the world's palette and shapes, -1 past the objects;
        a planner with a `name_weight` also reads a lone object's shape by the shapes' names
        (``MotionPlanner.shape_logits``)."""
        planner = self.planner
        if planner is None or not planner.config.shapes:
            raise ValueError("this model's planner reads no shapes")
        _, colours = planner.objects(context)
        if planner.config.name_weight and self._shape_names is None:
            # the same four names for every clip: encoded once, as the empty prompt is
            self._shape_names = self.encode_prompts(planner.config.shapes).float()
        names = self._shape_names if planner.config.name_weight else None
        return colours, planner.object_shapes(context, colours, names)

    def shape_guidance(self, prompts: Sequence[str]) -> DenoisedGuidance:
        """Guidance of first frames drawn for `prompts` (one per frame) toward the shapes
        the planner reads from each: at each step of the shape reader's ``guidance_interval``
        the clean estimate is decoded and moved ``guidance`` up the gradient of the reader's
        log-likelihood of those shapes, each object found by its planned colour (classifier
        guidance of x0, ``sampling.guidance.DenoisedGuidance``). Why: of two objects, the
        image stage draws the asked shapes less often than of one; nudged while the layout
        forms, more of its frames have them (issue 3's notes of stop 33)."""
        reader, planner = self.shape_reader, self.planner
        if reader is None or reader.config.guidance is None:
            raise ValueError("this model's shape reader has no guidance step (its `guidance`)")
        assert planner is not None  # __init__ refuses a reader without one
        with torch.inference_mode():
            context = self.encode_prompts(prompts).float()
            colours, shapes = self.planned_shapes(context)

        def log_likelihood(x0: torch.Tensor) -> torch.Tensor:
            _, pixels = next(iter_decode(self.vae, x0))  # (B, 3, 1, H, W) in [-1, 1]
            images = (pixels[:, :, 0] / 2 + 0.5).clamp(0, 1)
            return reader.differentiable_log_likelihood(images, colours, shapes)

        lo, hi = reader.config.guidance_interval
        return DenoisedGuidance(log_likelihood, float(reader.config.guidance), (lo, hi))

    @torch.inference_mode()
    def pick(self, prompts: Sequence[str], candidates: torch.Tensor, n: int) -> torch.Tensor:
        """Index (B,) of the candidate first frame (latents (B * n, C, h, w), clip-major) the
        frame scorer finds likest each prompt (`scores`)."""
        return self.scores(prompts, candidates, n)[0].argmax(dim=1)

    @torch.inference_mode()
    def scores(
        self, prompts: Sequence[str], candidates: torch.Tensor, n: int
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """How much each candidate first frame (latents (B * n, C, h, w), clip-major) is like
        its prompt, (B, n): the frame scorer's logit; with a shape reader, plus the reader's
        weight × the log-likelihood that the frame shows the shapes the planner reads, each
        object found by the colour the planner reads for it. Also that log-likelihood (B, n),
        None without a reader."""
        assert self.scorer is not None  # check_params refuses candidates without one
        images = self.decode(candidates[:, :, None])[:, :, 0].to(self.device)
        context = self.encode_prompts(prompts).float()
        scores = self.scorer(images, context.repeat_interleave(n, dim=0)).float().cpu()
        likelihood = None
        if self.shape_reader is not None:
            assert self.planner is not None  # __init__ refuses a reader without one
            colours, shapes = self.planned_shapes(context)
            likelihood = self.shape_reader.log_likelihood(
                images, colours.repeat_interleave(n, dim=0), shapes.repeat_interleave(n, dim=0)
            )
            scores = scores + self.shape_reader.config.weight * likelihood
            likelihood = likelihood.view(len(prompts), n)
        return scores.view(len(prompts), n), likelihood

    def _from_noise(
        self,
        prompts: Sequence[str],
        negative_prompts: Sequence[str],
        noise: torch.Tensor,
        params: GenerationParams,
        scheduler: str | None,
        progress: ProgressFn | None = None,
        *,
        guidance_interval: tuple[float, float] | None = None,
        steps: int | None = None,
        **model_kwargs: Any,
    ) -> torch.Tensor:
        """`sample` along the whole schedule of `steps` (the clip's, ``params.num_inference_steps``,
        by default), from unit `noise` scaled as the scheduler wants, guided in
        `guidance_interval` (the clip's, ``params.guidance_interval``, by default)."""
        sched = self.scheduler(scheduler)
        # set the schedule first: Euler's initial sigma depends on it
        sched.set_timesteps(steps or params.num_inference_steps, device=self.device)
        latents = noise.to(self.device, self.dtype) * sched.init_noise_sigma
        return self.sample(
            prompts,
            negative_prompts,
            latents,
            sched,
            sched.timesteps,
            params.guidance_scale,
            progress,
            guidance_interval=guidance_interval or params.guidance_interval,
            **model_kwargs,
        )

    @torch.inference_mode()
    def decode(self, latents: torch.Tensor, chunk_size: int = 8) -> torch.Tensor:
        """Float frames (B, 3, F, H, W) in [0, 1]."""
        return decode_video(self.vae, latents, chunk_size)

    def batch(
        self,
        prompts: Sequence[str],
        negative_prompt: str | Sequence[str] | None = None,
        *,
        seeds: Sequence[int | None] | None = None,
        num_frames: int | None = None,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        fps: float | None = None,
        candidates: int | None = None,
        guidance_interval: Sequence[float | None] | None = None,
        first_frame_guidance_interval: Sequence[float | None] | None = None,
        clip_strength: float | None = None,
        first_frame_steps: int | None = None,
        scheduler: str | None = None,
        latents: torch.Tensor | None = None,
        decode_chunk_size: int = 8,
        progress: ProgressFn | None = None,
    ) -> list[VideoResult]:
        """Several clips in one batch; clip i depends only on (prompt i, seed i)."""
        prompts, negs, resolved = self.prepare_batch(prompts, negative_prompt, seeds)
        params = self.check_params(
            len(prompts),
            num_frames=num_frames,
            height=height,
            width=width,
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            fps=fps,
            candidates=candidates,
            guidance_interval=guidance_interval,
            first_frame_guidance_interval=first_frame_guidance_interval,
            clip_strength=clip_strength,
            first_frame_steps=first_frame_steps,
        )
        z = self.generate_latents(
            prompts,
            negs,
            resolved,
            params,
            scheduler=scheduler,
            latents=latents,
            progress=progress,
        )
        return self.results(
            z,
            prompts,
            negs,
            resolved,
            params,
            scheduler=scheduler,
            decode_chunk_size=decode_chunk_size,
            progress=progress,
        )

    # -- shared by the pipelines built on this one ------------------------------------------
    def results(
        self,
        latents: torch.Tensor,
        prompts: Sequence[str],
        negative_prompts: Sequence[str],
        seeds: Sequence[int],
        params: GenerationParams,
        *,
        scheduler: str | None = None,
        decode_chunk_size: int = 8,
        progress: ProgressFn | None = None,
        info: dict[str, Any] | None = None,
    ) -> list[VideoResult]:
        """Decode a batch of latents to uint8 clips, each with what reproduces it."""
        if progress is not None:
            progress("decode", 0, 1)
        with torch.inference_mode():
            frames = decode_to_uint8(self.vae, latents, decode_chunk_size).numpy()
        if progress is not None:
            progress("decode", 1, 1)
        return self.video_results(
            frames, prompts, negative_prompts, seeds, params, scheduler=scheduler, info=info
        )

    def __call__(
        self,
        prompt: str = "",
        negative_prompt: str | None = None,
        *,
        num_frames: int | None = None,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        seed: int | None = None,
        fps: float | None = None,
        candidates: int | None = None,
        guidance_interval: Sequence[float | None] | None = None,
        first_frame_guidance_interval: Sequence[float | None] | None = None,
        clip_strength: float | None = None,
        first_frame_steps: int | None = None,
        scheduler: str | None = None,
        latents: torch.Tensor | None = None,
        decode_chunk_size: int = 8,
        progress: ProgressFn | None = None,
    ) -> VideoResult:
        """One clip. An empty prompt is allowed and means unconditional generation."""
        if not isinstance(prompt, str):
            raise InvalidParameter(
                f"prompt must be a string, got {type(prompt).__name__}; use .batch() for lists"
            )
        return self.batch(
            [prompt],
            negative_prompt,
            seeds=[seed],
            num_frames=num_frames,
            height=height,
            width=width,
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            fps=fps,
            candidates=candidates,
            guidance_interval=guidance_interval,
            first_frame_guidance_interval=first_frame_guidance_interval,
            clip_strength=clip_strength,
            first_frame_steps=first_frame_steps,
            scheduler=scheduler,
            latents=latents,
            decode_chunk_size=decode_chunk_size,
            progress=progress,
        )[0]
