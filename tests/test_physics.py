"""Physics tests: both backends against an independent numpy implementation of OpenFWI's recipe,
against each other, against analytic direct-wave arrival times, and gradient checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from velocitygan.errors import VelocityGANError
from velocitygan.physics import (
    Acquisition,
    check_velocity,
    deepwave_available,
    forward_model,
    ricker,
)
from velocitygan.physics.acquisition import CFL_LIMIT

HAS_DEEPWAVE = deepwave_available()
BACKENDS = ["torch"] + (["deepwave"] if HAS_DEEPWAVE else [])
# Reduced problem: one shot and 350 samples keep every test fast; the grid, spacing, pad, wavelet
# and stencil are OpenFWI's own.
SMALL = Acquisition(nt=350, src_x=(17,))


def layered_model() -> np.ndarray:
    v = np.full((70, 70), 1800.0, np.float32)
    v[20:] = 2600.0
    v[38:] = 3400.0
    v[55:] = 4300.0
    return v


def faulted_model() -> np.ndarray:
    z, x = np.mgrid[0:70, 0:70]
    throw = np.where(x > 0.6 * z + 20, 12, 0)  # dipping fault, 12-cell throw
    zz = z - throw
    v = np.select([zz < 15, zz < 30, zz < 48], [1600.0, 2400.0, 3100.0], 4000.0)
    return v.astype(np.float32)


def reference_recipe(v: np.ndarray, acq: Acquisition) -> np.ndarray:
    """Independent float64 numpy transcription of the recipe (periodic shifts as in FD2.8)."""
    nbc, dx, dt = acq.pad_cells, acq.dx_m, acq.dt_s
    vp = np.pad(v.astype(np.float64), nbc, mode="edge")
    nzbc, nxbc = vp.shape
    a = (nbc - 1) * dx
    kappa = 3.0 * vp.min() * np.log(1e7) / (2.0 * a)
    damp1d = kappa * (np.arange(nbc) * dx / a) ** 2
    damp = np.zeros_like(vp)
    damp[:, :nbc] = damp1d[::-1]
    damp[:, nxbc - nbc :] = damp1d
    damp[:nbc, nbc : nxbc - nbc] = damp1d[::-1, None]
    damp[nzbc - nbc :, nbc : nxbc - nbc] = damp1d[:, None]
    alpha = (vp * dt / dx) ** 2
    temp1 = 2 - 5 * alpha - damp * dt
    temp2 = 1 - damp * dt
    w = ricker(acq.peak_freq_hz, dt, acq.nt).astype(np.float64)
    out = np.zeros((acq.n_shots, acq.nt, acq.n_receivers))
    gz, gx = acq.rec_z + nbc, np.array(acq.rec_x) + nbc
    for s, sx in enumerate(acq.src_x):
        iz, ix = acq.src_z + nbc, sx + nbc
        p0 = np.zeros_like(vp)
        p1 = np.zeros_like(vp)
        for it in range(acq.nt):
            r = np.roll
            lap = 4 / 3 * (r(p1, 1, 0) + r(p1, -1, 0) + r(p1, 1, 1) + r(p1, -1, 1)) - 1 / 12 * (
                r(p1, 2, 0) + r(p1, -2, 0) + r(p1, 2, 1) + r(p1, -2, 1)
            )
            p = temp1 * p1 - temp2 * p0 + alpha * lap
            p[iz, ix] += (vp[iz, ix] * dt) ** 2 * w[it]
            out[s, it] = p[gz, gx]
            p0, p1 = p1, p
    return out


def rel_l2(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def corr(a, b) -> float:
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


@pytest.fixture(scope="module")
def references():
    return {
        name: reference_recipe(m(), SMALL)
        for name, m in (("layered", layered_model), ("faulted", faulted_model))
    }


@pytest.fixture(scope="module")
def simulated():
    models = np.stack([layered_model(), faulted_model()])
    return {b: forward_model(models, SMALL, backend=b).numpy() for b in BACKENDS}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("index,name", [(0, "layered"), (1, "faulted")])
def test_backend_matches_independent_recipe(backend, index, name, references, simulated):
    ours, ref = simulated[backend][index], references[name]
    assert ours.shape == ref.shape == (1, SMALL.nt, 70)
    assert ours.dtype == np.float32
    err, c = rel_l2(ours, ref), corr(ours, ref)
    assert err < 0.01, f"{backend}/{name}: relative L2 {err:.4f}"
    assert c > 0.99, f"{backend}/{name}: correlation {c:.5f}"
    # polarity fingerprint: the strongest amplitude is positive
    assert ours.max() > -ours.min() > 0


@pytest.mark.skipif(not HAS_DEEPWAVE, reason="deepwave not installed")
def test_backends_agree(simulated):
    err = rel_l2(simulated["deepwave"], simulated["torch"])
    assert err < 0.005, f"deepwave vs torch relative L2 {err:.4f}"


def analytic_2d_trace(offset_m: float, v_mps: float, acq: Acquisition) -> np.ndarray:
    """Ricker convolved with the 2-D Green's function H(t-T)/sqrt(t^2-T^2), T=offset/v."""
    sub = 20
    dt = acq.dt_s / sub
    t = np.arange(acq.nt * sub + 1) * dt
    travel = offset_m / v_mps
    # exact integral of the kernel over each fine bin (its singularity is integrable)
    edges = np.maximum(t, travel) / travel
    kernel = np.diff(np.arccosh(edges))
    w = np.interp(t, np.arange(acq.nt) * acq.dt_s, ricker(acq.peak_freq_hz, acq.dt_s, acq.nt))
    return np.convolve(w, kernel)[: acq.nt * sub : sub]


@pytest.mark.parametrize("backend", BACKENDS)
def test_direct_wave_arrival_times(backend):
    v_mps = 2500.0
    acq = Acquisition(nt=400, src_x=(5,))
    data = forward_model(np.full((70, 70), v_mps), acq, backend=backend)[0, 0].numpy()
    for rec in (20, 35, 50, 65):
        offset_m = (rec - 5) * acq.dx_m
        t_peak_ms = int(np.argmax(data[:, rec]))
        expected_ms = int(np.argmax(analytic_2d_trace(offset_m, v_mps, acq)))
        # the kinematic rule offset/v + 73 ms wavelet delay, plus the 2-D tail's few ms
        kinematic_ms = 73 + 1000 * offset_m / v_mps
        assert abs(t_peak_ms - expected_ms) <= 2, (rec, t_peak_ms, expected_ms)
        assert 0 <= t_peak_ms - kinematic_ms <= 12, (rec, t_peak_ms, kinematic_ms)


TINY = Acquisition(nz=16, nx=16, nt=220, src_x=(3,), rec_x=tuple(range(16)), pad_cells=12)


def misfit(v: torch.Tensor, backend: str, observed: torch.Tensor) -> torch.Tensor:
    return 0.5 * ((forward_model(v, TINY, backend=backend) - observed) ** 2).sum()


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradient_matches_finite_difference(backend):
    true = np.full((16, 16), 2000.0, np.float32)
    true[8:] = 2600.0
    observed = forward_model(true, TINY, backend=backend).detach()
    start = torch.tensor(true, dtype=torch.float64)
    start[8:] = 2450.0
    direction = torch.zeros(16, 16, dtype=torch.float64)
    direction[9:13, 4:12] = 1.0  # a patch inside the deep layer (not the slowest cell)
    v = start.float().requires_grad_(True)
    j = misfit(v, backend, observed)
    (grad,) = torch.autograd.grad(j, v)
    assert torch.isfinite(grad).all() and grad.abs().max() > 0
    analytic = float((grad.double() * direction).sum())
    h = 5.0  # m/s
    with torch.no_grad():
        j_plus = misfit((start + h * direction).float(), backend, observed).double()
        j_minus = misfit((start - h * direction).float(), backend, observed).double()
    numeric = float((j_plus - j_minus) / (2 * h))
    assert analytic != 0
    assert math.isclose(analytic, numeric, rel_tol=0.03), (analytic, numeric)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu():
    models = np.stack([layered_model(), faulted_model()])
    cpu = forward_model(models, SMALL, backend="torch").numpy()
    gpu = forward_model(models, SMALL, backend="torch", device="cuda", eager=True)
    assert gpu.device.type == "cuda"
    assert rel_l2(gpu.cpu().numpy(), cpu) < 1e-4


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_compiled_matches_cpu():
    models = np.stack([layered_model(), faulted_model()])
    cpu = forward_model(models, SMALL, backend="torch").numpy()
    gpu = forward_model(models, SMALL, backend="torch", device="cuda")  # torch.compile
    assert rel_l2(gpu.cpu().numpy(), cpu) < 1e-4


def test_auto_compile_never_compiles_under_autograd(monkeypatch):
    """(On the CPU "auto" takes the C++ kernel and its adjoint: tests/test_cpu_kernel.py.)"""
    import velocitygan.physics as physics

    modes = []
    real = physics.simulate_torch

    def spy(*args, compiled=False, **kwargs):
        modes.append(compiled)
        return real(*args, **kwargs)

    monkeypatch.setattr(physics, "simulate_torch", spy)
    acq = Acquisition(nz=16, nx=16, nt=30, src_x=(3, 12), rec_x=(0, 5, 15), pad_cells=4)
    v = torch.full((1, 16, 16), 2000.0, requires_grad=True)
    forward_model(v, acq, backend="torch").sum().backward()
    assert not any(modes) and v.grad is not None


def test_eager_runs_the_pytorch_recipe_uncompiled(monkeypatch):
    import velocitygan.physics as physics
    from velocitygan.physics import cpu_kernel

    modes = []
    real = physics.simulate_torch

    def spy(*args, compiled=False, **kwargs):
        modes.append(compiled)
        return real(*args, **kwargs)

    monkeypatch.setattr(physics, "simulate_torch", spy)
    monkeypatch.setattr(cpu_kernel, "simulate_cpu", None)  # calling it would fail
    acq = Acquisition(nz=16, nx=16, nt=30, src_x=(3, 12), rec_x=(0, 5, 15), pad_cells=4)
    out = forward_model(np.full((16, 16), 2000.0), acq, backend="torch", eager=True)
    assert modes == [False] and out.shape == (1, 2, 30, 3)


def test_input_shapes_and_numpy_torch_equivalence():
    acq = Acquisition(nz=16, nx=16, nt=30, src_x=(3, 12), rec_x=(0, 5, 15), pad_cells=4)
    v = np.full((16, 16), 2000.0, np.float32)
    a = forward_model(v, acq, backend="torch")
    b = forward_model(torch.tensor(v)[None, None].repeat(3, 1, 1, 1), acq, backend="torch")
    assert a.shape == (1, 2, 30, 3) and b.shape == (3, 2, 30, 3)
    assert a.dtype == torch.float32
    assert torch.allclose(a[0], b[2])


@pytest.mark.parametrize(
    "velocity,match",
    [
        (np.full((70, 71), 2000.0), "shape"),
        (np.full((2, 3, 70, 70), 2000.0), "shape"),
        (np.full((70, 70), np.nan), "NaN"),
        (np.full((70, 70), 2.0e4), "outside"),
        (np.full((70, 70), -5.0), "outside"),
        (np.full((70, 70), 6500.0), "unstable"),
    ],
)
def test_bad_velocity_fails_fast_with_one_line(velocity, match):
    with pytest.raises(VelocityGANError, match=match) as info:
        forward_model(velocity, backend="torch")
    assert "\n" not in str(info.value)


def test_stability_limit_counts_the_sponge():
    """A uniform 5990 m/s model passed the undamped bound (6060 m/s) but its records blow up in
    the sponge (amplitudes ~1e14 after 1 s), so the check counts the sponge's damping."""
    acq = Acquisition()
    assert acq.stable_velocity_mps(0.0) == pytest.approx(CFL_LIMIT * acq.dx_m / acq.dt_s)
    assert 5850 < acq.stable_velocity_mps(5990.0) < acq.stable_velocity_mps(1500.0) < 6060
    with pytest.raises(VelocityGANError, match=r"5990 m/s \(model 1\) is unstable"):
        check_velocity(np.stack([np.full((70, 70), 3000.0), np.full((70, 70), 5990.0)]))
    fast = np.full((70, 70), 5800.0, np.float32)
    out = forward_model(fast, Acquisition(nt=1000), backend="torch")
    assert float(out.abs().max()) < 1e3  # 57 (5990 m/s: 1.9e14)


def test_acquisition_takes_numpy_numbers_and_refuses_fractions():
    acq = Acquisition(nz=np.int64(70), dt_s=np.float32(0.001), rec_x=np.arange(70))
    assert type(acq.nz) is int and type(acq.dt_s) is float and type(acq.rec_x[5]) is int
    with pytest.raises(VelocityGANError, match="nz=70.5 must be a whole number"):
        Acquisition(nz=70.5)
    with pytest.raises(VelocityGANError, match="dt_s='fast' must be a positive number"):
        Acquisition(dt_s="fast")


def test_bad_acquisition_and_backend():
    with pytest.raises(VelocityGANError, match="outside the grid"):
        Acquisition(rec_x=(0, 70))
    with pytest.raises(VelocityGANError, match="outside the grid"):
        Acquisition(src_z=-1)
    with pytest.raises(VelocityGANError, match="backend"):
        forward_model(np.full((70, 70), 2000.0), backend="fdtd")
    with pytest.raises(VelocityGANError, match="unknown"):
        Acquisition.from_dict({"nt": 10, "dz": 3})


def test_acquisition_roundtrip_and_ricker():
    acq = Acquisition(nt=500, src_x=(1, 2))
    assert Acquisition.from_dict(acq.to_dict()) == acq
    assert Acquisition().n_shots == 5 and Acquisition().n_receivers == 70
    w = ricker(15.0, 0.001, 1000)
    assert w.shape == (1000,) and int(np.argmax(w)) == 73 and w[73] == pytest.approx(1.0)
    assert np.all(w[147:] == 0) and w[146] != 0
    assert check_velocity(np.full((70, 70), 4500.0)).shape == (1, 70, 70)


def test_fused_formulation_matches_eager(monkeypatch):
    """The (N,H,W,S) formulation that torch.compile fuses equals the eager one (values + grads)."""
    from velocitygan.physics import torch_backend
    from velocitygan.physics.torch_backend import simulate_torch

    monkeypatch.setattr(torch_backend, "_compiled", lambda: torch_backend._steps_fused)

    acq = Acquisition(
        nz=20, nx=24, nt=150, src_x=(0, 11, 23), rec_x=tuple(range(2, 22)), pad_cells=15
    )
    v = torch.tensor(np.linspace(1600, 3900, 20 * 24).reshape(1, 20, 24), dtype=torch.float32)
    v = torch.cat([v, v.flip(-1)]).requires_grad_(True)
    w = torch.from_numpy(ricker(acq.peak_freq_hz, acq.dt_s, acq.nt))
    eager = simulate_torch(v, acq, w)
    fused = simulate_torch(v, acq, w, compiled=True)  # uncompiled, see above
    assert fused.shape == eager.shape == (2, 3, 150, 20)
    assert rel_l2(fused.detach(), eager.detach()) < 1e-5
    (g_eager,) = torch.autograd.grad(eager.square().sum(), v)
    (g_fused,) = torch.autograd.grad(fused.square().sum(), v)
    assert rel_l2(g_fused, g_eager) < 1e-4


def test_torch_backend_works_without_deepwave(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "deepwave", None)  # makes "import deepwave" fail
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)
    assert not deepwave_available()
    acq = Acquisition(nz=12, nx=12, nt=20, src_x=(6,), rec_x=(0, 11), pad_cells=4)
    out = forward_model(np.full((12, 12), 2000.0), acq)  # backend="auto"
    assert out.shape == (1, 1, 20, 2)
    with pytest.raises(VelocityGANError, match="deepwave"):
        forward_model(np.full((12, 12), 2000.0), acq, backend="deepwave")
