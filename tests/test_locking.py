"""One writer per output folder (``inception_v2.locking``)."""

import subprocess
import sys
import time

import pytest

from inception_v2.errors import LockedError
from inception_v2.locking import exclusive

HOLD = (
    "import sys, time\n"
    "from inception_v2.locking import exclusive\n"
    "with exclusive(sys.argv[1], 'run directory'):\n"
    "    print('locked', flush=True)\n"
    "    time.sleep(60)\n"
)


def _holder(folder):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_writer_fails_at_once_naming_the_holder(tmp_path):
    proc = _holder(tmp_path / "run")
    try:
        start = time.monotonic()
        with pytest.raises(LockedError) as e:
            with exclusive(tmp_path / "run", "run directory"):
                pass
        assert time.monotonic() - start < 5
        assert f"process {proc.pid}" in str(e.value) and "run directory" in str(e.value)
    finally:
        proc.kill()
        proc.wait()


def test_the_lock_dies_with_its_holder(tmp_path):
    proc = _holder(tmp_path / "run")
    proc.kill()  # SIGKILL: no cleanup code runs
    proc.wait()
    with exclusive(tmp_path / "run"):
        assert (tmp_path / "run" / ".lock").is_file()
    with exclusive(tmp_path / "run"):  # released on exit, too
        pass


def test_a_file_is_not_a_folder(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match="not a folder"):
        with exclusive(tmp_path / "f"):
            pass
