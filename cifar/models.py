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


def _batch_norm(channels: int) -> nn.BatchNorm2d:
    """Build a BatchNorm whose scale stays fixed at 1, so that only its shift is learned.

    A momentum of 0.4 makes the running statistics follow recent batches, which suits short recipes.
    """
    norm = nn.BatchNorm2d(channels, momentum=0.4)
    norm.weight.requires_grad_(False)
    return norm


def _conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    """Build a 3x3 conv whose first filters start as the identity on the input channels.

    The other filters keep torch's random init. Starting near the identity lets the signal pass
    through a freshly built net unchanged, so the short recipe makes progress from its first steps.
    """
    conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
    with torch.no_grad():
        nn.init.dirac_(conv.weight[: min(in_channels, out_channels)])
    return conv


class ResidualGroup(nn.Module):
    """Conv, 2x2 max-pool, BatchNorm, GELU, then a residual conv-BN-GELU at the pooled size.

    Pooling right after the first conv makes the second conv run at a quarter of the pixels, which
    is where most of the speed comes from.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_channels, out_channels)
        self.bn1 = _batch_norm(out_channels)
        self.conv2 = _conv3x3(out_channels, out_channels)
        self.bn2 = _batch_norm(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.bn1(F.max_pool2d(self.conv1(x), 2)))
        return x + F.gelu(self.bn2(self.conv2(x)))


WHITENING_PATCH = 2  # the stem's kernel size: a 2x2 patch of 3 channels has 12 dimensions


class ResNet(nn.Module):
    """A compact residual net for CIFAR-10: a whitening stem and three pooled residual groups.

    The stem is a fixed 2x2 conv that ``init_whitening`` sets from the training data before
    training. It decorrelates the 12 dimensions of each 2x2 patch and keeps each direction with
    both signs, which gives 24 channels. Only its bias is learned. Spatial sizes are
    31 -> 15 -> 7 -> 3, then a global max-pool.

    In eval mode the net also runs the mirror image of every input and returns the mean of the
    two logits. This doubles the inference cost and adds almost a point of top-1 (README.md has
    the figures). Training flips half the images each epoch, so the net has learned both orientations.
    """

    def __init__(self, widths: tuple[int, int, int] = (64, 256, 256), mirror_average: bool = True) -> None:
        super().__init__()
        stem_width = 2 * 3 * WHITENING_PATCH**2
        self.stem = nn.Conv2d(3, stem_width, WHITENING_PATCH)
        self.stem.weight.requires_grad_(False)
        self.group1 = ResidualGroup(stem_width, widths[0])
        self.group2 = ResidualGroup(widths[0], widths[1])
        self.group3 = ResidualGroup(widths[1], widths[2])
        self.head = nn.Linear(widths[2], NUM_CLASSES, bias=False)
        self.logit_scale = 0.125
        self.mirror_average = mirror_average

    @torch.no_grad()
    def init_whitening(self, images: torch.Tensor, eps: float = 5e-4) -> None:
        """Set the stem from normalized training ``images`` (N, 3, 32, 32), float32.

        Each filter is an eigenvector of the 2x2-patch covariance divided by the square root of
        its eigenvalue plus ``eps``, so the stem's outputs are close to uncorrelated, with unit
        variance.
        """
        patches = F.unfold(images.float(), WHITENING_PATCH).transpose(1, 2).reshape(-1, self.stem.weight[0].numel())
        covariance = torch.cov(patches.T.double())
        eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
        filters = (eigenvectors.T / torch.sqrt(eigenvalues[:, None] + eps)).float()
        filters = filters.reshape(-1, *self.stem.weight.shape[1:])
        self.stem.weight.copy_(torch.cat([filters, -filters]))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.stem(x))  # (N, 24, 31, 31)
        x = self.group3(self.group2(self.group1(x)))  # (N, 256, 3, 3)
        return torch.amax(x, dim=(2, 3))  # global max-pool: (N, 256)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training or not self.mirror_average:
            # Max-pooled features are large, so unscaled logits start far from uniform and the
            # first steps diverge at the recipe's learning rate. A fixed 1/8 keeps them small.
            return self.head(self.features(x)) * self.logit_scale
        both = self.head(self.features(torch.cat([x, x.flip(-1)]))) * self.logit_scale
        # unflatten keeps the batch size symbolic, so a traced or exported graph takes any batch.
        return both.unflatten(0, (2, -1)).mean(0)


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
