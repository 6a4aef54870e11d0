"""Tests for velocitygan.models: architecture sizes, shapes, config round trips, errors."""

import pytest
import torch

from velocitygan.errors import ConfigError, VelocityGANError
from velocitygan.models import (
    CRITIC_NORMS,
    DEFAULT_CRITIC_NORM,
    Discriminator,
    InversionNet,
    build_discriminator,
    build_generator,
    count_parameters,
    reference_key_to_ours,
)


def test_inversionnet_reference_parameter_count_and_latent_kernel():
    model = InversionNet()
    assert count_parameters(model) == 24_409_123
    assert model.latent_kernel == (8, 9)  # the reference's full-extent conv at nt=1000, 70 rec


def test_discriminator_reference_parameter_count():
    assert count_parameters(Discriminator(norm="batch")) == 1_180_003


def test_inversionnet_full_size_output_shape_and_range():
    torch.manual_seed(0)
    model = InversionNet().eval()
    with torch.no_grad():
        y = model(torch.randn(2, 5, 1000, 70))
    assert y.shape == (2, 1, 70, 70)
    assert y.min() >= -1.0 and y.max() <= 1.0


def test_width_multiplier_scales_channels():
    model = InversionNet(width=0.5)
    assert model.encoder.convblock1.layers[0].out_channels == 16
    assert model.encoder.convblock8.layers[0].out_channels == 256
    assert model.decoder.deconv5_2.layers[0].out_channels == 16
    assert count_parameters(model) < count_parameters(InversionNet()) / 3


def test_other_record_length_and_receiver_count_work():
    model = InversionNet(width=0.125, nt=500, n_receivers=40, in_channels=3)
    assert model.latent_kernel == (4, 5)  # 500 -> ... -> 4 time, 40 -> 20 -> 10 -> 5 receivers
    y = model(torch.randn(2, 3, 500, 40))
    assert y.shape == (2, 1, 70, 70)
    y.mean().backward()
    assert model.encoder.convblock1.layers[0].weight.grad is not None


@pytest.mark.parametrize("shape", [(2, 5, 999, 70), (2, 5, 1000, 69), (2, 4, 1000, 70), (5, 1000)])
def test_wrong_input_shape_raises_clear_error(shape):
    model = InversionNet(width=0.125)
    with pytest.raises(VelocityGANError, match=r"expects input of shape \(N, 5, 1000, 70\)"):
        model(torch.randn(*shape))


def test_discriminator_wrong_shape_raises():
    with pytest.raises(VelocityGANError, match="70, 70"):
        Discriminator(width=0.25)(torch.randn(2, 1, 64, 64))


@pytest.mark.parametrize(
    "kwargs", [{"width": 0}, {"width": -1.0}, {"nt": 0}, {"n_receivers": 2.5}, {"in_channels": 0}]
)
def test_bad_generator_config_raises_config_error(kwargs):
    with pytest.raises(ConfigError):
        InversionNet(**kwargs)


def test_bad_discriminator_norm_raises():
    with pytest.raises(ConfigError, match="unknown norm 'group'"):
        Discriminator(norm="group")


def test_constructors_are_keyword_only():
    with pytest.raises(TypeError):
        InversionNet(0.5)  # type: ignore[misc]
    with pytest.raises(TypeError):
        Discriminator(0.5)  # type: ignore[misc]


def _same_structure(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(sa[k].shape == sb[k].shape for k in sa)


def test_generator_config_round_trip_rebuilds_exactly():
    model = InversionNet(width=0.25, nt=600, n_receivers=50)
    rebuilt = build_generator(dict(model.config))
    assert rebuilt.config == model.config
    assert _same_structure(model, rebuilt)
    rebuilt.load_state_dict(model.state_dict())  # strict by default


def test_discriminator_config_round_trip_and_unknown_key():
    model = Discriminator(width=0.5, norm="instance")
    rebuilt = build_discriminator(dict(model.config))
    assert _same_structure(model, rebuilt)
    with pytest.raises(ConfigError, match="unknown key"):
        build_discriminator({**model.config, "depth": 3})


def test_encoder_decoder_submodules_cover_all_parameters():
    model = InversionNet(width=0.25)
    n_enc = count_parameters(model.encoder)
    n_dec = count_parameters(model.decoder)
    assert n_enc > 0 and n_dec > 0 and n_enc + n_dec == count_parameters(model)


@pytest.mark.parametrize("norm", CRITIC_NORMS)
def test_each_critic_norm_runs_forward_backward_and_gradient_penalty(norm):
    torch.manual_seed(0)
    critic = Discriminator(width=0.25, norm=norm)
    x = torch.rand(4, 1, 70, 70, requires_grad=True) * 2 - 1
    score = critic(x)
    assert score.shape == (4, 1)
    (grad,) = torch.autograd.grad(score.sum(), x, create_graph=True)
    penalty = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
    (score.mean() + 10 * penalty).backward()
    assert all(p.grad is not None for p in critic.parameters())


def test_non_batch_critics_have_no_cross_sample_coupling():
    torch.manual_seed(0)
    x = torch.rand(3, 1, 70, 70) * 2 - 1
    for norm in ("none", "layer", "instance"):
        critic = Discriminator(width=0.25, norm=norm)
        together = critic(x)
        alone = torch.cat([critic(x[i : i + 1]) for i in range(3)])
        torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-5)


def test_default_norm_is_a_valid_choice():
    assert DEFAULT_CRITIC_NORM in CRITIC_NORMS
    assert Discriminator().config["norm"] == DEFAULT_CRITIC_NORM


def test_reference_key_mapping_matches_our_state_dict():
    ours = set(InversionNet(width=0.125).state_dict())
    for ref in (
        "convblock1.layers.0.weight",
        "deconv6.layers.1.running_mean",
        "convblock8.layers.0.bias",
    ):
        assert reference_key_to_ours(ref) in ours
    critic_keys = set(Discriminator(width=0.25).state_dict())
    assert reference_key_to_ours("convblock5.layers.1.weight", "discriminator") in critic_keys
