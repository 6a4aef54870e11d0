"""Networks: InversionNet (the VelocityGAN generator) and the WGAN-GP critic.

Both follow the OpenFWI reference architectures (Deng et al. 2022; Zhang & Lin 2020) layer for
layer, so reference checkpoints map onto ours by a key prefix only:

* ``InversionNet.encoder`` holds ``convblock1``, ``convblock2_1`` ... ``convblock7_2``,
  ``convblock8``; ``InversionNet.decoder`` holds ``deconv1_1`` ... ``deconv5_2``, ``crop``
  (no parameters) and ``deconv6``. Each block keeps its layers in ``.layers`` (an
  ``nn.Sequential``: conv, norm, activation), as in the reference code: a reference key
  ``deconv6.layers.1.running_mean`` is ours ``decoder.deconv6.layers.1.running_mean``
  (:func:`reference_key_to_ours`).
* ``Discriminator`` holds ``convblock1_1`` ... ``convblock4_2`` and ``convblock5`` (the score)
  with the reference names directly.

Shapes: seismic input ``(N, 5, nt, n_receivers)`` (normalised, dimensionless), velocity output
``(N, 1, 70, 70)`` normalised to [-1, 1]. The reference hard-codes ``nt = 1000`` through the
full-extent ``convblock8`` kernel (8, 9); here that kernel is computed from the configured
``nt`` / ``n_receivers`` so other record lengths and receiver counts work.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from torch import nn

from velocitygan.errors import ConfigError, VelocityGANError

__all__ = ["InversionNet", "Discriminator", "build_generator", "build_discriminator",
           "count_parameters", "reference_key_to_ours", "CRITIC_NORMS", "DEFAULT_CRITIC_NORM"]

LEAKY_SLOPE = 0.2  # reference LeakyReLU slope for every block
CROP_PX = 5  # the decoder produces 80 x 80; the reference crops 5 px per side -> 70 x 70
OUTPUT_SIZE = 70  # velocity-map side (grid cells)
CRITIC_NORMS = ("batch", "none", "layer", "instance", "spectral")
# Best mean validation MAE in bench/bench_critic_norm.py (bench/results/critic_norm.md), but only
# 10 m/s ahead of "instance", within seed noise; BatchNorm largely mutes the adversarial signal.
DEFAULT_CRITIC_NORM = "batch"

Size2 = int | tuple[int, int]


def _scaled(channels: int, width: float) -> int:
    return max(1, int(round(channels * width)))


def _check_width(width: float, name: str) -> float:
    if not isinstance(width, int | float) or isinstance(width, bool) or not width > 0:
        raise ConfigError(f"{name}: width must be a positive number, got {width!r}")
    return float(width)


def _check_positive_int(value: Any, what: str, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name}: {what} must be a positive integer, got {value!r}")
    return value


class ConvBlock(nn.Module):
    """Conv2d (ConvTranspose2d with ``transpose``) -> norm ("batch", "layer", "instance" or
    "none"; "spectral" divides the conv's weight by its largest singular value instead) ->
    activation ("lrelu" = LeakyReLU 0.2, "tanh" or "none"), kept in ``.layers``."""

    def __init__(self, in_ch: int, out_ch: int, *, kernel_size: Size2 = 3, stride: Size2 = 1,
                 padding: Size2 = 1, norm: str = "batch", activation: str = "lrelu",
                 transpose: bool = False) -> None:
        super().__init__()
        conv_cls = nn.ConvTranspose2d if transpose else nn.Conv2d
        layers: list[nn.Module] = [conv_cls(in_ch, out_ch, kernel_size, stride, padding)]
        if norm == "spectral":
            layers[0] = nn.utils.parametrizations.spectral_norm(layers[0])
        if norm == "batch":
            layers.append(nn.BatchNorm2d(out_ch))
        elif norm == "layer":  # GroupNorm with one group == LayerNorm over (C, H, W)
            layers.append(nn.GroupNorm(1, out_ch))
        elif norm == "instance":
            layers.append(nn.InstanceNorm2d(out_ch, affine=True))
        if activation == "lrelu":
            layers.append(nn.LeakyReLU(LEAKY_SLOPE, inplace=True))
        elif activation == "tanh":
            layers.append(nn.Tanh())
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class CentreCrop(nn.Module):
    """Remove ``px`` cells from each side of the last two dimensions."""

    def __init__(self, px: int) -> None:
        super().__init__()
        self.px = px

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., self.px:-self.px, self.px:-self.px]


def _encoder_blocks(width: float, in_channels: int) -> OrderedDict[str, nn.Module]:
    """Encoder stages 1-7 (before the full-extent conv): 1-4 along time only, 5-7 3x3."""
    c1, c2, c3, c4 = (_scaled(c, width) for c in (32, 64, 128, 256))
    down = {"kernel_size": (3, 1), "stride": (2, 1), "padding": (1, 0)}
    keep = {"kernel_size": (3, 1), "padding": (1, 0)}
    return OrderedDict([
        ("convblock1", ConvBlock(in_channels, c1, kernel_size=(7, 1), stride=(2, 1),
                                 padding=(3, 0))),
        ("convblock2_1", ConvBlock(c1, c2, **down)), ("convblock2_2", ConvBlock(c2, c2, **keep)),
        ("convblock3_1", ConvBlock(c2, c2, **down)), ("convblock3_2", ConvBlock(c2, c2, **keep)),
        ("convblock4_1", ConvBlock(c2, c3, **down)), ("convblock4_2", ConvBlock(c3, c3, **keep)),
        ("convblock5_1", ConvBlock(c3, c3, stride=2)), ("convblock5_2", ConvBlock(c3, c3)),
        ("convblock6_1", ConvBlock(c3, c4, stride=2)), ("convblock6_2", ConvBlock(c4, c4)),
        ("convblock7_1", ConvBlock(c4, c4, stride=2)), ("convblock7_2", ConvBlock(c4, c4)),
    ])


class InversionNet(nn.Module):
    """InversionNet encoder-decoder: seismic records -> normalised velocity map.

    Args:
        width: channel multiplier (1.0 = reference 32..512 channels; 0.5 -> 16..256).
        in_channels: number of shots (input channels), 5 for OpenFWI.
        nt: time samples per trace the model accepts (1000 for OpenFWI, 1 ms sampling).
        n_receivers: receivers per shot (70 for OpenFWI).

    Input ``(N, in_channels, nt, n_receivers)`` normalised seismic; output ``(N, 1, 70, 70)``
    normalised velocity in [-1, 1]. With width 1.0 and the defaults: 24,409,123 parameters.
    """

    def __init__(self, *, width: float = 1.0, in_channels: int = 5, nt: int = 1000,
                 n_receivers: int = 70) -> None:
        super().__init__()
        name = "InversionNet"
        width = _check_width(width, name)
        in_channels = _check_positive_int(in_channels, "in_channels", name)
        nt = _check_positive_int(nt, "nt (time samples)", name)
        n_receivers = _check_positive_int(n_receivers, "n_receivers", name)
        self.config: dict[str, Any] = {"width": width, "in_channels": in_channels, "nt": nt,
                                       "n_receivers": n_receivers}
        blocks = _encoder_blocks(width, in_channels)
        t, r = nt, n_receivers
        for block in blocks.values():  # (t, r) after each conv
            conv = block.layers[0]
            t, r = ((n + 2 * p - k) // s + 1 for n, k, s, p in
                    zip((t, r), conv.kernel_size, conv.stride, conv.padding, strict=True))
        # Full-extent conv: kernel (8, 9) at nt=1000, 70 receivers; adapts to other sizes.
        self.latent_kernel = (t, r)
        c4, c5 = _scaled(256, width), _scaled(512, width)
        blocks["convblock8"] = ConvBlock(c4, c5, kernel_size=(t, r), padding=0)
        self.encoder = nn.Sequential(blocks)
        self.decoder = nn.Sequential(_decoder_blocks(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map seismic ``(N, C, nt, n_receivers)`` to velocity ``(N, 1, 70, 70)`` in [-1, 1]."""
        expected = (self.config["in_channels"], self.config["nt"], self.config["n_receivers"])
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise VelocityGANError(f"InversionNet expects input of shape (N, {expected[0]}, "
                                   f"{expected[1]}, {expected[2]}) (shots, time samples, "
                                   f"receivers), got {tuple(x.shape)}; build the model with "
                                   "matching in_channels/nt/n_receivers")
        return self.decoder(self.encoder(x))


def _decoder_blocks(width: float) -> OrderedDict[str, nn.Module]:
    c1, c2, c3, c4, c5 = (_scaled(c, width) for c in (32, 64, 128, 256, 512))
    up = {"kernel_size": 4, "stride": 2, "padding": 1, "transpose": True}
    return OrderedDict([
        # 1x1 -> 5x5 (stride irrelevant at 1x1 input; kept 2 as in the reference)
        ("deconv1_1", ConvBlock(c5, c5, kernel_size=5, stride=2, padding=0, transpose=True)),
        ("deconv1_2", ConvBlock(c5, c5)),
        ("deconv2_1", ConvBlock(c5, c4, **up)), ("deconv2_2", ConvBlock(c4, c4)),  # 10x10
        ("deconv3_1", ConvBlock(c4, c3, **up)), ("deconv3_2", ConvBlock(c3, c3)),  # 20x20
        ("deconv4_1", ConvBlock(c3, c2, **up)), ("deconv4_2", ConvBlock(c2, c2)),  # 40x40
        ("deconv5_1", ConvBlock(c2, c1, **up)), ("deconv5_2", ConvBlock(c1, c1)),  # 80x80
        ("crop", CentreCrop(CROP_PX)),  # 70x70
        ("deconv6", ConvBlock(c1, 1, activation="tanh")),
    ])


class Discriminator(nn.Module):
    """WGAN-GP critic: velocity map ``(N, C, 70, 70)`` -> one score per sample ``(N, 1)``.

    Pairs of 3x3 conv blocks (stride 2 then 1) with 32, 64, 128, 256 channels
    (70 -> 35 -> 18 -> 9 -> 5), then a 5x5 conv without padding to one score.

    Args:
        width: channel multiplier (1.0 = reference).
        norm: "batch" reproduces the reference exactly (BatchNorm + LeakyReLU in every block,
            even after the score conv; 1,180,003 parameters at width 1.0). "none", "layer"
            (GroupNorm(1, C) == LayerNorm over C,H,W), "instance" (InstanceNorm2d, affine) and
            "spectral" (every conv, the score's too, spectrally normalised) keep the penalty
            free of cross-sample coupling; their score is a linear conv (normalising a single
            1x1 value would zero it).
        in_channels: input channels (1 velocity map).
    """

    def __init__(self, *, width: float = 1.0, norm: str = DEFAULT_CRITIC_NORM,
                 in_channels: int = 1) -> None:
        super().__init__()
        width = _check_width(width, "Discriminator")
        in_channels = _check_positive_int(in_channels, "in_channels", "Discriminator")
        if norm not in CRITIC_NORMS:
            raise ConfigError(f"Discriminator: unknown norm {norm!r}; "
                              f"choose one of {', '.join(CRITIC_NORMS)}")
        self.config: dict[str, Any] = {"width": width, "norm": norm, "in_channels": in_channels}
        chans = [in_channels] + [_scaled(c, width) for c in (32, 64, 128, 256)]
        for i in range(1, 5):
            cin, cout = chans[i - 1], chans[i]
            self.add_module(f"convblock{i}_1", ConvBlock(cin, cout, stride=2, norm=norm))
            self.add_module(f"convblock{i}_2", ConvBlock(cout, cout, norm=norm))
        faithful = norm == "batch"
        self.convblock5 = ConvBlock(chans[4], 1, kernel_size=5, padding=0,
                                    norm=norm if norm in ("batch", "spectral") else "none",
                                    activation="lrelu" if faithful else "none")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Score ``(N, 1)`` for velocity maps ``(N, C, 70, 70)`` (normalised, [-1, 1])."""
        expected = (self.config["in_channels"], OUTPUT_SIZE, OUTPUT_SIZE)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise VelocityGANError(f"Discriminator expects input of shape (N, {expected[0]}, "
                                   f"{OUTPUT_SIZE}, {OUTPUT_SIZE}), got {tuple(x.shape)}")
        for block in self.children():
            x = block(x)
        return x.flatten(1)


def _build(cls: type[nn.Module], config: dict[str, Any], allowed: tuple[str, ...]) -> nn.Module:
    if not isinstance(config, dict):
        raise ConfigError(f"{cls.__name__} config must be a dict, got {type(config).__name__}")
    if unknown := sorted(set(config) - set(allowed)):
        raise ConfigError(f"{cls.__name__} config has unknown key(s) {unknown}; "
                          f"allowed: {list(allowed)}")
    return cls(**config)


def build_generator(config: dict[str, Any]) -> InversionNet:
    """Rebuild an :class:`InversionNet` from its ``.config`` dict (keyword arguments)."""
    return _build(InversionNet, config, ("width", "in_channels", "nt", "n_receivers"))


def build_discriminator(config: dict[str, Any]) -> Discriminator:
    """Rebuild a :class:`Discriminator` from its ``.config`` dict (keyword arguments)."""
    return _build(Discriminator, config, ("width", "norm", "in_channels"))


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (trainable or not; BatchNorm running stats excluded)."""
    return sum(p.numel() for p in model.parameters())


def reference_key_to_ours(key: str, network: str = "generator") -> str:
    """Map an OpenFWI reference state_dict key to ours (``network``: generator|discriminator).

    Legacy reference names (``Conv2DwithBN`` etc.) must be renamed to ``layers`` first.
    """
    if network == "discriminator":
        return key
    head = key.split(".", 1)[0]
    return ("encoder." if head.startswith("convblock") else "decoder.") + key
