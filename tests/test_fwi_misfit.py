"""Data consistency: relative misfit ~0 for the true model, larger for a perturbed one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from velocitygan.errors import DataError
from velocitygan.fwi import data_misfit, relative_misfit
from velocitygan.physics import Acquisition, forward_model

TINY = Acquisition(nz=20, nx=20, nt=250, src_x=(0, 10, 19), rec_x=tuple(range(20)), pad_cells=20)


def test_misfit_zero_for_truth_larger_when_perturbed():
    v = torch.full((3, 20, 20), 2200.0)
    v[:, 10:] = 3000.0
    obs = forward_model(v, TINY)
    pert = v.clone()
    pert[1, 5:8] += 200.0
    pert[2] *= 1.1
    m = data_misfit(pert.numpy()[:, None], obs.numpy(), TINY)
    assert m.shape == (3,)
    assert float(m[0]) < 1e-5
    assert float(m[1]) > 0.02 and float(m[2]) > 0.1  # a 200 m/s anomaly; a 10 % scaling
    assert float(data_misfit(v, obs, TINY, batch_size=2).max()) < 1e-5


def test_relative_misfit_definition():
    obs = torch.ones(2, 3, 4, 5)
    assert torch.allclose(relative_misfit(obs * 1.5, obs), torch.tensor([0.5, 0.5]))
    assert torch.allclose(relative_misfit(obs * 1.5, obs, squared=True), torch.tensor([0.25] * 2))


def test_mismatched_inputs_fail_clearly():
    obs = np.ones((2, 3, 250, 20), np.float32)
    with pytest.raises(DataError, match="predicted velocity has shape"):
        data_misfit(np.full((3, 20, 20), 2000.0), obs, TINY)
    with pytest.raises(DataError, match="acquisition expects"):
        data_misfit(np.full((2, 20, 20), 2000.0), obs)
