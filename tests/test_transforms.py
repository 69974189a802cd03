import torch

from cifar.transforms import CIFAR10_MEAN, CIFAR10_STD, CROP_PADDING, augment, normalize, synthetic_cifar10


def test_normalization_constants_pinned():
    assert CIFAR10_MEAN == (0.4914, 0.4822, 0.4465)
    assert CIFAR10_STD == (0.2470, 0.2435, 0.2616)


def test_normalize_per_channel():
    images = torch.zeros(1, 3, 32, 32, dtype=torch.uint8)
    images[0, 1] = 255
    out = normalize(images)
    assert out.dtype == torch.float32
    assert torch.allclose(out[0, 0, 0, 0], torch.tensor(-0.4914 / 0.2470))
    assert torch.allclose(out[0, 1, 5, 5], torch.tensor((1 - 0.4822) / 0.2435))
    assert torch.allclose(out[0, 2, 31, 31], torch.tensor(-0.4465 / 0.2616))


def test_augment_is_a_shifted_window_or_its_mirror():
    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    out = augment(images, torch.Generator().manual_seed(1))
    assert out.shape == images.shape
    assert out.dtype == torch.uint8

    padded = torch.nn.functional.pad(images, (CROP_PADDING,) * 4)
    for i in range(len(images)):
        windows = [padded[i, :, y : y + 32, x : x + 32] for y in range(9) for x in range(9)]
        assert any(torch.equal(out[i], w) or torch.equal(out[i], w.flip(-1)) for w in windows), i


def test_augment_reflect_padding_stays_inside_the_image():
    images = torch.randint(0, 256, (32, 3, 32, 32), dtype=torch.uint8)
    out = augment(images, torch.Generator().manual_seed(2), padding=2, pad_mode="reflect")
    padded = torch.nn.functional.pad(images, (2,) * 4, mode="reflect")
    for i in range(len(images)):
        windows = [padded[i, :, y : y + 32, x : x + 32] for y in range(5) for x in range(5)]
        assert any(torch.equal(out[i], w) or torch.equal(out[i], w.flip(-1)) for w in windows), i
    # Reflection copies pixels from inside the image, so no zero rows or columns appear.
    assert (out.amax(dim=(1, 2)) > 0).all()  # no all-zero column
    assert (out.amax(dim=(1, 3)) > 0).all()  # no all-zero row


def test_augment_flips_about_half():
    images = torch.arange(32, dtype=torch.uint8).repeat(1000, 3, 32, 1)
    out = augment(images, torch.Generator().manual_seed(0))
    # A column ramp is decreasing after a flip, wherever the crop lands.
    flipped = (out[:, 0, 16, 10] > out[:, 0, 16, 20]).float().mean()
    assert 0.4 < flipped < 0.6


def test_augment_mirrors_exactly_the_given_images():
    images = torch.arange(32, dtype=torch.uint8).repeat(64, 3, 32, 1)
    flips = torch.arange(64) % 3 == 0
    out = augment(images, torch.Generator().manual_seed(0), flips=flips)
    assert torch.equal(out[:, 0, 16, 10] > out[:, 0, 16, 20], flips)


def test_augment_deterministic_by_seed():
    images = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    first = augment(images, torch.Generator().manual_seed(5))
    second = augment(images, torch.Generator().manual_seed(5))
    other = augment(images, torch.Generator().manual_seed(6))
    assert torch.equal(first, second)
    assert not torch.equal(first, other)


def test_synthetic_shapes_and_determinism():
    first = synthetic_cifar10(train_count=40, test_count=20, seed=3)
    second = synthetic_cifar10(train_count=40, test_count=20, seed=3)
    assert first.train_images.shape == (40, 3, 32, 32)
    assert first.train_images.dtype == torch.uint8
    assert first.test_labels.dtype == torch.int64
    assert torch.equal(first.train_images, second.train_images)
    assert sorted(first.train_labels.unique().tolist()) == list(range(10))


def test_synthetic_classes_are_separable():
    data = synthetic_cifar10(train_count=500, test_count=200, seed=0)
    # Nearest class mean on raw pixels already separates the classes well.
    means = torch.stack([data.train_images[data.train_labels == k].float().mean(0) for k in range(10)])
    distances = torch.cdist(data.test_images.float().flatten(1), means.flatten(1))
    accuracy = (distances.argmin(1) == data.test_labels).float().mean()
    assert accuracy > 0.9
