"""``velocitygan export --onnx``: output matches PyTorch in onnxruntime within 1e-4."""

from __future__ import annotations

import numpy as np
import pytest
from evalkit import tiny_generator, write_checkpoint

from velocitygan.cli import main
from velocitygan.export import export_onnx, onnx_session
from velocitygan.predict import predict

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


def test_export_physical_units_matches_predict(tmp_path, capsys) -> None:
    ckpt = write_checkpoint(tmp_path / "c.pt", tiny_generator(seed=4))
    out = tmp_path / "model.onnx"
    assert main(["export", "-c", str(ckpt), "--onnx", str(out)]) == 0
    assert "max |diff|" in capsys.readouterr().out
    sess = onnx_session(out)
    meta = sess.get_modelmeta().custom_metadata_map
    assert meta["dataset"] == "flatvel-a" and meta["units"] == "raw amplitude -> m/s"
    # A batch size other than the one traced (dynamic batch axis), raw amplitudes in.
    x = np.clip(np.random.default_rng(1).normal(0, 3, (3, 5, 1000, 70)), -26, 52)
    x = x.astype(np.float32)
    got = sess.run(None, {"seismic": x})[0]
    want = predict(ckpt, x, log=lambda m: None)
    assert got.shape == (3, 1, 70, 70)
    assert np.abs(got - want).max() / 1500 < 1e-4  # normalised scale
    assert want.std() > 10  # a non-trivial comparison


def test_export_normalized_network(tmp_path, capsys) -> None:
    ckpt = write_checkpoint(tmp_path / "c.pt", tiny_generator(seed=5))
    r = export_onnx(ckpt, tmp_path / "n.onnx", physical_units=False)
    assert r["max_abs_diff"] < 1e-4 and r["units"] == "normalised -> normalised"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt", "n.onnx"]  # no temp files
    # an opset the exporter does not know: one line, before any export
    assert main(["export", "-c", str(ckpt), "--onnx", str(tmp_path / "x.onnx"),
                 "--opset", "999"]) == 2
    captured = capsys.readouterr()
    assert "--opset 999" in captured.err and captured.err.count("\n") == 1 and not captured.out


def test_failed_verification_keeps_the_previous_export(tmp_path, monkeypatch) -> None:
    from velocitygan import export
    from velocitygan.errors import VelocityGANError

    ckpt = write_checkpoint(tmp_path / "c.pt", tiny_generator(seed=6))
    out = tmp_path / "m.onnx"
    export_onnx(ckpt, out)
    before = out.read_bytes()
    monkeypatch.setattr(export, "TOLERANCE", -1.0)  # every comparison fails
    with pytest.raises(VelocityGANError, match="nothing written"):
        export_onnx(ckpt, out)
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt", "m.onnx"]


def test_a_network_that_outputs_nan_is_not_exported(tmp_path) -> None:
    import torch

    from velocitygan.errors import VelocityGANError

    net = tiny_generator(seed=7)
    with torch.no_grad():
        next(net.parameters()).fill_(float("nan"))
    ckpt = write_checkpoint(tmp_path / "c.pt", net)
    with pytest.raises(VelocityGANError, match="outputs NaN/Inf"):
        export_onnx(ckpt, tmp_path / "m.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]
