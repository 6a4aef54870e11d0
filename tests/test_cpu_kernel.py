"""The C++ recipe kernel for the CPU (built with the system compiler on first use)."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest
import torch

import velocitygan.physics as physics
from velocitygan.errors import ConfigError
from velocitygan.physics import Acquisition, cpu_build, cpu_kernel, forward_model
from velocitygan.physics.cpu_kernel import load_library, simulate_cpu
from velocitygan.physics.torch_backend import simulate_torch

pytestmark = pytest.mark.skipif(
    not any(shutil.which(c) for c in ("g++", "c++")), reason="needs a C++ compiler"
)

SPARSE = Acquisition(nz=20, nx=16, nt=120, pad_cells=10, src_x=(3, 12), src_z=2,
                     rec_x=(0, 2, 5, 9, 15), rec_z=4)


def models(nz: int, nx: int) -> torch.Tensor:
    """A layered model and a faulted one with a slow wedge (1500-4500 m/s)."""
    z = np.arange(nz)[:, None] * np.ones((1, nx))
    x = np.arange(nx)[None, :] * np.ones((nz, 1))
    layered = 1700.0 + 2500.0 * (z // max(1, nz // 5)) / 5
    faulted = np.where(z > 0.6 * x + nz / 5, 3900.0, 2300.0)
    faulted[: nz // 6, nx // 6: nx // 3] = 1500.0
    return torch.tensor(np.stack([layered, faulted]), dtype=torch.float32)


def rel_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def test_full_size_kernel_matches_the_eager_recipe():
    acq = Acquisition(nt=500)
    v = models(70, 70)
    eager = forward_model(v, acq, backend="torch", eager=True)
    fast = forward_model(v, acq, backend="torch")
    assert fast.shape == eager.shape == (2, 5, 500, 70) and fast.dtype == torch.float32
    assert float(eager.abs().max()) > 1.0
    assert rel_l2(fast, eager) < 1e-5


def test_any_geometry_and_any_thread_count():
    v = models(SPARSE.nz, SPARSE.nx)
    w = torch.from_numpy(physics.ricker(25.0, SPARSE.dt_s, SPARSE.nt))
    eager = simulate_torch(v, SPARSE, w)
    one = simulate_cpu(v, SPARSE, w, threads=1)
    two = simulate_cpu(v, SPARSE, w, threads=2)
    assert rel_l2(one, eager) < 1e-5
    assert torch.equal(one, two)  # threads split shots, not arithmetic


def test_auto_uses_the_kernel_on_cpu_with_and_without_gradients(monkeypatch):
    calls = []
    real = cpu_kernel.simulate_cpu

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(cpu_kernel, "simulate_cpu", spy)
    v = models(SPARSE.nz, SPARSE.nx)
    forward_model(v, SPARSE, backend="torch")
    assert calls == [1]
    v.requires_grad_()
    out = forward_model(v, SPARSE, backend="torch")
    assert calls == [1, 1] and out.requires_grad


def test_gradient_matches_autograd_through_the_eager_recipe():
    acq = Acquisition(nt=250)
    noise = torch.rand(1, 70, 70, generator=torch.Generator().manual_seed(0))
    v0 = models(70, 70)[1:] + 30.0 * noise
    weights = torch.randn(1, 5, 250, 70, generator=torch.Generator().manual_seed(1))
    grads = []
    for eager in (False, True):
        v = v0.clone().requires_grad_(True)
        (forward_model(v, acq, backend="torch", eager=eager) * weights).sum().backward()
        grads.append(v.grad)
    assert float(grads[1].abs().max()) > 0
    assert rel_l2(grads[0], grads[1]) < 1e-4  # float32 sums over 250 steps: ~1e-5 seen


def test_no_compiler_falls_back_once_with_a_warning(monkeypatch):
    monkeypatch.setattr(cpu_kernel, "_LIBRARY", [])
    monkeypatch.setattr(physics, "_AUTO_BROKEN", set())
    monkeypatch.setattr(cpu_build.shutil, "which", lambda name: None)
    v = models(SPARSE.nz, SPARSE.nx)
    with pytest.raises(ConfigError, match="needs a C\\+\\+ compiler"):
        load_library()
    with pytest.warns(UserWarning, match="C\\+\\+ recipe kernel unavailable"):
        first = forward_model(v, SPARSE, backend="torch")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once, then quietly eager
        second = forward_model(v, SPARSE, backend="torch")
    assert torch.equal(first, second)
    assert torch.equal(first, forward_model(v, SPARSE, backend="torch", eager=True))


def test_build_is_cached_and_atomic(monkeypatch, tmp_path):
    monkeypatch.setenv("VELOCITYGAN_CACHE", str(tmp_path / "cache"))
    first = cpu_build.build_library()
    stamp = first.stat().st_mtime_ns
    assert cpu_build.build_library() == first and first.stat().st_mtime_ns == stamp
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [first.name]  # no temp left


def test_build_is_shareable_and_a_broken_cached_file_is_rebuilt(monkeypatch, tmp_path):
    monkeypatch.setenv("VELOCITYGAN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(cpu_kernel, "_LIBRARY", [])
    built = cpu_build.build_library()
    assert built.stat().st_mode & 0o777 == 0o755  # other users of a shared cache can load it
    built.write_bytes(b"not a library")  # truncated or from another machine
    assert load_library() is not None  # built again, loaded and checked
    assert built.stat().st_size > 1000


def test_compiler_errors_are_one_line_and_name_the_error(monkeypatch, tmp_path):
    fake = tmp_path / "fake-g++"
    fake.write_text('#!/bin/sh\ncase "$1" in --version) echo "fake 1.0";; -dumpmachine) '
                    'echo x86_64-linux-gnu;; *) echo "recipe_cpu.cpp:3: error: boom" >&2; '
                    'echo "compilation terminated." >&2; exit 1;; esac\n')
    fake.chmod(0o755)
    monkeypatch.setenv("CXX", str(fake))
    monkeypatch.setenv("VELOCITYGAN_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ConfigError, match="^compiling the CPU recipe kernel failed: "
                                          "recipe_cpu.cpp:3: error: boom$"):
        cpu_build.build_library()


def test_self_check_runs_under_inference_mode(monkeypatch):
    monkeypatch.setattr(cpu_kernel, "_LIBRARY", [])  # the first use in this process
    v = models(SPARSE.nz, SPARSE.nx)
    w = torch.from_numpy(physics.ricker(25.0, SPARSE.dt_s, SPARSE.nt))
    with torch.inference_mode():
        out = simulate_cpu(v, SPARSE, w, threads=1)
    assert rel_l2(out, simulate_torch(v, SPARSE, w)) < 1e-5


def test_numpy_scalars_and_float64_inputs_are_not_misread():
    odd = Acquisition(nz=20, nx=16, nt=120, pad_cells=np.int64(10), dt_s=np.array(0.001),
                      src_x=(np.int64(3), 12), src_z=2, rec_x=(0, 2, 5, 9, 15), rec_z=4)
    assert type(odd.pad_cells) is int and type(odd.dt_s) is float
    v = models(SPARSE.nz, SPARSE.nx).double()
    w = torch.from_numpy(physics.ricker(25.0, SPARSE.dt_s, SPARSE.nt))
    out = simulate_cpu(v, odd, w.double(), threads=1)
    assert rel_l2(out, simulate_torch(v.float(), SPARSE, w)) < 1e-5


def test_wavelet_gradient_matches_autograd_through_the_eager_recipe():
    v = models(SPARSE.nz, SPARSE.nx)
    grads = []
    for run in (lambda w: simulate_cpu(v, SPARSE, w, threads=1),
                lambda w: simulate_torch(v, SPARSE, w)):
        w = torch.from_numpy(physics.ricker(25.0, SPARSE.dt_s, SPARSE.nt)).requires_grad_(True)
        run(w).pow(2).sum().backward()
        grads.append(w.grad)
    assert grads[0] is not None and rel_l2(grads[0], grads[1]) < 1e-4


def test_a_wrong_gradient_is_refused(monkeypatch):
    def half_gradient(lib, v, acq, w, threads):  # the right records, half their gradient
        out = simulate_torch(v, acq, w)
        return out.detach() + 0.5 * (out - out.detach())

    monkeypatch.setattr(cpu_kernel, "_LIBRARY", [])
    monkeypatch.setattr(cpu_kernel, "_simulate", half_gradient)
    with pytest.raises(ConfigError, match="relative L2 5.0e-01"):
        load_library()


def test_a_wrong_kernel_is_refused(monkeypatch):
    monkeypatch.setattr(cpu_kernel, "_LIBRARY", [])
    monkeypatch.setattr(cpu_kernel, "_simulate", lambda lib, v, acq, w, threads: 0.0 * v.sum()
                        * torch.ones(v.shape[0], acq.n_shots, acq.nt, acq.n_receivers))
    with pytest.raises(ConfigError, match="disagrees with the recipe"):
        load_library()


def generate_cli(out, *extra: str) -> int:
    from velocitygan.cli import main

    return main(["generate", "--family", "flatvel-a", "--samples", "2", "--shard-size", "2",
                 "--val-fraction", "0", "--backend", "torch", "--device", "cpu", "--quiet",
                 "--out", str(out), *extra])


def test_generation_builds_the_kernel_before_starting_workers(monkeypatch):
    from velocitygan.synth.simulate import resolve_sim_config

    monkeypatch.setattr(cpu_kernel, "_LIBRARY", [])
    resolve_sim_config("deepwave", "cpu")
    assert cpu_kernel._LIBRARY == []  # not the torch recipe: nothing to build
    resolve_sim_config("torch", "cpu")
    assert len(cpu_kernel._LIBRARY) == 1  # built and checked here, once for all workers


def test_generate_without_a_compiler_warns_once_and_gives_the_same_data(
    monkeypatch, tmp_path, capsys
):
    assert generate_cli(tmp_path / "kernel", "--workers", "2") == 0
    monkeypatch.setattr(cpu_kernel, "_LIBRARY", [])
    monkeypatch.setattr(physics, "_AUTO_BROKEN", set())  # the failure must not outlive the test
    monkeypatch.setattr(cpu_build.shutil, "which", lambda name: None)
    capsys.readouterr()
    assert generate_cli(tmp_path / "eager", "--workers", "1") == 0
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and "needs a C++ compiler" in err
    assert ".py:" not in err  # one line, not Python's file:line warning format
    fast = torch.from_numpy(np.load(tmp_path / "kernel" / "data" / "data0.npy"))
    slow = torch.from_numpy(np.load(tmp_path / "eager" / "data" / "data0.npy"))
    assert rel_l2(fast, slow) < 1e-5
    # worker processes take the parent's decision: eager too, and no warning of their own
    assert generate_cli(tmp_path / "eager2", "--workers", "2") == 0
    assert "warning:" not in capsys.readouterr().err
    assert torch.equal(slow, torch.from_numpy(np.load(tmp_path / "eager2" / "data" / "data0.npy")))
