"""Processes started by a command die with it (``inception_v2.procs``): nothing is left running
after a hard kill."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import pytest

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux's /proc and prctl")


def session_members(sid: int) -> List[int]:
    """The pids of every live (not zombie) process whose session id is ``sid``."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, session = fields[0], int(fields[3])
        if session == sid and state != "Z":
            pids.append(int(stat.parent.name))
    return pids


def wait_until_gone(sid: int, seconds: float = 10.0) -> List[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        left = session_members(sid)
        if not left:
            return []
        time.sleep(0.2)
    return session_members(sid)


@linux_only
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


@linux_only
def test_a_killed_train_leaves_no_loader_worker(prepared_sample, tmp_path):
    """SIGKILL a train whose DataLoader has worker processes: within seconds no process of its
    session is left, and a rerun with --resume on the same folder works (the lock died too)."""
    out = tmp_path / "run"
    base = [
        sys.executable,
        "-m",
        "inception_v2",
        "train",
        "--model",
        "googlenet_bn",
        "--data",
        str(prepared_sample),
        "--out",
        str(out),
        "--batch-size",
        "8",
        "--image-size",
        "32",
        "--device",
        "cpu",
        "--no-progress",
    ]
    argv = base + ["--epochs", "50", "--workers", "2"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        argv, env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while len(session_members(proc.pid)) < 3:  # the train process and its two loader workers
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"no loader workers appeared: {proc.communicate()[0][-2000:]}")
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        left = wait_until_gone(proc.pid)
        assert not left, f"processes of the killed train still alive: {left}"
    finally:
        for pid in session_members(proc.pid):
            os.kill(pid, signal.SIGKILL)
    rerun = subprocess.run(
        base + ["--epochs", "1", "--workers", "0", "--resume"], env=env, capture_output=True, text=True, timeout=300
    )
    assert rerun.returncode == 0, rerun.stderr
