"""Reports of finished runs and evaluations: the comparison table (:mod:`~inception_v2.report.compare`)
and the figures (:mod:`~inception_v2.report.figures`, matplotlib)."""

from inception_v2.report.compare import Run, compare, load_run

__all__ = ["Run", "compare", "load_run"]
