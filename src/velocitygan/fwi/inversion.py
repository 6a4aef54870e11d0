"""Full-waveform inversion through the package's forward operator.

``run_fwi`` fits velocity maps to raw observed seismic data by gradient descent on the relative
L2 data misfit, simulating with ``velocitygan.physics.forward_model`` (the operator that makes
OpenFWI-style data, so the inversion is consistent with them). Several samples invert as one
batch: the loss is the sum of the per-sample misfits, so with Adam each sample evolves as if
inverted alone. Features: bounded parameterisation (``BoundedVelocity``), frequency continuation
(``filters.lowpass`` on data and wavelet, low to high), Adam or L-BFGS, per-sample gradient
clipping at a quantile of |gradient| (tames the spikes next to sources), optional TV.
"""

from __future__ import annotations

import hashlib
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import physics
from ..device import resolve_device
from ..errors import ConfigError
from ..io import stamp
from .checks import as_observed, as_velocity_batch, check_settings
from .filters import lowpass
from .misfit import data_misfit, relative_misfit
from .model import BoundedVelocity, total_variation
from .state import FWIState, load_state

__all__ = ["FWIResult", "run_fwi", "band_schedule", "parse_freqs", "DEFAULT_FREQS_HZ"]

# Low to high: 5 Hz fixes the long wavelengths (avoids cycle skipping), the last band is the
# unfiltered data (None) for resolution; the 15 Hz Ricker carries energy up to ~40 Hz.
DEFAULT_FREQS_HZ: tuple[float | None, ...] = (5.0, 10.0, None)
# Adam: step in units of the bound range (0.005 of 1500-4500 m/s: ~15 m/s per iteration; on 20
# FlatVel-A maps it matched or beat 0.0075 and a sigmoid parameterisation,
# bench/results/fwi_parameterisation.md)
DEFAULT_LR = {"adam": 0.005, "lbfgs": 1.0}
# a start model whose data misfit is above this is not a start but a sign of wrong data
# (OpenFWI-normalised records against the raw recipe: 8.2; a 100 m smooth start: 0.27)
SUSPECT_MISFIT = 1.5


@dataclass
class FWIResult:
    """Outcome of ``run_fwi``.

    Attributes:
        velocity_mps: inverted maps, float32 ``(N, 1, nz, nx)`` in m/s.
        init_velocity_mps: start maps, float32 ``(N, 1, nz, nx)`` in m/s.
        history: one dict per iteration: iteration, band_hz, time_s (since the start),
            misfit (mean relative L2 in that band, of the model the iteration started from),
            mae_mps (after the iteration, when the true model is known, else None).
        misfit: final full-band relative L2 misfit per sample ``(N,)``.
        init_misfit: full-band misfit of the start maps ``(N,)``.
        mae_mps: final MAE per sample in m/s ``(N,)`` or None.
        wall_time_s: total wall time of the iterations in s.
        settings: the resolved settings (for reports).
    """

    velocity_mps: np.ndarray
    init_velocity_mps: np.ndarray
    history: list[dict] = field(default_factory=list)
    misfit: np.ndarray | None = None
    init_misfit: np.ndarray | None = None
    mae_mps: np.ndarray | None = None
    wall_time_s: float = 0.0
    settings: dict = field(default_factory=dict)


def parse_freqs(text: str) -> tuple[float | None, ...]:
    """Parse ``"5,10,full"`` into low-pass corner frequencies in Hz (``None`` = full band)."""
    out: list[float | None] = []
    for part in str(text).split(","):
        p = part.strip().lower()
        if p in ("full", "all", "none", "0"):
            out.append(None)
            continue
        try:
            out.append(float(p))
        except ValueError:
            raise ConfigError(f"bad frequency {part!r} in {text!r}; use e.g. 5,10,full") from None
    if not out:
        raise ConfigError("no frequency bands given; use e.g. --freqs 5,10,full")
    return tuple(out)


def band_schedule(iterations: int, freqs_hz) -> list[float | None]:
    """Corner frequency of each iteration: equal shares per band, low to high, extra to the last."""
    n = len(freqs_hz)
    share, extra = divmod(iterations, n)
    sched: list[float | None] = []
    for i, f in enumerate(freqs_hz):
        sched += [f] * (share + (1 if i >= n - extra else 0))
    return sched


class _Problem:
    """The objective of one band: filtered data, filtered wavelet, loss and gradient."""

    def __init__(self, obs, wavelet, acq, *, backend, device, tv_weight, clip_q, chunk):
        self.obs, self.wavelet, self.acq = obs, wavelet, acq
        self.backend, self.device = backend, device
        self.tv_weight, self.clip_q, self.chunk = tv_weight, clip_q, chunk
        self.band_obs, self.band_wavelet = obs, wavelet

    def set_band(self, cutoff_hz: float | None) -> None:
        self.band_obs = lowpass(self.obs, self.acq.dt_s, cutoff_hz, dim=2)
        self.band_wavelet = lowpass(self.wavelet, self.acq.dt_s, cutoff_hz, dim=-1)

    def _chunk_loss(self, model: BoundedVelocity, sl: slice) -> tuple[torch.Tensor, torch.Tensor]:
        """Band loss of samples ``sl`` (misfit^2 + TV) and their relative L2 misfits."""
        # torch backend on the CPU: the compiled recipe and its adjoint; on CUDA eager
        # autograd (torch.compile would differ from the gradients' pass in the last bits)
        sim = physics.forward_model(model()[sl], self.acq, backend=self.backend, device=self.device,
                                    source_wavelet=self.band_wavelet,
                                    eager=torch.device(self.device).type != "cpu")
        misfit_sq = relative_misfit(sim, self.band_obs[sl], squared=True)
        loss = misfit_sq.sum()
        if self.tv_weight > 0:
            loss = loss + self.tv_weight * total_variation(model.normalised()[sl]).sum()
        return loss, misfit_sq.detach().sqrt()

    @torch.no_grad()
    def loss(self, model: BoundedVelocity) -> float:
        """Band loss without gradient (for checks)."""
        chunks = range(0, self.obs.shape[0], self.chunk)
        return sum(float(self._chunk_loss(model, slice(i, i + self.chunk))[0]) for i in chunks)

    def loss_and_grad(self, model: BoundedVelocity) -> tuple[float, torch.Tensor]:
        """Backpropagate the band loss into ``model.latent.grad``; return (loss, misfit (N,))."""
        model.zero_grad(set_to_none=False)
        total, misfits = 0.0, []
        for i in range(0, self.obs.shape[0], self.chunk):
            loss, misfit = self._chunk_loss(model, slice(i, i + self.chunk))
            loss.backward()
            total += float(loss.detach())
            misfits.append(misfit)
        if self.clip_q is not None and self.clip_q < 1:
            g = model.latent.grad
            thr = torch.quantile(g.abs().flatten(1), self.clip_q, dim=1).clamp_min(1e-30)
            g.copy_(torch.maximum(torch.minimum(g, thr[:, None, None]), -thr[:, None, None]))
        return total, torch.cat(misfits)


def _make_optimizer(name: str, model: BoundedVelocity, lr: float) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr)
    # One L-BFGS iteration per step(); the strong-Wolfe line search may evaluate more often.
    return torch.optim.LBFGS(model.parameters(), lr=lr, max_iter=1, history_size=10,
                             line_search_fn="strong_wolfe")


def _base_wavelet(acq, device) -> torch.Tensor:
    w = physics.ricker(acq.peak_freq_hz, acq.dt_s, acq.nt)
    return torch.as_tensor(np.asarray(w), dtype=torch.float32).reshape(-1).to(device)


def run_fwi(observed_raw, init_velocity_mps, *, acquisition=None, iterations: int = 100,
            optimizer: str = "adam", lr: float | None = None, freqs_hz=DEFAULT_FREQS_HZ,
            tv_weight: float = 0.0, vmin_mps: float = 1500.0, vmax_mps: float = 4500.0,
            grad_clip_quantile: float | None = 0.98, true_velocity_mps=None, backend: str = "auto",
            device: str | torch.device | None = None, chunk_size: int = 8, progress: bool = True,
            state_path: str | Path | None = None, save_every: int = 10) -> FWIResult:
    """Invert raw seismic data for velocity maps, all samples as one batch.

    Args:
        observed_raw: raw seismic ``(N, shots, nt, receivers)`` or ``(shots, nt, receivers)``.
        init_velocity_mps: start maps in m/s, ``(N, 1, nz, nx)``, ``(N, nz, nx)`` or one
            ``(nz, nx)`` map for all samples; inside ``[vmin_mps, vmax_mps]``.
        acquisition: ``velocitygan.physics.Acquisition`` the data were recorded with.
        iterations: optimiser iterations in total, shared equally by the frequency bands.
        optimizer: ``"adam"`` or ``"lbfgs"``.
        lr: step size (Adam: a fraction of ``vmax_mps - vmin_mps`` per iteration; L-BFGS:
            initial step); per-optimiser default.
        freqs_hz: low-pass corners in Hz, low to high; ``None`` = unfiltered band.
        tv_weight: weight of total variation of the [0, 1]-scaled velocity (0 = off).
        vmin_mps, vmax_mps: velocity bounds in m/s.
        grad_clip_quantile: clip each sample's gradient at this quantile of its |values|.
        true_velocity_mps: optional true maps (same shapes) for MAE in m/s.
        backend, device: passed to the forward operator.
        chunk_size: samples simulated per call (bounds memory; CPU speed does not depend on it).
        progress: show a tqdm bar with misfit (and MAE).
        state_path: keep the progress in this file (every ``save_every`` iterations and when
            interrupted); when it exists, continue from it: the same inversion (data, start,
            settings; checked) ends with the iterates of an uninterrupted run.
        save_every: iterations between saves of ``state_path``.

    Raises:
        DataError, ConfigError: bad shapes or settings, before any simulation.
        KeyboardInterrupt: after saving ``state_path`` (when given).
    """
    acq = acquisition if acquisition is not None else physics.Acquisition()
    backend = physics.resolve_backend(backend)  # the state file names the operator that ran
    freqs_hz = tuple(freqs_hz)
    check_settings(iterations=iterations, optimizer=optimizer, lr=lr, tv_weight=tv_weight,
                   freqs_hz=freqs_hz, vmin_mps=vmin_mps, vmax_mps=vmax_mps, dt_s=acq.dt_s,
                   grad_clip_quantile=grad_clip_quantile, acquisition=acq)
    obs = as_observed(observed_raw, acq)
    n = obs.shape[0]
    v0 = as_velocity_batch(init_velocity_mps, n, acq, "start model", bounds=(vmin_mps, vmax_mps))
    v_true = None
    if true_velocity_mps is not None:
        v_true = as_velocity_batch(true_velocity_mps, n, acq, "true model")
    lr = DEFAULT_LR[optimizer] if lr is None else lr
    dev = resolve_device(device)

    settings = {"iterations": iterations, "optimizer": optimizer, "lr": lr,
                "freqs_hz": list(freqs_hz), "tv_weight": tv_weight, "vmin_mps": vmin_mps,
                "vmax_mps": vmax_mps, "grad_clip_quantile": grad_clip_quantile,
                "backend": backend, "device": str(dev), "samples": n}
    state = saver = None
    if state_path is not None:
        if save_every < 1:
            raise ConfigError(f"save_every must be >= 1, got {save_every}")
        data = hashlib.sha256(obs.detach().cpu().float().numpy().tobytes()).hexdigest()
        key = stamp({**settings, "acquisition": acq.to_dict(), "observed_sha256": data})
        saver = _Saver(Path(state_path), save_every, FWIState(key, start=v0.detach().cpu()))
        if saver.path.is_file():
            state = load_state(saver.path, key, v0)

    model = BoundedVelocity(v0.to(dev), vmin_mps=vmin_mps, vmax_mps=vmax_mps)
    problem = _Problem(obs.to(dev), _base_wavelet(acq, dev), acq, backend=backend, device=dev,
                       tv_weight=tv_weight, clip_q=grad_clip_quantile, chunk=max(1, chunk_size))
    v_start = model().detach().cpu()
    kw = {"acquisition": acq, "backend": backend, "device": dev}
    init_misfit = data_misfit(v_start, obs, **kw).numpy()
    if float(init_misfit.max()) > SUSPECT_MISFIT:
        warnings.warn(
            f"the start model's data misfit reaches {float(init_misfit.max()):.2f} (relative "
            "L2): the data may not be raw amplitudes recorded with this acquisition "
            "(normalised? another source scaling, polarity or geometry?)", stacklevel=2)
    if state is not None:
        with torch.no_grad():
            model.latent.copy_(state.latent.to(dev))
    history = _iterate(model, problem, band_schedule(iterations, freqs_hz), optimizer, lr,
                       v_true.to(dev) if v_true is not None else None, progress, saver, state)
    v_final = model().detach().cpu()
    mae = (v_final - v_true).abs().flatten(1).mean(1).numpy() if v_true is not None else None
    return FWIResult(velocity_mps=v_final[:, None].numpy().astype(np.float32),
                     init_velocity_mps=v_start[:, None].numpy().astype(np.float32), history=history,
                     misfit=data_misfit(v_final, obs, **kw).numpy(), init_misfit=init_misfit,
                     mae_mps=mae, wall_time_s=history[-1]["time_s"] if history else 0.0,
                     settings=settings)


@dataclass
class _Saver:
    """Where :func:`_iterate` saves ``state``: every ``every`` iterations and on an interrupt."""

    path: Path
    every: int
    state: FWIState


def _iterate(model, problem, schedule, opt_name, lr, v_true, progress,
             saver: _Saver | None = None, resume: FWIState | None = None) -> list[dict]:
    done = 0 if resume is None else resume.iteration
    history: list[dict] = [] if resume is None else list(resume.history)
    offset = history[-1]["time_s"] if history else 0.0  # wall time before this session
    bar = tqdm(total=len(schedule), initial=done, desc="fwi", unit="it", disable=not progress,
               leave=False)
    t0 = time.perf_counter()
    band, opt = object(), None
    try:
        for it, cutoff in enumerate(schedule, start=1):
            if it <= done:
                continue
            if cutoff != band:  # new band: new objective, fresh optimiser state
                band = cutoff
                problem.set_band(cutoff)
                opt = _make_optimizer(opt_name, model, lr)
                if done and it == done + 1 and resume.band == cutoff:
                    opt.load_state_dict(resume.optimizer)  # continue the band's optimiser
            _step(it, cutoff, model, problem, opt, v_true, history, bar,
                  lambda: offset + time.perf_counter() - t0)
            if saver is not None:
                saver.state.update(it, model.latent, cutoff, opt, history)
                if it % saver.every == 0 or it == len(schedule):
                    saver.state.save(saver.path)
    except KeyboardInterrupt:
        if saver is not None and saver.state.latent is not None:
            saver.state.save(saver.path)  # the last complete iteration
        raise
    finally:
        bar.close()
    return history


def _step(it, cutoff, model, problem, opt, v_true, history, bar, elapsed_s) -> None:
    """One optimiser iteration; appends its row to ``history`` (``elapsed_s()``: run time)."""
    state: dict = {}

    def closure(state=state):
        loss, misfit = problem.loss_and_grad(model)
        state.setdefault("misfit", misfit)  # misfit at the start of this iteration
        return loss

    opt.step(closure)
    model.project()
    row = {"iteration": it, "band_hz": "full" if cutoff is None else cutoff,
           "time_s": round(elapsed_s(), 3), "misfit": float(state["misfit"].mean()),
           "mae_mps": None}
    postfix = {"band": row["band_hz"], "misfit": f"{row['misfit']:.4f}"}
    if v_true is not None:
        with torch.no_grad():
            row["mae_mps"] = float((model() - v_true).abs().mean())
        postfix["mae_mps"] = f"{row['mae_mps']:.1f}"
    history.append(row)
    bar.set_postfix(postfix)
    bar.update(1)
