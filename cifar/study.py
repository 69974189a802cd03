"""The optimizer study: train one recipe with each optimizer over several seeds and compare.

Every run shares the model, data, epochs, batch size, weight decay, augmentation and schedule;
only the optimizer, its learning rate and the seed change. Learning rates default to
``cifar.optim.OPTIMIZERS`` (chosen by ``cifar lr-sweep``) unless the caller passes its own, for
example from a fresh sweep.
"""

from __future__ import annotations

import itertools
import logging
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from cifar.data import Cifar10
from cifar.errors import CifarError
from cifar.optim import OPTIMIZERS
from cifar.report import machine_info
from cifar.study_report import conclusion
from cifar.study_stats import band, rank, reachable_target, summarize_runs
from cifar.training import TrainConfig, train

log = logging.getLogger(__name__)

# Optimizers the study covers. "muon" is registered only when torch has torch.optim.Muon.
STUDY_OPTIMIZERS = ("sgd", "momentum", "adam", "adamw", "rmsprop", "muon")


class StudyError(CifarError):
    """An optimizer study request that cannot run: unknown optimizer, too few images, unwritable folder."""


def check_optimizers(names: Iterable[str]) -> tuple[str, ...]:
    """Return ``names`` in order without repeats. Raise StudyError for an unknown or missing name."""
    names = tuple(dict.fromkeys(names))
    if not names:
        raise StudyError(f"no optimizers given; choose from: {', '.join(OPTIMIZERS)}")
    for name in names:
        if name in OPTIMIZERS:
            continue
        if name == "muon":
            raise StudyError(
                f"optimizer 'muon' needs torch.optim.Muon, which torch {torch.__version__} does not have; "
                f"upgrade torch or leave muon out"
            )
        raise StudyError(f"unknown optimizer {name!r}; choose from: {', '.join(OPTIMIZERS)}")
    return names


def check_subset(subset: int | None, data: Cifar10) -> None:
    """Raise StudyError unless ``subset`` (a training image count, or None for all) fits ``data``."""
    if subset is None:
        return
    available = len(data.train_images)
    if subset < 1:
        raise StudyError(f"--subset must be at least 1, got {subset}")
    if subset > available:
        raise StudyError(
            f"--subset {subset} is more than the {available:,} training images in {data.source}; "
            f"pass --subset {available} or less"
        )


def prepare_out_dir(path: str | Path) -> Path:
    """Create the output folder and check that a file can be written there, before any training."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        raise StudyError(
            f"cannot write to the output folder {path}: {error.strerror or error}. "
            f"Pass --out with a writable folder."
        ) from error
    return path


def default_lr(name: str) -> float:
    return OPTIMIZERS[name].default_lr


@dataclass(frozen=True)
class StudyConfig:
    """Settings of one study. Each run takes ``base`` with its optimizer, lr and seed replaced."""

    base: TrainConfig
    optimizers: tuple[str, ...]
    seeds: tuple[int, ...] = (0, 1, 2)
    lrs: dict[str, float] = field(default_factory=dict)  # per optimizer; missing ones take the default
    target_train_loss: float | None = None  # None picks the lowest loss every optimizer reaches

    def __post_init__(self) -> None:
        object.__setattr__(self, "optimizers", check_optimizers(self.optimizers))
        if not self.seeds:
            raise StudyError("the study needs at least one seed")
        if self.target_train_loss is not None and not self.target_train_loss > 0:
            raise StudyError(f"--target-loss must be a positive loss, got {self.target_train_loss}")

    def lr(self, name: str) -> float:
        return self.lrs.get(name) or default_lr(name)

    def run_config(self, name: str, seed: int) -> TrainConfig:
        return self.base.replace(optimizer=name, lr=self.lr(name), seed=seed)


def run_study(config: StudyConfig, data: Cifar10, progress: bool = False) -> dict:
    """Train every optimizer with every seed on ``data`` and return the results document.

    The document keeps every run's full history under ``optimizers[name]["runs"]``, the figures of
    ``cifar.study_stats.summarize_runs`` under ``optimizers[name]["summary"]``, and the ranking.
    """
    check_subset(config.base.train_subset, data)
    started = time.perf_counter()
    runs: dict[str, list[dict]] = {name: [] for name in config.optimizers}
    plan = list(itertools.product(config.optimizers, config.seeds))

    for number, (name, seed) in enumerate(plan, start=1):
        log.info("run %d/%d: %s, lr %g, seed %d", number, len(plan), name, config.lr(name), seed)
        run_started = time.perf_counter()
        _, history = train(config.run_config(name, seed), data, progress=progress)
        wall_seconds = time.perf_counter() - run_started
        runs[name].append({"seed": seed, "wall_seconds": wall_seconds, "history": history})

    return study_document(config, data, runs, seconds=time.perf_counter() - started)


def study_document(config: StudyConfig, data: Cifar10, runs: dict[str, list[dict]], seconds: float) -> dict:
    """Summarize finished runs (per optimizer, one ``{"seed", "wall_seconds", "history"}`` per seed)."""
    mean_curves = {
        name: band([[row["train_loss"] for row in run["history"]] for run in name_runs])["mean"]
        for name, name_runs in runs.items()
    }
    target = config.target_train_loss or reachable_target(mean_curves)
    optimizers = {}
    for name, name_runs in runs.items():
        summary = summarize_runs([run["history"] for run in name_runs], [run["wall_seconds"] for run in name_runs],
                                 target)
        optimizers[name] = {"lr": config.lr(name), "runs": name_runs, "summary": summary}

    document = {
        "kind": "optimizer-study",
        "model": config.base.model,
        "epochs": config.base.epochs,
        "seeds": list(config.seeds),
        "target_train_loss": target,
        "target_source": "given" if config.target_train_loss else "lowest loss every optimizer's mean curve reaches",
        "recipe": {key: value for key, value in config.base.as_dict().items() if key not in ("optimizer", "lr", "seed")},
        "data": {
            "source": data.source,
            "fingerprint": data.fingerprint,
            "train_images": min(len(data.train_images), config.base.train_subset or len(data.train_images)),
            "test_images": len(data.test_images),
        },
        "optimizers": optimizers,
        "ranking": rank({name: entry["summary"] for name, entry in optimizers.items()}),
        "seconds": seconds,
        "machine": machine_info(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    document["conclusion"] = conclusion(document)
    return document


def seeds_from(count: int, first: int = 0) -> tuple[int, ...]:
    """Return ``count`` consecutive seeds starting at ``first``."""
    return tuple(range(first, first + count))
