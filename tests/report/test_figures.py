import subprocess
import sys

SCRIPT = """
import sys
from pathlib import Path

import matplotlib

matplotlib.use("svg")
from inception_v2.report.figures import plot_confusion, plot_per_class_accuracy

out = Path(sys.argv[1])
plot_confusion([[2, 1], [0, 3]], ["cat", "dog"], out / "c.png", "confusion")
plot_per_class_accuracy(["cat", "dog"], [0.5, float("nan")], [2, 0], out / "p.png", "per class")
print(matplotlib.get_backend(), "matplotlib.pyplot" in sys.modules)
"""


def test_figures_are_drawn_without_switching_the_backend(tmp_path):
    """Drawing the figures leaves matplotlib's backend as the caller set it, and pyplot unloaded."""
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["svg", "False"]
    for name in ("c.png", "p.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
