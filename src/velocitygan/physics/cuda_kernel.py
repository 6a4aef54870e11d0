"""OpenFWI's recipe as a hand-written CUDA kernel that advances several time steps per launch.

The compiled PyTorch recipe (``torch_backend``) runs one pass over the wavefields per time step
and so is bound by memory bandwidth: at least 12 bytes per cell and step, 4.8e8 cell-steps per
sample with the 120-cell sponge. ``recipe_kernel.cu`` keeps a tile of the wavefield in on-chip
memory for ``TileConfig.steps`` steps (temporal blocking), which divides that traffic by about
the number of steps, at the price of recomputing a halo of ``2 * steps`` cells around each tile.

Same equations, source and receivers as :func:`~velocitygan.physics.torch_backend.simulate_torch`
(float32; results differ from it by rounding only). Forward only: no autograd.

The kernel is compiled at run time with NVRTC (``torch.cuda._compile_kernel``), once per tile
configuration and process. :func:`simulate_tiled` takes a ``launcher`` so that the host code and
the kernel (compiled as C++) run on the CPU in the tests.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from velocitygan.errors import ConfigError
from velocitygan.physics.acquisition import Acquisition
from velocitygan.physics.kernel_check import TOLERANCE, recipe_disagreement
from velocitygan.physics.torch_backend import source_amplitudes, sponge_profile

__all__ = [
    "KERNEL_FILE", "TILE_ENV", "TileConfig", "default_tile", "kernel_source", "self_check",
    "simulate_tiled",
]

KERNEL_FILE = Path(__file__).with_name("recipe_kernel.cu")
KERNEL_NAME = "recipe_steps"
MAX_THREADS = 1024
MAX_STATIC_SHARED_BYTES = 48 * 1024
MAX_GRID_Z = 65535

# (grid, block, args) -> None; args are tensors (passed as pointers) and Python ints (C int)
Launcher = Callable[[tuple[int, int, int], tuple[int, int, int], list[Any]], None]


@dataclass(frozen=True)
class TileConfig:
    """How the kernel tiles the padded grid.

    Attributes:
        tile_x: Output tile width in cells.
        tile_z: Output tile height in cells.
        steps: Time steps per launch; each tile reads a halo of ``2 * steps`` cells.
        rows_per_thread: Cells of one column that each thread keeps in registers.
        buffers: Shared-memory copies of the field: 2 needs one barrier per step, 1 needs two
            but half the shared memory.
        min_blocks: Blocks per multiprocessor that the register allocation must allow (more
            blocks hide barrier waits; too many registers per thread then spill).
    """

    tile_x: int = 48
    tile_z: int = 48
    steps: int = 4
    rows_per_thread: int = 16
    buffers: int = 2
    min_blocks: int = 1

    @property
    def region(self) -> tuple[int, int]:
        """(height, width) in cells that one block holds: the tile plus its halo."""
        halo = 2 * self.steps
        return self.tile_z + 2 * halo, self.tile_x + 2 * halo

    @property
    def threads(self) -> int:
        """Threads per block: one per column and strip of ``rows_per_thread`` cells."""
        height, width = self.region
        return width * (height // self.rows_per_thread)

    @property
    def shared_bytes(self) -> int:
        """Shared memory per block: the region with a 2-cell frame, per buffer, float32."""
        height, width = self.region
        return self.buffers * (height + 4) * (width + 4) * 4

    @classmethod
    def parse(cls, text: str) -> TileConfig:
        """``"TXxTZxSTEPSxROWS[xBUFFERS[xMIN_BLOCKS]]"`` (e.g. ``48x48x4x16``) -> checked
        configuration; buffers default to 2, min_blocks to 1. Raises :class:`ConfigError`."""
        try:
            values = [int(v) for v in text.strip().lower().split("x")]
        except ValueError:
            values = []
        if not 4 <= len(values) <= 6:
            raise ConfigError(f"tile {text!r}: expected TXxTZxSTEPSxROWS[xBUFFERS[xMIN_BLOCKS]] "
                              "of integers, e.g. 48x48x4x16")
        tx, tz, k, rows, *rest = values
        buffers, min_blocks = (rest + [2, 1][len(rest):])[:2]
        return cls(tile_x=tx, tile_z=tz, steps=k, rows_per_thread=rows, buffers=buffers,
                   min_blocks=min_blocks).check()

    @property
    def spec(self) -> str:
        """The configuration in :meth:`parse`'s notation."""
        return (f"{self.tile_x}x{self.tile_z}x{self.steps}x{self.rows_per_thread}x"
                f"{self.buffers}x{self.min_blocks}")

    def check(self) -> TileConfig:
        """Return self, or raise :class:`ConfigError` if the kernel cannot be built so."""
        height, width = self.region
        if min(self.tile_x, self.tile_z, self.steps, self.rows_per_thread) < 1:
            raise ConfigError(f"tile sizes, steps and rows_per_thread must be >= 1, got {self}")
        if self.buffers not in (1, 2):
            raise ConfigError(f"buffers must be 1 or 2, got {self.buffers}")
        if not 1 <= self.min_blocks <= 32:
            raise ConfigError(f"min_blocks must be in 1..32, got {self.min_blocks}")
        if height % self.rows_per_thread:
            raise ConfigError(
                f"tile_z + 4 * steps = {height} must be a multiple of rows_per_thread "
                f"= {self.rows_per_thread}"
            )
        if self.threads > MAX_THREADS:
            raise ConfigError(f"{self} needs {self.threads} threads per block (max 1024)")
        if self.shared_bytes > MAX_STATIC_SHARED_BYTES:
            raise ConfigError(
                f"{self} needs {self.shared_bytes} bytes of shared memory "
                "(max 48 KiB; buffers=1 halves it)"
            )
        return self


def kernel_source(config: TileConfig) -> str:
    """The CUDA source with the tile configuration's constants defined in front."""
    cfg = config.check()
    defines = (
        f"#define TX {cfg.tile_x}\n#define TZ {cfg.tile_z}\n#define K {cfg.steps}\n"
        f"#define SEG {cfg.rows_per_thread}\n"
        f"#define NSEG {cfg.region[0] // cfg.rows_per_thread}\n#define NBUF {cfg.buffers}\n"
        f"#define MIN_BLOCKS {cfg.min_blocks}\n"
    )
    return defines + KERNEL_FILE.read_text()


TILE_ENV = "VELOCITYGAN_CUDA_TILE"


def default_tile() -> TileConfig:
    """The tiling used when none is given: ``$VELOCITYGAN_CUDA_TILE`` (in
    :meth:`TileConfig.parse` notation; ``bench/bench_kernel.py --best FILE`` finds the fastest
    on a card) or :class:`TileConfig`'s defaults."""
    text = os.environ.get(TILE_ENV, "").strip()
    if not text:
        return TileConfig().check()
    try:
        return TileConfig.parse(text)
    except ConfigError as exc:
        raise ConfigError(f"${TILE_ENV}: {exc}") from None


_COMPILED: dict[tuple[TileConfig, int], Any] = {}
SELF_CHECK_STEPS = 120


def _cuda_launcher(config: TileConfig, device: torch.device) -> Launcher:
    """NVRTC-compile the kernel for ``device`` (cached) and return a launcher for it."""
    index = device.index if device.index is not None else torch.cuda.current_device()
    key = (config, index)
    if key not in _COMPILED:
        if not hasattr(torch.cuda, "_compile_kernel"):
            raise ConfigError(
                f"the tiled recipe kernel needs torch.cuda._compile_kernel (PyTorch >= 2.8), "
                f"this is {torch.__version__}; use compile_mode='auto'"
            )
        with torch.cuda.device(index):
            kernel = torch.cuda._compile_kernel(kernel_source(config), KERNEL_NAME)
        self_check(config, _launcher(kernel), device)
        _COMPILED[key] = kernel
    return _launcher(_COMPILED[key])


def _launcher(kernel: Any) -> Launcher:
    def launch(grid: tuple[int, int, int], block: tuple[int, int, int], args: list[Any]) -> None:
        kernel(grid=grid, block=block, args=args)

    return launch


def self_check(
    config: TileConfig,
    launcher: Launcher,
    device: torch.device,
    acquisition: Acquisition | None = None,
) -> None:
    """Compare a kernel with the eager recipe on one model (OpenFWI grid, 120 steps).

    Run once per compiled kernel before its first use: guards against a kernel that compiles
    but computes something else on this GPU (compiler, architecture), whose output would
    otherwise look like valid seismic data. Raises :class:`ConfigError` on disagreement.
    """
    acq = acquisition or Acquisition(nt=SELF_CHECK_STEPS)
    err = recipe_disagreement(
        lambda v, a, w: simulate_tiled(v, a, w, config=config, launcher=launcher), acq, device
    )
    if not err < TOLERANCE:
        raise ConfigError(
            f"the tiled recipe kernel {config} disagrees with the recipe on this GPU (relative "
            f"L2 {err:.1e} after {acq.nt} steps); use compile_mode='auto'"
        )


def _receiver_map(acq: Acquisition, width: int, device: torch.device) -> torch.Tensor:
    """``(width,)`` int32: receiver index of each padded column, -1 where there is none."""
    if len(set(acq.rec_x)) != len(acq.rec_x):
        raise ConfigError("the CUDA kernel needs distinct receiver columns (rec_x repeats one)")
    rec_map = torch.full((width,), -1, dtype=torch.int32)
    columns = torch.tensor(acq.rec_x) + acq.pad_cells
    rec_map[columns] = torch.arange(acq.n_receivers, dtype=torch.int32)
    return rec_map.to(device)


def simulate_tiled(
    velocity_mps: torch.Tensor,
    acquisition: Acquisition,
    wavelet: torch.Tensor,
    *,
    config: TileConfig | None = None,
    launcher: Launcher | None = None,
) -> torch.Tensor:
    """Simulate all shots of all models with the temporally blocked kernel.

    Args:
        velocity_mps: ``(N, nz, nx)`` float32 velocity in m/s (checked), on a CUDA device
            (any device when ``launcher`` is given).
        acquisition: Geometry and discretisation.
        wavelet: ``(nt,)`` source time function on the same device.
        config: Tiling (default: :func:`default_tile`).
        launcher: Runs one launch; default: the NVRTC-compiled kernel on the input's device.

    Returns:
        ``(N, n_shots, nt, n_receivers)`` float32 pressure at the receivers.
    """
    cfg = (config or default_tile()).check()
    acq, pad, dev = acquisition, acquisition.pad_cells, velocity_mps.device
    if launcher is None:
        if dev.type != "cuda":
            raise ConfigError("the tiled recipe kernel runs on CUDA only; use --device cuda")
        launcher = _cuda_launcher(cfg, dev)
    v = velocity_mps.detach().float().contiguous()
    n_models, n_shots = v.shape[0], acq.n_shots
    height, width = acq.nz + 2 * pad, acq.nx + 2 * pad
    kappa, _ = sponge_profile(acq, v.amin(dim=(1, 2)))
    kappa_dt = (kappa * acq.dt_s).float().contiguous()
    src_amp = source_amplitudes(v, acq, wavelet.float()).float().contiguous()  # (N, S, nt)
    src_x32 = torch.tensor(acq.src_x, dtype=torch.int32, device=dev) + pad
    rec_map = _receiver_map(acq, width, dev)
    courant = torch.tensor([acq.dt_s / acq.dx_m], dtype=torch.float32, device=dev)
    out = torch.empty(n_models, n_shots, acq.nt, acq.n_receivers, device=dev)
    per_call = max(1, MAX_GRID_Z // n_shots)  # gridDim.z counts (model, shot) pairs
    for lo in range(0, n_models, per_call):
        hi = min(n_models, lo + per_call)
        fields = torch.zeros(4, hi - lo, n_shots, height, width, device=dev)
        p, q, p_next, q_next = fields.unbind(0)
        grid = (math.ceil(width / cfg.tile_x), math.ceil(height / cfg.tile_z), (hi - lo) * n_shots)
        block = (cfg.threads, 1, 1)
        for t0 in range(0, acq.nt, cfg.steps):
            n_steps = min(cfg.steps, acq.nt - t0)
            launcher(grid, block, [
                p, q, p_next, q_next, v[lo:hi], kappa_dt[lo:hi], src_amp[lo:hi], src_x32,
                rec_map, out[lo:hi], n_shots, height, width, acq.nz, acq.nx, pad, acq.nt, t0,
                n_steps, acq.src_z + pad, acq.rec_z + pad, acq.n_receivers, courant,
            ])
            p, q, p_next, q_next = p_next, q_next, p, q
    return out
