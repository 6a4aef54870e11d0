"""``velocitygan train`` end to end on tiny data: artefacts, checkpoints, failures, fine-tuning."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch
from trainkit import first_batchnorm_is_the_data_mean, make_tiny_dataset, train_args

from velocitygan.checkpoint import load_generator
from velocitygan.cli import main


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_dataset(tmp_path_factory.mktemp("tiny"))


def _rows(run):
    with open(run / "metrics.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_velocitygan_run_writes_artefacts(tiny, tmp_path):
    run = tmp_path / "run"
    rc = main(train_args(tiny, run, "--epochs", "2", "--n-critic", "2",
                         "--set", "tensorboard=true"))
    assert rc == 0
    for name in ("config.toml", "metrics.csv", "best.pt", "last.pt"):
        assert (run / name).is_file(), name
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    rows = _rows(run)
    assert [r["epoch"] for r in rows] == ["1", "2"] and rows[-1]["step"] == "12"
    for key in ("g_loss", "d_loss", "gp", "val_mae", "val_rmse", "val_ssim", "val_mae_mps"):
        assert math.isfinite(float(rows[-1][key])), key
    assert 0 < float(rows[-1]["adv_share"]) < 1  # the critic's share of the generator gradient
    assert float(rows[-1]["val_mae_mps"]) == pytest.approx(1500 * float(rows[-1]["val_mae"]),
                                                           rel=1e-4)
    ckpt = torch.load(run / "last.pt", weights_only=True)  # plain data only
    assert ckpt["model"]["kind"] == "velocitygan" and ckpt["epoch"] == 2
    assert ckpt["model"]["generator"]["nt"] == 100 and ckpt["dataset"]["name"] == "tiny"
    assert isinstance(ckpt["velocitygan_version"], str)
    model, spec, _ = load_generator(run / "best.pt")
    assert spec.seismic_shape == (5, 100, 20)
    assert model(torch.zeros(2, 5, 100, 20)).shape == (2, 1, 70, 70)
    # the written config reproduces the run's settings
    text = (run / "config.toml").read_text()
    assert "n_critic = 2" in text and 'model = "velocitygan"' in text


def test_inversionnet_and_user_errors(tiny, tmp_path, capsys):
    run = tmp_path / "inv"
    assert main(train_args(tiny, run, "--epochs", "1", model="inversionnet")) == 0
    ckpt = torch.load(run / "best.pt", weights_only=True)
    assert ckpt["discriminator"] is None and ckpt["config"]["l2_weight"] == 0.0
    capsys.readouterr()
    # the run folder is taken: no silent overwrite
    assert main(train_args(tiny, run, "--epochs", "1", model="inversionnet")) == 2
    assert "--resume" in capsys.readouterr().err
    # a bad split file, an unknown --set key, a batch larger than the data
    assert main(train_args({**tiny, "train": tmp_path / "nope.txt"}, tmp_path / "r2")) == 2
    assert "nope.txt" in capsys.readouterr().err
    assert main(train_args(tiny, tmp_path / "r3", "--set", "n_critik=2")) == 2
    assert "n_critik" in capsys.readouterr().err
    assert main(train_args(tiny, tmp_path / "r4", "--batch-size", "64")) == 2
    assert "--batch-size" in capsys.readouterr().err


def _infinite_loss(monkeypatch) -> None:
    """Make every generator loss infinite (settings that would are refused up front)."""
    from velocitygan.train import loop

    real = loop.generator_loss

    def inf_loss(*args, **kwargs):
        loss, parts = real(*args, **kwargs)
        return loss * math.inf, parts

    monkeypatch.setattr(loop, "generator_loss", inf_loss)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tiny, tmp_path, capsys, monkeypatch):
    run = tmp_path / "nan"
    assert main(train_args(tiny, run, "--epochs", "1", model="inversionnet")) == 0
    before = (run / "last.pt").read_bytes()
    capsys.readouterr()
    _infinite_loss(monkeypatch)
    rc = main(train_args(tiny, run, "--epochs", "2", "--resume", model="inversionnet"))
    assert rc == 2
    err = capsys.readouterr().err
    assert "NaN/Inf" in err and "last.pt" in err and "Traceback" not in err
    assert (run / "last.pt").read_bytes() == before


def test_nan_policy_skip_counts_batches(tiny, tmp_path, monkeypatch):
    run = tmp_path / "skip"
    _infinite_loss(monkeypatch)
    rc = main(train_args(tiny, run, "--epochs", "1", "--nan-policy", "skip",
                         model="inversionnet"))
    assert rc == 0
    assert _rows(run)[-1]["skipped_batches"] == "6"  # 24 samples / batch 4, all skipped


def test_init_from_with_frozen_encoder(tiny, tmp_path):
    src = tmp_path / "src"
    # running statistics in the start model: the fine-tuning run's end-of-run BatchNorm pass
    # would give the encoder other ones, were it not frozen
    assert main(train_args(tiny, src, "--epochs", "1", "--set", "bn_recompute_samples=0",
                           model="inversionnet")) == 0
    start, _, _ = load_generator(src / "best.pt")
    run = tmp_path / "ft"
    rc = main(train_args(tiny, run, "--epochs", "1", "--init-from", str(src / "best.pt"),
                         "--freeze", "encoder", "--unfrozen-lr", "1e-3"))
    assert rc == 0
    tuned, _, ckpt = load_generator(run / "last.pt")
    assert ckpt["config"]["freeze"] == "encoder"
    for (name, a), b in zip(start.encoder.state_dict().items(),
                            tuned.encoder.state_dict().values(), strict=True):
        assert torch.equal(a, b), f"frozen encoder changed: {name}"
    changed = [not torch.equal(a, b) for a, b in zip(start.decoder.state_dict().values(),
                                                      tuned.decoder.state_dict().values(),
                                                      strict=True)]
    assert any(changed)
    # a checkpoint of another width does not fit: clear error
    assert main(train_args(tiny, tmp_path / "bad", "--init-from", str(src / "best.pt"),
                           "--width", "0.125")) == 2


def test_augmentation_keys_reach_the_dataset(tiny, tmp_path):
    from velocitygan.data import get_dataset
    from velocitygan.train import resolve_config
    from velocitygan.train.loaders import build_datasets

    base = {"train": str(tiny["train"]), "val": str(tiny["val"]),
            "dataset": str(tiny["dataset"])}
    spec = get_dataset(base["dataset"])
    assert build_datasets(resolve_config(overrides=base), spec)[2] is None  # off by default
    cfg = resolve_config(overrides=base | {"augment_flip": True, "augment_noise_snr_db": 10.0,
                                           "augment_trace_dropout": 0.2})
    train_ds, _, augment = build_datasets(cfg, spec)
    assert augment.flip and augment.noise_snr_db == 10.0
    assert augment.trace_dropout == 0.2 and train_ds.transform is augment
    run = tmp_path / "aug"
    assert main(train_args(tiny, run, "--epochs", "1", "--set", "augment_flip=true",
                           model="inversionnet")) == 0


def test_cached_normalised_samples_train_identically(tiny, tmp_path):
    plain, cached = tmp_path / "plain", tmp_path / "cached"
    assert main(train_args(tiny, plain, "--epochs", "2", model="inversionnet")) == 0
    assert main(train_args(tiny, cached, "--epochs", "2", "--set", "cache_normalized=true",
                           model="inversionnet")) == 0
    a = torch.load(plain / "last.pt", weights_only=True)["generator"]
    b = torch.load(cached / "last.pt", weights_only=True)["generator"]
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert main(train_args(tiny, tmp_path / "bad", "--set", "cache_normalized=true",
                           "--workers", "1")) == 2


def test_host_memory_reuse_follows_the_setting(tiny, tmp_path, monkeypatch):
    import velocitygan.cli as cli_module
    import velocitygan.train.run as run_module

    calls = []
    monkeypatch.setattr(run_module, "reuse_freed_memory", lambda: calls.append("train"))
    monkeypatch.setattr(cli_module, "reuse_freed_memory", lambda: calls.append("cli"))
    assert main(train_args(tiny, tmp_path / "off", "--epochs", "1", "--set",
                           "reuse_host_memory=false", model="inversionnet")) == 0
    assert calls == []  # the CLI leaves train to its setting
    assert main(train_args(tiny, tmp_path / "on", "--epochs", "1", model="inversionnet")) == 0
    assert calls == ["train"]
    assert main(["data", "check", str(tiny["train"]), "--dataset", str(tiny["dataset"])]) == 0
    assert calls == ["train", "cli"]


def test_bad_sample_read_in_a_loader_worker_is_one_line(tmp_path, capsys):
    data = make_tiny_dataset(tmp_path / "nan")
    x = np.load(tmp_path / "nan" / "train_data.npy")
    x[5, 0, 0, 0] = np.nan
    np.save(tmp_path / "nan" / "train_data.npy", x)
    args = train_args(data, tmp_path / "run", "--epochs", "1")
    args[args.index("--workers") + 1] = "2"
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "NaN" in err[-1]
    assert not any("Traceback" in line or "worker process" in line for line in err)


def test_validation_numbers_are_those_evaluate_gives(tiny, tmp_path):
    """Training in bf16 still validates in float32: metrics.csv's best row is what
    `velocitygan evaluate` reports for best.pt."""
    import json

    run = tmp_path / "bf16"
    args = train_args(tiny, run, "--epochs", "1", model="inversionnet")
    args[args.index("--bf16") + 1] = "true"
    assert main(args) == 0
    row = _rows(run)[-1]
    assert main(["evaluate", "-c", str(run / "best.pt"), "--data", str(tiny["val"]), "--out",
                 str(tmp_path / "ev"), "--no-figures"]) == 0
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert float(row["val_mae"]) == pytest.approx(metrics["mae"], rel=1e-4)


def test_bundled_config_by_name_and_flag_help_from_the_fields(tiny, tmp_path, capsys):
    from velocitygan.train.config import FIELDS

    assert main(["train", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())  # help re-wraps long lines
    for flag, key in (("--batch-size", "batch_size"), ("--n-critic", "n_critic"),
                      ("--compile", "compile"), ("-d, --dataset", "dataset")):
        assert f"{flag} " in text and FIELDS[key].metadata["doc"] in text, flag
    assert "[default: 64; inversionnet: 256]" in text
    run = tmp_path / "demo"
    assert main(train_args(tiny, run, "--config", "cpu-demo", "--epochs", "1")) == 0
    text = (run / "config.toml").read_text()
    assert 'lr_schedule = "cosine"' in text and "n_critic = 1" in text  # from cpu-demo
    assert "batch_size = 4" in text  # flags override the config
    assert main(train_args(tiny, tmp_path / "x", "--config", "no-such-config")) == 2
    assert "cpu-demo" in capsys.readouterr().err


def test_velocitygan_fine_tuning_keeps_the_checkpoint_critic(tiny, tmp_path):
    from velocitygan.checkpoint import load_checkpoint
    from velocitygan.models import build_discriminator
    from velocitygan.train.state import _init_critic

    src = tmp_path / "src"
    assert main(train_args(tiny, src, "--epochs", "1")) == 0
    ckpt = load_checkpoint(src / "last.pt")
    critic = build_discriminator(ckpt["model"]["discriminator"])
    assert _init_critic(critic, ckpt)
    for name, value in critic.state_dict().items():
        assert torch.equal(value, ckpt["discriminator"][name]), name
    other = dict(ckpt["model"]["discriminator"], width=2 * ckpt["model"]["discriminator"]["width"])
    assert not _init_critic(build_discriminator(other), ckpt)  # another shape: a fresh critic
    assert not _init_critic(critic, {})  # an InversionNet or reference checkpoint has none


@pytest.mark.parametrize("samples", [0, 5, 24])  # 5: whole batches of 4, never one of 1
def test_batchnorm_statistics_come_from_the_training_data_at_the_end(tiny, tmp_path, samples):
    """With every training sample recomputed (6 equal batches), the first BatchNorm's running
    mean is the mean of its input over the training set; without, it is a running average."""
    run = tmp_path / f"bn{samples}"
    assert main(train_args(tiny, run, "--epochs", "2", "--set", f"bn_recompute_samples={samples}",
                           model="inversionnet")) == 0
    assert first_batchnorm_is_the_data_mean(run, tiny) == (samples == 24)


def test_content_warm_up_starts_the_critic_later(tiny, tmp_path):
    run = tmp_path / "warm"
    assert main(train_args(tiny, run, "--epochs", "2", "--n-critic", "1",
                           "--set", "adv_start_steps=6")) == 0  # 6 iterations per epoch
    first, second = _rows(run)
    assert first["d_loss"] == first["adv_share"] == ""  # epoch 1: content loss alone
    assert math.isfinite(float(second["d_loss"])) and 0 < float(second["adv_share"]) < 1
