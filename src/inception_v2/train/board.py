"""TensorBoard event files of a run (``train --tensorboard``), through
:class:`torch.utils.tensorboard.SummaryWriter`.

The events go into the run directory itself, so ``tensorboard --logdir runs`` shows one run per
run directory. Written by rank 0 only:

* ``train/loss``, ``train/lr``, ``train/images_per_s`` — every ``log_every`` optimizer steps;
  the loss is rank 0's mean over those steps;
* ``epoch/<column>`` — every column of ``metrics.csv`` after each epoch.

The x axis of every scalar is the number of optimizer steps done (an epoch's scalars sit at its
last step). A resumed run first drops the events written after the step it resumes from
(``purge_step``), so a killed attempt leaves no stray points. The ``tensorboard`` package is an
optional extra (``pip install 'inception-v2[tensorboard]'``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from inception_v2.errors import UsageError


def summary_writer_class():
    """:class:`torch.utils.tensorboard.SummaryWriter`, or a :class:`UsageError` saying how to
    install tensorboard (checked before a run starts)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise UsageError(
            "--tensorboard needs the tensorboard package: pip install 'inception-v2[tensorboard]' "
            "(or pip install tensorboard)"
        ) from None
    return SummaryWriter


class TensorBoardLog:
    """The scalars of one run; :meth:`close` when done."""

    def __init__(self, run_dir: Path, purge_step: int = 0) -> None:
        """``purge_step``: drop the events from this step on (a resumed run's first step)."""
        self.writer = summary_writer_class()(log_dir=str(run_dir), purge_step=purge_step or None)

    def train_point(self, step: int, loss: float, lr: float, images_per_s: float) -> None:
        self.writer.add_scalar("train/loss", loss, step)
        self.writer.add_scalar("train/lr", lr, step)
        self.writer.add_scalar("train/images_per_s", images_per_s, step)

    def epoch(self, step: int, row: Mapping[str, float]) -> None:
        for key, value in row.items():
            if key != "epoch" and value == value:  # NaN: a split the data set does not have
                self.writer.add_scalar(f"epoch/{key}", value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
