"""OpenFWI reference-code checkpoints: name mapping, safe loading, use in predict/evaluate."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from evalkit import reference_state_dict, tiny_generator, write_dataset, write_reference_checkpoint

from velocitygan.checkpoint import generator_parts
from velocitygan.cli import main
from velocitygan.errors import VelocityGANError
from velocitygan.models import build_generator
from velocitygan.predict import load_model
from velocitygan.reference import convert_reference_state_dict


class _Evil:
    """Unpickling this would run a shell command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_reference_names_are_the_reference_codes() -> None:
    ref = reference_state_dict(tiny_generator())
    # Names as in the reference network.py: top-level blocks, layers in `.layers`.
    for key in ("convblock1.layers.0.weight", "convblock8.layers.1.running_var",
                "deconv1_1.layers.0.weight", "deconv5_2.layers.1.bias",
                "deconv6.layers.0.weight", "deconv6.layers.1.num_batches_tracked"):
        assert key in ref, key  # fmt: skip
    assert not any(k.startswith(("encoder.", "decoder.")) for k in ref)


def test_load_reference_checkpoint_reproduces_the_network(tmp_path) -> None:
    model = tiny_generator(seed=2)
    path = write_reference_checkpoint(tmp_path / "checkpoint.pth", model, dataset="curvevel-a")
    with pytest.raises(pickle.UnpicklingError):  # plain weights-only loading refuses the Namespace
        torch.load(path, weights_only=True)
    state, config, ckpt = generator_parts(path)
    assert config == {"width": 0.125, "in_channels": 5, "nt": 1000, "n_receivers": 70}
    assert ckpt["dataset"]["name"] == "curvevel-a" and ckpt["epoch"] == 4 and ckpt["step"] == 500
    rebuilt = build_generator(config)
    rebuilt.load_state_dict(state)  # strict: every key maps
    x = torch.randn(2, 5, 1000, 70)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.eval()(x), model(x))
    loaded = load_model(path)
    assert loaded.source == "openfwi-reference" and loaded.spec.name == "curvevel-a"


def test_legacy_and_ddp_names_are_converted() -> None:
    ref = reference_state_dict(tiny_generator())
    legacy = {"module." + k.replace(".layers.", ".Conv2DwithBN."): v for k, v in ref.items()}
    ours = convert_reference_state_dict(legacy)
    assert set(ours) == set(tiny_generator().state_dict())


def test_disallowed_global_is_refused_without_running(tmp_path, capsys) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    torch.save({"model": {"convblock1.layers.0.weight": torch.zeros(1)}, "x": _Evil(marker)}, evil)
    with pytest.raises(VelocityGANError, match="refused to load.*system"):
        generator_parts(evil)
    assert not marker.exists()
    root = tmp_path / "d"
    split = write_dataset(root, counts=(1,))
    out = str(tmp_path / "o")
    assert main(["evaluate", "-c", str(evil), "--data", str(split), "--out", out]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "refused to load" in err and "\n" not in err
    assert not marker.exists()


def test_reference_checkpoint_in_evaluate_and_predict(tmp_path) -> None:
    model = tiny_generator(seed=3)
    path = write_reference_checkpoint(tmp_path / "model_40.pth", model)
    split = write_dataset(tmp_path / "d", counts=(2,))
    assert main(["evaluate", "-c", str(path), "--data", str(split), "--out", str(tmp_path / "e"),
                 "--no-figures"]) == 0  # fmt: skip
    m = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert m["checkpoint_source"] == "openfwi-reference" and m["dataset"] == "flatvel-a"
    assert main(["predict", "-c", str(path), "-i", str(tmp_path / "d" / "data" / "data0.npy"),
                 "-o", str(tmp_path / "v.npy")]) == 0  # fmt: skip
    assert np.load(tmp_path / "v.npy").shape == (2, 1, 70, 70)


def test_non_inversionnet_reference_is_rejected(tmp_path) -> None:
    path = tmp_path / "upfwi.pth"
    torch.save({"model": {"deconv1_1.layers.1.weight": torch.zeros(2, 2, 3, 3)}, "epoch": 1}, path)
    with pytest.raises(VelocityGANError, match="not an InversionNet"):
        generator_parts(path)


def test_checkpoint_load_generator_falls_back_to_reference(tmp_path) -> None:
    from velocitygan.checkpoint import load_generator

    model = tiny_generator(seed=6)
    path = write_reference_checkpoint(tmp_path / "checkpoint.pth", model, dataset="style-b")
    rebuilt, spec, ckpt = load_generator(path)
    assert spec.name == "style-b" and ckpt["format"] == "openfwi-reference"
    x = torch.randn(1, 5, 1000, 70)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), model(x))
    state, config, _ = generator_parts(path)  # what `train --init-from` uses
    assert config["width"] == 0.125 and set(state) == set(model.state_dict())


def test_malformed_reference_args_are_handled(tmp_path) -> None:
    model = tiny_generator(seed=3)
    path = tmp_path / "odd.pth"
    torch.save({"model": reference_state_dict(model), "epoch": 1, "args": 5}, path)
    state, config, _ = generator_parts(path)  # args unusable: defaults
    assert config["nt"] == 1000
    path2 = tmp_path / "bad.pth"
    torch.save({"model": reference_state_dict(model), "epoch": 1,
                "args": {"sample_temporal": "x"}}, path2)
    with pytest.raises(VelocityGANError, match="sample_temporal"):
        generator_parts(path2)
