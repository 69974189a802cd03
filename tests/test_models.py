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
