import json
import logging

import numpy as np
import pytest

import cifar.pipeline
from cifar.bench_artifacts import QUICK_EPOCHS, BenchArtifacts, bench_recipe, recipe_label
from cifar.bench_parity import AGREEMENT_IMAGES
from cifar.cache import Cache
from cifar.models import MODELS
from cifar.training import TrainConfig, default_config


@pytest.fixture
def artifacts(synthetic, tmp_path):
    recipes = {"tutorial": TrainConfig(model="tutorial", epochs=1, batch_size=64)}
    return BenchArtifacts(Cache(tmp_path / "cache"), synthetic, recipes)


@pytest.mark.parametrize("model", list(MODELS))
def test_quick_recipe_keeps_all_but_epochs(model: str):
    full = default_config(model)
    quick = bench_recipe(model, full=False)

    assert bench_recipe(model, full=True) == full
    assert quick.epochs == QUICK_EPOCHS[model] < full.epochs
    assert quick.replace(epochs=full.epochs) == full


def test_recipe_label():
    assert recipe_label(default_config("resnet")) == "full"
    assert recipe_label(bench_recipe("resnet", full=False)) == "quick"
    assert recipe_label(default_config("resnet").replace(seed=3)) == "custom"


def test_checkpoint_trained_once_per_cache(artifacts, synthetic, monkeypatch):
    trainings = []
    original = cifar.pipeline.train
    monkeypatch.setattr(cifar.pipeline, "train", lambda *a, **k: trainings.append(1) or original(*a, **k))

    first = artifacts.checkpoint("tutorial")
    again = BenchArtifacts(artifacts.cache, synthetic, artifacts.recipes).checkpoint("tutorial")

    assert first == again
    assert len(trainings) == 1
    assert [event.built for event in artifacts.events] == [True]


def test_source_per_backend(artifacts):
    checkpoint = artifacts.checkpoint("tutorial")

    assert artifacts.source("tutorial", "eager") == checkpoint
    assert artifacts.source("tutorial", "torchscript").name.endswith(".torchscript.pt")
    with pytest.raises(ValueError, match="unknown backend 'tensorrt'; choose from: eager"):
        artifacts.source("tutorial", "tensorrt")


def test_unknown_model_names_recipes(artifacts):
    with pytest.raises(ValueError, match="no training recipe for model 'resnet'; recipes exist for: tutorial"):
        artifacts.checkpoint("resnet")


def test_test_top1_cached_beside_artifact(artifacts, synthetic):
    figure = artifacts.test_top1("tutorial", "torchscript")

    (path,) = artifacts.source("tutorial", "torchscript").parent.glob("*.torchscript-*.top1.json")
    document = json.loads(path.read_text())
    assert document["top1"] == figure
    assert document["test_images"] == len(synthetic.test_images)
    assert document["data_fingerprint"] == synthetic.fingerprint
    again = BenchArtifacts(artifacts.cache, synthetic, artifacts.recipes)
    assert again.test_top1("tutorial", "torchscript") == figure
    assert [event.built for event in again.events if event.artifact == "torchscript top-1"] == [False]


def test_corrupt_top1_file_rebuilt_with_one_warning(artifacts, synthetic, caplog):
    figure = artifacts.test_top1("tutorial", "eager")
    (path,) = artifacts.checkpoint("tutorial").parent.glob("*.eager-*.top1.json")
    path.write_text('{"top1": 7}')

    with caplog.at_level(logging.WARNING, logger="cifar"):
        again = BenchArtifacts(artifacts.cache, synthetic, artifacts.recipes).test_top1("tutorial", "eager")

    assert again == figure
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "is corrupt (top1 is 7, expected a fraction between 0 and 1)" in warnings[0]


def test_agreement_of_eager_with_itself(artifacts, synthetic):
    figures = artifacts.agreement("tutorial", "eager")

    assert figures == {"top1_agreement": 1.0, "max_abs_logit_diff": 0.0,
                       "images": min(AGREEMENT_IMAGES, len(synthetic.test_images))}


def test_batch_repeats_small_test_set(artifacts, synthetic):
    images = artifacts.batch(len(synthetic.test_images) + 3)

    assert images.shape == (len(synthetic.test_images) + 3, 3, 32, 32)
    assert images.dtype == np.float32
    assert images.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(images[-3:], images[:3])
