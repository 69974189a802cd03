"""The model registry: the small "tutorial" CNN and a fast residual net, both for 32x32 RGB input."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

NUM_CLASSES = 10
INPUT_SHAPE = (3, 32, 32)


class TutorialNet(nn.Module):
    """The classic two-conv CNN from PyTorch's CIFAR-10 tutorial (about 62k parameters)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)  # (N, 6, 14, 14)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)  # (N, 16, 5, 5)
        x = torch.flatten(x, 1)  # (N, 400)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class ResidualGroup(nn.Module):
    """Conv, 2x2 max-pool, BatchNorm, GELU, then a residual conv-BN-GELU at the pooled size.

    Pooling right after the first conv makes the second conv run at a quarter of the pixels, which
    is where most of the speed comes from.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.bn1(F.max_pool2d(self.conv1(x), 2)))
        return x + F.gelu(self.bn2(self.conv2(x)))


class ResNet(nn.Module):
    """A compact residual net for CIFAR-10: a stem and three pooled residual groups (32->16->8->4)."""

    def __init__(self, widths: tuple[int, int, int] = (64, 256, 256), stem_width: int = 32) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, stem_width, 3, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(stem_width)
        self.group1 = ResidualGroup(stem_width, widths[0])
        self.group2 = ResidualGroup(widths[0], widths[1])
        self.group3 = ResidualGroup(widths[1], widths[2])
        self.head = nn.Linear(widths[2], NUM_CLASSES, bias=False)
        self.logit_scale = 0.125

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.stem_bn(self.stem(x)))  # (N, 32, 32, 32)
        x = self.group3(self.group2(self.group1(x)))  # (N, 256, 4, 4)
        x = torch.amax(x, dim=(2, 3))  # global max-pool: (N, 256)
        # Max-pooled features are large, so unscaled logits start far from uniform and the first
        # steps diverge at the recipe's learning rate. A fixed 1/8 keeps them small.
        return self.head(x) * self.logit_scale


MODELS: dict[str, Callable[[], nn.Module]] = {
    "tutorial": TutorialNet,
    "resnet": ResNet,
}


def create(name: str) -> nn.Module:
    """Build a freshly initialized model by registry name."""
    try:
        return MODELS[name]()
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}") from None


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def flops_per_image(model: nn.Module) -> int:
    """Count forward FLOPs for one image with torch's FlopCounterMode (a multiply-add is 2)."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, *INPUT_SHAPE))
    model.train(was_training)
    return counter.get_total_flops()


def source_digest(name: str) -> str:
    """Hash the source of the model's module, so a change to any model definition changes the key."""
    import hashlib

    module = inspect.getmodule(MODELS[name])
    return hashlib.sha256(inspect.getsource(module).encode()).hexdigest()[:16]
