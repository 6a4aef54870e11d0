"""``velocitygan predict``: shapes, units, normalisation source, input checks, SEG-Y input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from evalkit import tiny_generator, write_checkpoint, write_dataset

from velocitygan.cli import main
from velocitygan.data import get_dataset, normalize_seismic
from velocitygan.predict import predict
from velocitygan.segy import resample_gathers


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("pred")
    split = write_dataset(root, counts=(3,))
    model = tiny_generator(seed=1)
    return root, split, model, write_checkpoint(root / "ckpt.pt", model)


def _expected_mps(model, x_raw: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(normalize_seismic(x_raw, get_dataset("flatvel-a")).astype(np.float32))
    with torch.no_grad():
        y = model(x).numpy()
    return (y + 1) / 2 * 3000 + 1500


def test_predict_single_sample_and_batch(setup, tmp_path) -> None:
    root, _, model, ckpt = setup
    batch = np.load(root / "data" / "data0.npy")
    np.save(tmp_path / "one.npy", batch[1])
    assert main(["predict", "-c", str(ckpt), "-i", str(tmp_path / "one.npy"),
                 "-o", str(tmp_path / "v1.npy")]) == 0  # fmt: skip
    v1 = np.load(tmp_path / "v1.npy")
    assert v1.shape == (1, 1, 70, 70) and v1.dtype == np.float32
    np.testing.assert_allclose(v1, _expected_mps(model, batch[1:2]), atol=0.05)
    assert 1500 <= v1.min() and v1.max() <= 4500 and v1.std() > 10  # m/s, not normalised
    vb = predict(ckpt, root / "data" / "data0.npy", tmp_path / "vb.npy", batch_size=2,
                 log=lambda m: None)  # fmt: skip
    assert vb.shape == (3, 1, 70, 70)
    np.testing.assert_allclose(vb[1], v1[0], atol=0.05)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.npy", "v1.npy", "vb.npy"]
    # A one-column split file (data only, relative paths) gives the same maps.
    (root / "unlabeled.txt").write_text("data/data0.npy\n")
    vs = predict(ckpt, root / "unlabeled.txt", log=lambda m: None)
    np.testing.assert_allclose(vs, vb, atol=0.05)  # batch size changes float rounding


def test_predict_warns_on_out_of_range_and_rejects_nan(setup, tmp_path, capsys) -> None:
    root, _, _, ckpt = setup
    x = np.load(root / "data" / "data0.npy")[:1].copy()
    x[0, 2, 100, 5] = 200.0  # flatvel-a's raw maximum is 52.77
    np.save(tmp_path / "loud.npy", x)
    assert main(["predict", "-c", str(ckpt), "-i", str(tmp_path / "loud.npy"),
                 "-o", str(tmp_path / "v.npy")]) == 0  # fmt: skip
    err = capsys.readouterr().err
    assert "warning:" in err and "exceed the range" in err
    np.save(tmp_path / "quiet.npy", x * 1e-3)
    assert main(["predict", "-c", str(ckpt), "-i", str(tmp_path / "quiet.npy"),
                 "-o", str(tmp_path / "v.npy")]) == 0  # fmt: skip
    assert "already normalised" in capsys.readouterr().err
    x[0, 0, 0, 0] = np.nan
    np.save(tmp_path / "nan.npy", x)
    assert main(["predict", "-c", str(ckpt), "-i", str(tmp_path / "nan.npy"),
                 "-o", str(tmp_path / "w.npy")]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert "NaN" in err and "\n" not in err and not (tmp_path / "w.npy").exists()


def test_normalisation_from_dataset_when_checkpoint_has_none(setup, tmp_path, capsys) -> None:
    root, _, model, _ = setup
    bare = write_checkpoint(tmp_path / "bare.pt", model, dataset=None)
    data = root / "data" / "data0.npy"
    assert main(["predict", "-c", str(bare), "-i", str(data), "-o", str(tmp_path / "v.npy")]) == 2
    assert "--dataset" in capsys.readouterr().err
    assert main(["predict", "-c", str(bare), "-i", str(data), "-o", str(tmp_path / "v.npy"),
                 "--dataset", "curvevel-b"]) == 0  # fmt: skip
    x = np.load(data)
    xn = torch.from_numpy(normalize_seismic(x, get_dataset("curvevel-b")).astype(np.float32))
    with torch.no_grad():
        want = (model(xn).numpy() + 1) / 2 * 3000 + 1500
    np.testing.assert_allclose(np.load(tmp_path / "v.npy"), want, atol=0.05)


def test_wrong_shape_and_unknown_input_are_one_line_errors(setup, tmp_path, capsys) -> None:
    root, _, _, ckpt = setup
    np.save(tmp_path / "short.npy", np.zeros((2, 5, 800, 70), np.float32))
    np.save(tmp_path / "complex.npy", np.zeros((1, 5, 1000, 70), np.complex64))
    (tmp_path / "x.csv").write_text("1,2\n")
    # a card mapping velocities to another range than the model's outputs
    (tmp_path / "other.toml").write_text(
        '[datasets.other]\ndata_min = -26.9\ndata_max = 52.8\n'
        'label_min = 2000.0\nlabel_max = 6000.0\n')
    data = str(root / "data" / "data0.npy")
    for args, needle in (([str(tmp_path / "short.npy")], "(N, 5, 1000, 70)"),
                         ([str(tmp_path / "x.csv")], ".sgy"),
                         ([str(tmp_path / "complex.npy")], "expected real numbers"),
                         ([data, "--dataset", f"{tmp_path / 'other.toml'}#other"],
                          "outputs 1500-4500 m/s"),
                         ([data, "-o", str(tmp_path)], "is a folder; give a file name"),
                         ([data, "-o", str(tmp_path / "x.csv" / "v.npy")], "is a file, not")):
        out = str(tmp_path / "o.npy")
        assert main(["predict", "-c", str(ckpt), "-o", out, "-i", *args]) == 2
        err = capsys.readouterr().err.strip()
        assert needle in err and "\n" not in err, err


def test_resample_gathers_time_and_receivers() -> None:
    t_in = np.arange(2000) * 0.0005
    r_in = np.linspace(0, 1, 35)
    # Linear in receiver position, smooth in time: linear interpolation is exact across receivers.
    data = (np.sin(2 * np.pi * 5 * t_in)[None, :, None] * (1 + 2 * r_in)[None, None, :]
            * np.array([1, 2])[:, None, None])  # fmt: skip
    out, note = resample_gathers(data, dt_in_s=0.0005, dt_out_s=0.001, nt_out=1000,
                                 n_receivers_out=70)  # fmt: skip
    assert out.shape == (2, 1000, 70)
    want = (np.sin(2 * np.pi * 5 * np.arange(1000) * 0.001)[None, :, None]
            * (1 + 2 * np.linspace(0, 1, 70))[None, None, :] * np.array([1, 2])[:, None, None])
    np.testing.assert_allclose(out, want, atol=1e-5)
    assert "2000 x 0.5 ms -> 1000 x 1 ms" in note and "receivers 35 -> 70" in note
    # Shorter records are zero-padded at the end; same grid means no resampling at all.
    short, _ = resample_gathers(data[:, :500], dt_in_s=0.0005, dt_out_s=0.001, nt_out=1000,
                                n_receivers_out=35)  # fmt: skip
    assert np.all(short[:, 250:] == 0) and np.abs(short[:, :249]).max() > 0
    same, none = resample_gathers(data, dt_in_s=0.0005, dt_out_s=0.0005, nt_out=2000,
                                  n_receivers_out=35)  # fmt: skip
    assert none is None and np.allclose(same, data, atol=1e-6)


def _write_segy(path, gathers: np.ndarray, dt_us: int, header) -> object:
    """Write ``gathers`` (shots, nt, receivers) as SEG-Y, one trace per (shot, receiver) in
    that order, with ``header(shot, receiver)`` as trace header fields."""
    import segyio

    shots, nt, receivers = gathers.shape
    spec = segyio.spec()
    spec.format, spec.samples, spec.tracecount = 5, list(range(nt)), shots * receivers
    with segyio.create(str(path), spec) as f:
        f.bin.update(hdt=dt_us)
        for s in range(shots):
            for r in range(receivers):
                f.header[s * receivers + r] = header(s, r)
                f.trace[s * receivers + r] = np.ascontiguousarray(gathers[s, :, r],
                                                                  dtype=np.float32)
    return path


def test_segy_input_is_read_as_shot_gathers_and_resampled(setup, tmp_path, capsys) -> None:
    segyio = pytest.importorskip("segyio")
    root, _, model, ckpt = setup
    x = np.load(root / "data" / "data0.npy")[0]  # (5, 1000, 70) at 1 ms
    # Write it at 0.5 ms (linear upsampling, exact at the original samples), shots by FFID.
    t_fine = np.arange(2000) * 0.5
    fine = np.stack([[np.interp(t_fine, np.arange(1000), x[s, :, r]) for r in range(70)]
                     for s in range(5)]).astype(np.float32)  # (5, 70, 2000)
    path = _write_segy(tmp_path / "shots.sgy", fine.transpose(0, 2, 1), 500,
                       lambda s, r: {segyio.TraceField.FieldRecord: 101 + s,
                                     segyio.TraceField.TRACE_SAMPLE_INTERVAL: 500,
                                     segyio.TraceField.GroupX: r * 10})  # fmt: skip
    assert main(["predict", "-c", str(ckpt), "-i", str(path), "-o", str(tmp_path / "v.npy")]) == 0
    err = capsys.readouterr().err
    assert "5x2000x70" in err and "2000 x 0.5 ms -> 1000 x 1 ms" in err
    np.testing.assert_allclose(np.load(tmp_path / "v.npy"), _expected_mps(model, x[None]),
                               atol=0.5)  # fmt: skip


def test_segy_traces_are_ordered_by_receiver_position(tmp_path) -> None:
    segyio = pytest.importorskip("segyio")
    from velocitygan.segy import read_segy_gathers

    rng = np.random.default_rng(3)
    data = rng.normal(size=(2, 8, 6)).astype(np.float32)  # (shots, nt, receivers)
    spec = segyio.spec()
    spec.format, spec.samples, spec.tracecount = 5, list(range(8)), 12
    for name, recorded in (("shuffled.sgy", True), ("no_positions.sgy", False)):
        path = tmp_path / name
        with segyio.create(str(path), spec) as f:
            f.bin.update(hdt=1000)
            i = 0
            for s in range(2):
                for r in (3, 0, 5, 1, 4, 2):  # file order is not receiver order
                    f.header[i] = {segyio.TraceField.FieldRecord: 7 + s,
                                   segyio.TraceField.GroupX: 25 * r if recorded else 0}
                    f.trace[i] = np.ascontiguousarray(data[s, :, r])
                    i += 1
        got = read_segy_gathers(path).data
        expected = data if recorded else data[:, :, [3, 0, 5, 1, 4, 2]]
        np.testing.assert_array_equal(got, expected)


def test_segy_without_traces_or_with_a_recording_delay_is_refused(tmp_path) -> None:
    segyio = pytest.importorskip("segyio")
    from velocitygan.errors import DataError
    from velocitygan.segy import read_segy_gathers

    delayed = _write_segy(tmp_path / "delay.sgy", np.ones((1, 8, 3), np.float32), 1000,
                          lambda s, r: {segyio.TraceField.DelayRecordingTime: 100})
    with pytest.raises(DataError, match="start 100 ms after the shot"):
        read_segy_gathers(delayed)
    # the textual and binary headers of a valid file, without its traces
    (tmp_path / "empty.sgy").write_bytes(delayed.read_bytes()[:3600])
    with pytest.raises(DataError, match="holds no traces"):
        read_segy_gathers(tmp_path / "empty.sgy")


def test_nan_error_names_the_sample_in_the_file(setup, tmp_path, capsys) -> None:
    root, _, _, ckpt = setup
    x = np.repeat(np.load(root / "data" / "data0.npy")[:1], 5, axis=0)
    x[3, 1, 10, 10] = np.inf
    np.save(tmp_path / "x.npy", x)
    assert main(["predict", "-c", str(ckpt), "-i", str(tmp_path / "x.npy"), "-o",
                 str(tmp_path / "v.npy"), "--batch-size", "2"]) == 2
    assert "sample 3 contains NaN" in capsys.readouterr().err


def test_segy_shots_grouped_by_source_position(setup, tmp_path, capsys) -> None:
    segyio = pytest.importorskip("segyio")
    root, _, model, ckpt = setup
    x = np.load(root / "data" / "data0.npy")[0]  # (5, 1000, 70) at 1 ms
    path = _write_segy(tmp_path / "by_source.sgy", x, 1000,
                       lambda s, r: {segyio.TraceField.FieldRecord: 1,  # one record
                                     segyio.TraceField.SourceX: 170 * s,
                                     segyio.TraceField.GroupX: r * 10})  # fmt: skip
    out = str(tmp_path / "v.npy")
    assert main(["predict", "-c", str(ckpt), "-i", str(path), "-o", out]) == 2
    assert "1 shots (by field_record)" in capsys.readouterr().err
    assert main(["predict", "-c", str(ckpt), "-i", str(path), "-o", out,
                 "--shot-key", "source_x"]) == 0
    np.testing.assert_allclose(np.load(out), _expected_mps(model, x[None]), atol=0.5)
