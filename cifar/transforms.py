"""Whole-batch tensor transforms: normalization, training augmentation and synthetic data."""

from __future__ import annotations

import torch

from cifar.data import Cifar10

# Per-channel mean and std of the 50,000 official training images, pixels scaled to [0, 1].
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CROP_PADDING = 4


def normalize(images: torch.Tensor) -> torch.Tensor:
    """Map uint8 images (N, 3, 32, 32) to float32 with CIFAR-10's mean and std."""
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    return (images.float().div_(255) - mean) / std


def augment(
    images: torch.Tensor,
    generator: torch.Generator,
    padding: int = CROP_PADDING,
    pad_mode: str = "constant",
    flips: torch.Tensor | None = None,
) -> torch.Tensor:
    """Random crop with ``padding`` pixels of padding and horizontal flip, for a whole batch.

    ``pad_mode`` is "constant" (zeros) or "reflect" (mirror the border). One gather does every
    crop: each image gets its own row and column offsets in the padded batch, so there is no
    per-image Python loop. ``flips`` is a bool tensor (N,) of the images to mirror; when it is
    None, each image is mirrored with probability 1/2.
    """
    n, c, h, w = images.shape
    padded = torch.nn.functional.pad(images, (padding,) * 4, mode=pad_mode)  # (N, C, H+2p, W+2p)

    shift_y = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    shift_x = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    rows = (shift_y[:, None] + torch.arange(h))[:, None, :, None]  # (N, 1, H, 1)
    cols = (shift_x[:, None] + torch.arange(w))[:, None, None, :]  # (N, 1, 1, W)
    batch_index = torch.arange(n)[:, None, None, None]
    channel_index = torch.arange(c)[None, :, None, None]
    cropped = padded[batch_index, channel_index, rows, cols]  # (N, C, H, W)

    if flips is None:
        flips = torch.rand(n, generator=generator) < 0.5
    return torch.where(flips[:, None, None, None], cropped.flip(-1), cropped)


def synthetic_cifar10(train_count: int = 512, test_count: int = 256, seed: int = 0) -> Cifar10:
    """Build a small learnable stand-in for CIFAR-10 with the same shapes and dtypes.

    Each class has its own smooth colour pattern. Each image is its class pattern plus noise and a
    random brightness shift, so a small CNN learns it in a few epochs. Same seed, same bytes.
    """
    generator = torch.Generator().manual_seed(seed)
    # 10 class patterns drawn at 8x8 and upsampled, so they are low-frequency: (10, 3, 32, 32).
    coarse = torch.rand(10, 3, 8, 8, generator=generator)
    patterns = torch.nn.functional.interpolate(coarse, size=(32, 32), mode="bilinear", align_corners=False)

    def draw(count: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.arange(count) % 10
        labels = labels[torch.randperm(count, generator=generator)]
        noise = torch.randn(count, 3, 32, 32, generator=generator) * 0.15
        brightness = torch.rand(count, 1, 1, 1, generator=generator) * 0.2 - 0.1
        images = (patterns[labels] + noise + brightness).clamp(0, 1)
        return (images * 255).round().to(torch.uint8), labels

    train_images, train_labels = draw(train_count)
    test_images, test_labels = draw(test_count)
    return Cifar10(
        train_images,
        train_labels,
        test_images,
        test_labels,
        fingerprint=f"synthetic-{seed}-{train_count}-{test_count}",
        source=f"synthetic(seed={seed})",
    )
