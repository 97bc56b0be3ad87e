"""Neural network models (denoisers and their building blocks)."""

from vidsynth.models.unet3d import UNet3DConfig, UNet3DModel

__all__ = ["UNet3DConfig", "UNet3DModel"]
