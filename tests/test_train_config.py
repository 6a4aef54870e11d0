"""Training configuration: defaults, precedence, TOML round trip, errors; the losses."""

from __future__ import annotations

import math
import tomllib

import pytest
import torch

from velocitygan.errors import ConfigError
from velocitygan.train import (
    TrainConfig,
    dump_toml,
    load_toml_config,
    model_defaults,
    resolve_config,
)
from velocitygan.train.config import CONFIG_DIR, bundled_configs
from velocitygan.train.gan import critic_loss, gradient_penalty, interpolation_factors
from velocitygan.train.speed import recommended_precision
from velocitygan.train.state import lr_factor


def test_reference_defaults_per_model():
    gan = resolve_config()
    assert (gan.model, gan.epochs, gan.batch_size, gan.n_critic) == ("velocitygan", 500, 64, 5)
    assert (gan.l1_weight, gan.l2_weight, gan.adv_weight, gan.gp_weight) == (100, 100, 1, 10)
    assert gan.betas == [0.0, 0.9] and gan.lr == 1e-4 and gan.weight_decay == 1e-4
    inv = resolve_config(overrides={"model": "inversionnet"})
    assert (inv.epochs, inv.batch_size, inv.betas) == (120, 256, [0.9, 0.999])
    assert (inv.l1_weight, inv.l2_weight) == (1.0, 0.0)


def test_precedence_defaults_file_flags(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('model = "inversionnet"\n[optim]\nlr = 5e-4\n[data]\nbatch_size = 8\n')
    cfg = resolve_config(file=f, overrides={"batch_size": 2, "epochs": None})
    assert cfg.model == "inversionnet" and cfg.lr == 5e-4  # file beats defaults
    assert cfg.batch_size == 2  # flag beats file
    assert cfg.epochs == 120  # None flag = not given: model default stays
    # a flag choosing the model switches the model-specific defaults under the file
    cfg = resolve_config(file=f, overrides={"model": "velocitygan"})
    assert cfg.model == "velocitygan" and cfg.epochs == 500 and cfg.batch_size == 8


def test_dump_round_trip(tmp_path):
    cfg = resolve_config(overrides={"width": 0.5, "train": 'a "quoted" path.txt', "seed": 3})
    text = dump_toml(cfg, header="test")
    tomllib.loads(text)  # valid TOML
    f = tmp_path / "config.toml"
    f.write_text(text)
    again = resolve_config(file=f)
    assert again == cfg
    assert math.isinf(again.augment_noise_snr_db)


@pytest.mark.parametrize(
    ("text", "needle"),
    [("lerning_rate = 1.0\n", "lerning_rate"), ("[optimiser]\nlr = 1.0\n", "[optimiser]"),
     ("batch_size = 'big'\n", "batch_size"), ("bf16 = 'maybe'\n", "bf16"),
     ("epochs = 0\n", "epochs"), ("min_lr_ratio = -3.0\n", "min_lr_ratio"),
     ("[loss]\ngp_weight = -10.0\n", "gp_weight"), ("time_limit_min = nan\n", "time_limit_min"),
     ("unfrozen_lr = -1.0\n", "unfrozen_lr"), ("betas = [1.5, 0.9]\n", "betas"),
     ("betas = ['a', 0.9]\n", "betas"), ("critic_weight_decay = -1.0\n", "critic_weight_decay"),
     ("seed = 99999999999999999999\n", "seed"), ("lr = inf\n", "lr"),
     ("augment_noise_snr_db = nan\n", "augment_noise_snr_db"),
     ("augment_prob = 2.0\n", "augment_prob"),
     ("augment_trace_dropout = 2.0\n", "augment_trace_dropout")],
)
def test_bad_config_names_the_key(tmp_path, text, needle):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=None) as info:
        resolve_config(file=f)
    assert needle in str(info.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_toml_config(tmp_path / "nope.toml")


def test_bool_for_tristate_switch():
    assert resolve_config(overrides={"bf16": True}).bf16 == "true"
    assert TrainConfig().compile == "auto"


def test_interpolation_factors_shard_like_the_sampler():
    full = interpolation_factors(7, 3, rank=0, world_size=1, local_batch=6)
    r0 = interpolation_factors(7, 3, rank=0, world_size=2, local_batch=3)
    r1 = interpolation_factors(7, 3, rank=1, world_size=2, local_batch=3)
    assert torch.equal(full[0::2], r0) and torch.equal(full[1::2], r1)
    assert not torch.equal(full, interpolation_factors(7, 4, rank=0, world_size=1, local_batch=6))


def test_gradient_penalty_of_a_linear_critic():
    # D(x) = sum(w * x): grad norm is ||w|| everywhere, so the penalty is (||w|| - 1)^2.
    w = torch.full((1, 1, 4, 4), 0.5)

    def critic(x):
        return (x * w).flatten(1).sum(1, keepdim=True)

    real, fake = torch.randn(3, 1, 4, 4), torch.randn(3, 1, 4, 4)
    gp = gradient_penalty(critic, real, fake, torch.rand(3))
    assert gp.item() == pytest.approx((2.0 - 1.0) ** 2)
    loss, parts = critic_loss(critic, real, fake, torch.rand(3), gp_weight=10.0)
    expected = critic(fake).mean() - critic(real).mean() + 10.0
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert parts["gp"].item() == pytest.approx(1.0)



def test_penalty_stays_float32_under_bf16_autocast():
    from velocitygan.models import Discriminator

    torch.manual_seed(0)
    critic = Discriminator(width=0.25, norm="batch")
    real, fake = torch.rand(4, 1, 70, 70) * 2 - 1, torch.rand(4, 1, 70, 70) * 2 - 1
    a = torch.rand(4)
    _, exact = critic_loss(critic, real, fake, a, gp_weight=10.0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        _, mixed = critic_loss(critic, real, fake, a, gp_weight=10.0)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            in_bf16 = gradient_penalty(critic, real, fake, a)
    assert mixed["gp"].item() == pytest.approx(exact["gp"].item(), rel=1e-6)
    assert in_bf16.item() != pytest.approx(exact["gp"].item(), rel=1e-6)  # bf16 would move it
    # the score terms did run in bf16 (they differ slightly from fp32, but not much)
    assert mixed["wasserstein"].item() == pytest.approx(exact["wasserstein"].item(), abs=0.05)

@pytest.mark.parametrize("name", ["openfwi", "openfwi-inversionnet"])
def test_reference_config_files_are_the_dataclass_dumped(name):
    # generated text: values, keys and comments all come from TrainConfig
    text = (CONFIG_DIR / f"{name}.toml").read_text()
    header = "\n".join(line[2:] for line in text.partition("\n\n")[0].splitlines())
    model = "inversionnet" if "inversionnet" in name else "velocitygan"
    assert text == dump_toml(resolve_config(overrides={"model": model}), header=header), (
        f"regenerate {name}.toml with dump_toml (see its header)")


def test_bundled_configs_by_name():
    assert {"openfwi", "openfwi-inversionnet", "cpu-demo"} <= set(bundled_configs())
    for name in bundled_configs():
        assert resolve_config(file=name) == resolve_config(file=CONFIG_DIR / f"{name}.toml")
    demo = resolve_config(file="cpu-demo")
    assert demo.width < 1 and demo.n_critic == 1 and demo.workers == 0
    with pytest.raises(ConfigError, match="cpu-demo"):  # an unknown name lists the bundled ones
        resolve_config(file="cpu-dmeo")


def test_model_defaults_come_from_the_fields():
    assert model_defaults("velocitygan") == {}
    assert model_defaults("inversionnet") == {"epochs": 120, "batch_size": 256,
                                              "betas": [0.9, 0.999], "l1_weight": 1.0,
                                              "l2_weight": 0.0, "adv_weight": 0.0}


def test_recommended_precision():
    rec = recommended_precision("cpu", "generator")
    assert set(rec) == {"channels_last", "bf16"}
    assert recommended_precision("mps", "critic") == {"channels_last": False, "bf16": False}
    with pytest.raises(ConfigError):
        recommended_precision("cpu", "warp")


def test_lr_schedule():
    cfg = resolve_config(overrides={"lr_schedule": "cosine", "warmup_steps": 10,
                                    "min_lr_ratio": 0.1})
    assert lr_factor(0, 110, cfg) == pytest.approx(0.1)  # warm-up starts at 1/10
    assert lr_factor(9, 110, cfg) == pytest.approx(1.0)
    assert lr_factor(60, 110, cfg) == pytest.approx(0.55)  # half way down the cosine
    assert lr_factor(110, 110, cfg) == pytest.approx(0.1)
    assert lr_factor(500, 110, resolve_config()) == 1.0  # reference: constant


def test_lr_schedule_ends_with_the_time_budget():
    cfg = resolve_config(overrides={"lr_schedule": "cosine", "min_lr_ratio": 0.1,
                                    "time_limit_min": 10.0})
    # far from the last step but half the budget spent: half way down the cosine
    assert lr_factor(10, 10_000, cfg, elapsed_s=300.0) == pytest.approx(0.55)
    assert lr_factor(10, 10_000, cfg, elapsed_s=600.0) == pytest.approx(0.1)
    assert lr_factor(5_000, 10_000, cfg, elapsed_s=1.0) == pytest.approx(0.55)  # steps first


def test_auto_loader_workers_leave_small_machines_their_cores(monkeypatch):
    import velocitygan.train.loaders as loaders

    for cores, expected in ((1, 0), (2, 0), (16, 2)):
        monkeypatch.setattr(loaders, "cpu_count", lambda cores=cores: cores)
        assert loaders.loader_workers(resolve_config()) == expected
        assert loaders.loader_workers(resolve_config(overrides={"workers": 3})) == 3
        cached = resolve_config(overrides={"cache_normalized": True})
        assert loaders.loader_workers(cached) == 0  # the cache lives in the main process
    with pytest.raises(ConfigError, match="workers = -2 must be >= 0, or -1"):
        resolve_config(overrides={"workers": -2})
