"""Figures: physical axes, shared/symmetric colour limits, robust clipping, CLI, no pyplot."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from evalkit import layered_velocity
from matplotlib.figure import Figure

from velocitygan.cli import main
from velocitygan.errors import DataError
from velocitygan.plot import comparison_figure, save_figure, seismic_figure, velocity_figure

PNG = b"\x89PNG\r\n\x1a\n"


def _images(fig: Figure):
    return [im for ax in fig.axes for im in ax.get_images()]


def test_velocity_figure_axes_in_metres_and_colorbar_in_mps() -> None:
    v = layered_velocity(np.random.default_rng(0), 3)
    fig = velocity_figure(v, indices=[0, 2], dx_m=10.0)
    ims = _images(fig)
    assert len(ims) == 2
    assert ims[0].get_extent() == [0.0, 700.0, 700.0, 0.0]  # depth increases downwards
    labels = {ax.get_xlabel() for ax in fig.axes} | {ax.get_ylabel() for ax in fig.axes}
    assert {"Offset (m)", "Depth (m)", "Velocity (m/s)"} <= labels
    assert ims[0].get_clim() == ims[1].get_clim()
    with pytest.raises(DataError, match="out of range"):
        velocity_figure(v, indices=[5])


def test_comparison_shares_limits_and_error_is_symmetric_diverging() -> None:
    true = layered_velocity(np.random.default_rng(1), 1)[0, 0]
    pred = true + 300.0 * np.sin(np.arange(70) / 7)[None, :] - 40.0
    fig = comparison_figure(pred, true, title="x")
    p, t, e = _images(fig)
    assert p.get_clim() == t.get_clim()
    assert p.get_clim()[0] <= min(pred.min(), true.min())
    assert p.get_clim()[1] >= max(pred.max(), true.max())
    lo, hi = e.get_clim()
    assert lo == -hi and hi == pytest.approx(np.abs(pred - true).max())
    assert e.get_cmap().name == "RdBu_r"
    np.testing.assert_allclose(e.get_array(), pred - true)


def test_seismic_figure_grey_ms_and_percentile_clip() -> None:
    rng = np.random.default_rng(2)
    d = rng.normal(0, 1, (5, 1000, 70))
    d[:, 50, :] = 1000.0  # a huge direct wave must not wash out the rest
    fig = seismic_figure(d, dt_s=0.001, clip_percentile=98.0)
    ims = _images(fig)
    assert len(ims) == 5 and ims[0].get_cmap().name == "gray"
    lo, hi = ims[0].get_clim()
    assert lo == -hi and hi == pytest.approx(np.percentile(np.abs(d), 98.0)) and hi < 10
    assert ims[0].get_extent()[2] == pytest.approx(1000.0)  # 1000 samples x 1 ms
    assert fig.axes[0].get_ylabel() == "Time (ms)"


def test_save_and_cli_plots(tmp_path) -> None:
    v = layered_velocity(np.random.default_rng(3), 2)
    np.save(tmp_path / "v.npy", v)
    np.save(tmp_path / "p.npy", v + 50)
    np.save(tmp_path / "d.npy", np.random.default_rng(4).normal(0, 1, (2, 5, 1000, 70)))
    assert save_figure(velocity_figure(v[0]), tmp_path / "a.pdf").read_bytes()[:4] == b"%PDF"
    with pytest.raises(DataError, match="unsupported figure format"):
        save_figure(velocity_figure(v[0]), tmp_path / "a.gif")
    assert main(["plot", "velocity", str(tmp_path / "v.npy"), "-n", "1"]) == 0
    assert (tmp_path / "v.png").read_bytes()[:8] == PNG
    assert main(["plot", "compare", "--pred", str(tmp_path / "p.npy"), "--true",
                 str(tmp_path / "v.npy"), "-n", "1", "-o", str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").read_bytes()[:8] == PNG
    assert main(["plot", "seismic", str(tmp_path / "d.npy"), "-n", "1"]) == 0
    assert (tmp_path / "d_shots1.png").read_bytes()[:8] == PNG
    assert main(["plot", "velocity", str(tmp_path / "d.npy")]) == 2  # wrong shape: one-line error
    # Library code never touches pyplot's global figure manager.
    plt = sys.modules.get("matplotlib.pyplot")
    assert plt is None or not plt.get_fignums()


def test_maps_that_are_not_in_mps_are_flagged() -> None:
    v = layered_velocity(np.random.default_rng(1), 1)
    with pytest.warns(UserWarning, match="do not look like m/s"):
        velocity_figure(v / 1500.0 - 2.0)  # normalised-looking
    with pytest.warns(UserWarning, match="do not look like m/s"):
        comparison_figure(v / 1000.0, v / 1000.0)  # km/s
