"""The temporally blocked CUDA recipe kernel, run on the CPU through a C++ emulation of CUDA.

``tests/cuda_emu`` compiles ``recipe_kernel.cu`` with g++ (one OS thread per CUDA thread,
``__syncthreads`` as a barrier), and :func:`simulate_tiled` drives it with the same host code and
argument list as on a GPU. On a CUDA machine the last test runs the NVRTC-compiled kernel too.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from velocitygan.errors import ConfigError
from velocitygan.physics import Acquisition, ricker
from velocitygan.physics.cuda_kernel import (
    TileConfig,
    kernel_source,
    self_check,
    simulate_tiled,
)
from velocitygan.physics.torch_backend import simulate_torch

EMU = Path(__file__).with_name("cuda_emu")
needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++ for the emulation")

# 12 x 12 model, 6-cell sponge: a 24 x 24 padded grid, several tiles in each direction
SMALL = Acquisition(nz=12, nx=12, nt=40, pad_cells=6, src_x=(0, 6, 11), rec_x=tuple(range(12)))
SPARSE = Acquisition(nz=12, nx=12, nt=40, pad_cells=6, src_x=(3, 8), src_z=2,
                     rec_x=(0, 2, 5, 9, 11), rec_z=3)
SQUARE = TileConfig(tile_x=8, tile_z=8, steps=2, rows_per_thread=4)  # 64 threads
# ragged tiles, 40 steps = 13 * 3 + 1, one shared buffer (two barriers per step)
ODD = TileConfig(tile_x=10, tile_z=6, steps=3, rows_per_thread=6, buffers=1)


def emulated_launcher(config: TileConfig, workdir: Path):
    """Compile the kernel as C++ with the CUDA emulation; return a launcher for simulate_tiled."""
    source = workdir / "recipe_emu.cpp"
    source.write_text(
        '#include "cuda_emu.h"\n' + kernel_source(config) + (EMU / "launch_recipe.cpp").read_text()
    )
    library = workdir / "recipe_emu.so"
    subprocess.run(
        ["g++", "-O1", "-std=c++20", "-pthread", "-shared", "-fPIC", f"-I{EMU}", str(source),
         "-o", str(library)],
        check=True, capture_output=True, text=True,
    )
    dll = ctypes.CDLL(str(library))

    def launch(grid, block, args) -> None:
        values = []
        for arg in args:  # the conversion torch.cuda's kernel launcher applies
            if isinstance(arg, torch.Tensor):
                assert arg.is_contiguous()
                values.append(ctypes.c_void_p(arg.data_ptr()))
            else:
                assert isinstance(arg, int)
                values.append(ctypes.c_int(arg))
        pointers = (ctypes.c_void_p * len(values))(
            *[ctypes.cast(ctypes.byref(v), ctypes.c_void_p) for v in values]
        )
        dll.emu_launch(*(ctypes.c_uint(g) for g in grid), ctypes.c_uint(block[0]), pointers)

    return launch


@pytest.fixture(scope="module")
def launchers(tmp_path_factory) -> dict[TileConfig, object]:
    if shutil.which("g++") is None:
        pytest.skip("needs g++ for the emulation")
    out = {}
    for cfg in (SQUARE, ODD):
        out[cfg] = emulated_launcher(cfg, tmp_path_factory.mktemp(f"emu{cfg.tile_x}"))
    return out


def models(acq: Acquisition) -> torch.Tensor:
    """A layered model and a faulted one with a slow wedge (1500-4500 m/s)."""
    z = np.arange(acq.nz)[:, None] * np.ones((1, acq.nx))
    layered = 1800.0 + 200.0 * (z // 3)
    x = np.arange(acq.nx)[None, :] * np.ones((acq.nz, 1))
    faulted = np.where(z > 0.6 * x + 3, 3900.0, 2300.0)
    faulted[:4, 2:6] = 1500.0
    return torch.tensor(np.stack([layered, faulted]), dtype=torch.float32)


def wavelet(acq: Acquisition) -> torch.Tensor:
    """A Ricker peaking early enough that 40 steps see its whole main lobe."""
    return torch.from_numpy(ricker(60.0, acq.dt_s, acq.nt))


def rel_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@needs_gxx
@pytest.mark.parametrize("acq", [SMALL, SPARSE], ids=["dense", "sparse"])
def test_emulated_kernel_matches_the_torch_recipe(launchers, acq):
    v, w = models(acq), wavelet(acq)
    ref = simulate_torch(v, acq, w)
    got = simulate_tiled(v, acq, w, config=SQUARE, launcher=launchers[SQUARE])
    assert got.shape == ref.shape == (2, acq.n_shots, acq.nt, acq.n_receivers)
    assert float(ref.abs().max()) > 1e-3  # the wave reached the receivers
    assert rel_l2(got, ref) < 1e-5


@needs_gxx
def test_tiling_does_not_change_a_single_bit(launchers):
    v, w = models(SPARSE), wavelet(SPARSE)
    square = simulate_tiled(v, SPARSE, w, config=SQUARE, launcher=launchers[SQUARE])
    ragged = simulate_tiled(v, SPARSE, w, config=ODD, launcher=launchers[ODD])
    assert torch.equal(square, ragged)


@needs_gxx
def test_self_check_passes_a_good_kernel_and_stops_a_wrong_one(launchers):
    cpu = torch.device("cpu")
    self_check(SQUARE, launchers[SQUARE], cpu, SMALL)

    def forgets_the_source(grid, block, args):
        args[6] = torch.zeros_like(args[6])  # src_amp: a kernel that never injects
        launchers[SQUARE](grid, block, args)

    with pytest.raises(ConfigError, match="disagrees with the recipe"):
        self_check(SQUARE, forgets_the_source, cpu, SMALL)


def test_tile_config_is_checked_before_compiling():
    assert TileConfig().check().threads == 64 * 4
    with pytest.raises(ConfigError, match="multiple of rows_per_thread"):
        TileConfig(rows_per_thread=5).check()
    with pytest.raises(ConfigError, match="threads per block"):
        TileConfig(tile_x=100, tile_z=100, steps=2, rows_per_thread=2).check()
    big = TileConfig(tile_x=72, tile_z=72, steps=6, rows_per_thread=12)
    with pytest.raises(ConfigError, match="shared memory"):
        big.check()
    assert TileConfig(tile_x=72, tile_z=72, steps=6, rows_per_thread=12, buffers=1).check()
    assert "#define K 4" in kernel_source(TileConfig())


def test_tile_spec_and_environment_override(monkeypatch):
    from velocitygan.physics.cuda_kernel import TILE_ENV, default_tile

    odd = TileConfig.parse("10x6x3x6x1")
    assert odd == ODD and TileConfig.parse(odd.spec) == odd and odd.spec == "10x6x3x6x1x1"
    for bad in ("48x48", "48x48x4xa", "48x48x4x5"):
        with pytest.raises(ConfigError, match="48x48x4x16|multiple of rows_per_thread"):
            TileConfig.parse(bad)
    monkeypatch.delenv(TILE_ENV, raising=False)
    assert default_tile() == TileConfig()
    monkeypatch.setenv(TILE_ENV, " 62x62x4x13x1 ")
    assert default_tile() == TileConfig(tile_x=62, tile_z=62, steps=4, rows_per_thread=13,
                                        buffers=1)
    monkeypatch.setenv(TILE_ENV, "big")
    with pytest.raises(ConfigError, match=f"^\\${TILE_ENV}: tile 'big'"):
        default_tile()


def test_tiled_kernel_needs_cuda_and_no_gradient():
    v = models(SMALL)
    with pytest.raises(ConfigError, match="CUDA only"):
        simulate_tiled(v, SMALL, wavelet(SMALL))  # on the CPU, compile_mode="kernel" is C++
    from velocitygan.physics import _simulate_kernel

    off_cpu = torch.empty(1, 12, 12, device="meta")  # stands in for a CUDA tensor
    with pytest.raises(ConfigError, match="CUDA recipe kernel has no gradient"):
        _simulate_kernel(off_cpu, SMALL, wavelet(SMALL), grad=True)
    repeated = Acquisition(nz=12, nx=12, nt=40, pad_cells=6, rec_x=(1, 1, 2), src_x=(4,))
    with pytest.raises(ConfigError, match="distinct receiver"):
        simulate_tiled(models(repeated), repeated, wavelet(repeated), launcher=lambda *a: None)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_kernel_matches_the_torch_recipe():
    acq = Acquisition(nt=300)
    v = models(SMALL).repeat_interleave(6, dim=1).repeat_interleave(6, dim=2)[:, :70, :70]
    v, w = v.cuda(), wavelet(acq).cuda()
    ref = simulate_torch(v, acq, w)
    for cfg in (TileConfig(), TileConfig(tile_x=72, tile_z=72, steps=6, rows_per_thread=12,
                                         buffers=1)):
        assert rel_l2(simulate_tiled(v, acq, w, config=cfg), ref) < 1e-5
