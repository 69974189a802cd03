import pytest
import torch

from cifar.models import MODELS, create, flops_per_image, parameter_count, source_digest


@pytest.mark.parametrize("name", list(MODELS))
def test_logits_shape(name):
    model = create(name).eval()
    assert model(torch.zeros(3, 3, 32, 32)).shape == (3, 10)


def test_tutorial_architecture():
    model = create("tutorial")
    assert parameter_count(model) == 62_006
    # conv1 705,600 + conv2 480,000 + fc1 96,000 + fc2 20,160 + fc3 1,680 (a multiply-add is 2 FLOPs).
    assert flops_per_image(model) == 1_303_440


def test_resnet_has_batchnorm_and_residuals():
    model = create("resnet")
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert flops_per_image(model) > 100 * flops_per_image(create("tutorial"))


def test_resnet_eval_averages_mirror_logits():
    torch.manual_seed(0)
    model = create("resnet").eval()
    images = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        averaged = model(images)
        assert torch.allclose(averaged, model(images.flip(-1)), rtol=1e-4, atol=1e-7)  # mirror-invariant
        model.mirror_average = False
        single = model(images)
        mirrored = model(images.flip(-1))
    assert torch.allclose(averaged, (single + mirrored) / 2, rtol=1e-4, atol=1e-7)
    # Each view alone differs from its mirror, so the average is not trivially the same.
    assert (single - mirrored).abs().max() > 0.05 * single.abs().max()


def test_resnet_group_convs_start_as_identity():
    from cifar.models import ResidualGroup

    group = ResidualGroup(24, 64)
    for conv, passed in ((group.conv1, 24), (group.conv2, 64)):
        kernels = conv.weight[:passed].detach()
        identity = torch.zeros_like(kernels)
        identity[torch.arange(passed), torch.arange(passed), 1, 1] = 1
        assert torch.equal(kernels, identity)
    assert group.conv1.weight[24:].abs().sum() > 0  # the other filters keep a random init


def test_whitening_stem_decorrelates_patches():
    torch.manual_seed(0)
    # Correlated input: every channel is the same smooth image plus a little noise.
    base = torch.nn.functional.interpolate(torch.randn(64, 1, 8, 8), size=32, mode="bilinear")
    images = base.repeat(1, 3, 1, 1) + 0.1 * torch.randn(64, 3, 32, 32)
    model = create("resnet")
    model.init_whitening(images)
    with torch.no_grad():
        out = torch.nn.functional.conv2d(images, model.stem.weight[:12])  # one sign of each direction
    covariance = torch.cov(out.permute(1, 0, 2, 3).reshape(12, -1))
    assert torch.allclose(covariance, torch.eye(12), atol=0.05)


def test_flop_count_keeps_training_mode():
    model = create("resnet").train()
    flops_per_image(model)
    assert model.training


def test_unknown_model_lists_choices():
    with pytest.raises(ValueError, match="tutorial, resnet"):
        create("vgg")


def test_source_digest_is_stable():
    assert source_digest("tutorial") == source_digest("tutorial")
    assert len(source_digest("resnet")) == 16
