"""One writer per output folder (``inception_v2.locking``)."""

import os
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


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_workers_die_with_their_parent(tmp_path):
    """A grandchild armed with die_with_parent(owner) exits once the owner is SIGKILLed."""
    code = (
        "import os, sys, time, multiprocessing as mp\n"
        "from inception_v2.procs import die_with_parent\n"
        "def work(owner):\n"
        "    die_with_parent(owner)\n"
        "    time.sleep(60)\n"
        "if __name__ == '__main__':\n"
        "    p = mp.get_context('spawn').Process(target=work, args=(os.getpid(),))\n"
        "    p.start()\n"
        "    print(p.pid, flush=True)\n"
        "    time.sleep(60)\n"
    )
    script = tmp_path / "owner.py"
    script.write_text(code)
    owner = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    worker = int(owner.stdout.readline())
    time.sleep(1.0)  # let the worker arm itself
    owner.kill()
    owner.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.kill(worker, 9)
    pytest.fail("the worker outlived its owner by 10 s")
