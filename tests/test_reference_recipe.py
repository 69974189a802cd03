"""Smoke tests for experiments/reference_recipe.py, so library changes cannot break it unnoticed."""

import importlib.util
from pathlib import Path

import pytest
import torch

from cifar.models import ResidualGroup

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "reference_recipe.py"


@pytest.fixture(scope="module")
def recipe():
    spec = importlib.util.spec_from_file_location("reference_recipe", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_plain_net_drops_skip_connections(recipe):
    torch.manual_seed(0)
    net = recipe.build_net().eval()
    images = torch.randn(3, 3, 32, 32)
    assert net(images).shape == (3, 10)

    group = net.group1
    assert type(group) is recipe.PlainGroup
    inputs = torch.randn(2, 24, 31, 31)
    plain = group(inputs)
    residual = ResidualGroup.forward(group, inputs)
    pooled = torch.nn.functional.gelu(group.bn1(torch.nn.functional.max_pool2d(group.conv1(inputs), 2)))
    assert torch.allclose(residual - plain, pooled)


def test_skip_option_keeps_resnet_groups(recipe):
    net = recipe.build_net(skip=True)
    assert type(net.group1) is ResidualGroup


def test_schedule_rises_then_falls(recipe):
    assert recipe.lr_factor(0, 1000) == pytest.approx(0.2)
    assert recipe.lr_factor(230, 1000) == pytest.approx(1.0)
    assert recipe.lr_factor(1000, 1000) == pytest.approx(0.07)
