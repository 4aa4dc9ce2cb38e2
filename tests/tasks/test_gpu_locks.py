"""Each CUDA run holds one GPU of its machine alone (tasks/gpu_limit.py): real lock files, real processes."""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from storage.private_temp import UnsafeTempFolder
from tasks.gpu_limit import default_lock_dir, gpu_slot, local_gpu, requested_index

HOLD = """
import sys, time
from pathlib import Path
from tasks.gpu_limit import local_gpu
with local_gpu(sys.argv[2].split(","), None, Path(sys.argv[1])) as index:
    print(index, flush=True)
    time.sleep(600)
"""


def test_runs_take_different_gpus_and_a_third_waits_for_one(tmp_path: Path) -> None:
    gpus = ["GPU-a", "GPU-b"]
    got: list[int] = []
    claimed = threading.Event()

    def third() -> None:
        with local_gpu(gpus, None, tmp_path, poll_s=0.02) as index:
            got.append(index)
            claimed.set()

    with local_gpu(gpus, None, tmp_path) as first:
        with local_gpu(gpus, None, tmp_path) as second:
            assert (first, second) == (0, 1)
            waiter = threading.Thread(target=third)
            waiter.start()
            assert not claimed.wait(0.3)  # both cards held: it waits
        waiter.join(10)  # the second run ended: its card goes to the waiting one
    assert got == [1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["GPU-a.lock", "GPU-b.lock"]


def test_a_gpu_asked_for_by_index_is_waited_for_even_when_another_is_free(tmp_path: Path) -> None:
    gpus = ["GPU-a", "GPU-b"]
    claimed = threading.Event()

    def wants_one() -> None:
        with local_gpu(gpus, 1, tmp_path, poll_s=0.02):
            claimed.set()

    with local_gpu(gpus, 1, tmp_path) as held:
        assert held == 1
        waiter = threading.Thread(target=wants_one)
        waiter.start()
        assert not claimed.wait(0.3)
    waiter.join(10)
    assert claimed.is_set()


def test_the_lock_follows_the_card_not_its_index_and_dies_with_its_process(tmp_path: Path) -> None:
    """Another process sees the cards in another order (CUDA_VISIBLE_DEVICES): the card it holds is
    still taken. When that process is killed, the kernel frees its card."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path), "GPU-x,GPU-y"],
        stdout=subprocess.PIPE, text=True, env=env, start_new_session=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "0"  # it holds GPU-x
        with local_gpu(["GPU-y", "GPU-x"], None, tmp_path) as index:
            assert index == 0  # GPU-y: first in this process's order, and free
        claimed = threading.Event()

        def wants_x() -> None:
            with local_gpu(["GPU-y", "GPU-x"], 1, tmp_path, poll_s=0.02):
                claimed.set()

        waiter = threading.Thread(target=wants_x)
        waiter.start()
        assert not claimed.wait(0.3)
        os.killpg(holder.pid, signal.SIGKILL)
        waiter.join(10)
        assert claimed.is_set()
    finally:
        if holder.poll() is None:
            os.killpg(holder.pid, signal.SIGKILL)
        holder.wait()


def test_bad_requests_are_refused(tmp_path: Path) -> None:
    assert requested_index("cuda") is None and requested_index("cuda:3") == 3
    with pytest.raises(ValueError, match="not a CUDA device"):
        requested_index("cuda:x")
    with pytest.raises(ValueError, match="no CUDA device is visible"):
        with local_gpu([], None, tmp_path):
            pass
    with pytest.raises(ValueError, match="cuda:2 asked for, but this process sees 2"):
        with local_gpu(["GPU-a", "GPU-b"], 2, tmp_path):
            pass


def test_cpu_work_passes_through_without_a_limit_or_a_lock(tmp_path: Path) -> None:
    def no_cuda_query() -> list[str]:
        raise AssertionError("CPU work asked which GPUs there are")

    with gpu_slot("cpu", no_cuda_query, "no-such-limit", tmp_path / "locks") as device:
        assert device == "cpu"
    assert not (tmp_path / "locks").exists()


# -- the shared lock folder: other users' links, hard links and folders ----------------------------------


def test_the_default_lock_folder_is_the_machines_not_this_sessions_temp_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs of two users (or two batch jobs) whose $TMPDIR differs (pam_tmpdir, Slurm) must see each
    other's locks: the default was howto-gpu-locks under $TMPDIR, one folder per user, and both took cuda:0."""
    import tempfile

    monkeypatch.delenv("HOWTO_GPU_LOCK_DIR", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)  # read $TMPDIR again
    assert tempfile.gettempdir() == str(tmp_path)
    assert default_lock_dir() == Path("/tmp/howto-gpu-locks")
    monkeypatch.setenv("HOWTO_GPU_LOCK_DIR", str(tmp_path / "locks"))
    assert default_lock_dir() == tmp_path / "locks"


def test_a_lock_folder_removed_while_a_run_waits_is_made_again(tmp_path: Path) -> None:
    """Its owner may remove it (a refusal advises it). The waiting run's next open of a lock file in it failed,
    was retried at once, and so on forever at full CPU, long after the card came free."""
    folder = tmp_path / "howto-gpu-locks"
    got: list[int] = []
    waiting = threading.Event()

    class Waiting(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "busy with other runs" in record.getMessage():
                waiting.set()

    def second() -> None:
        with local_gpu(["GPU-a"], None, folder, poll_s=0.02) as index:
            got.append(index)

    handler = Waiting()
    logging.getLogger("tasks.gpu_limit").addHandler(handler)
    try:
        with local_gpu(["GPU-a"], None, folder):
            # A daemon: a waiter spinning (the old code) must not keep pytest from exiting.
            waiter = threading.Thread(target=second, daemon=True)
            waiter.start()
            assert waiting.wait(30)  # past its first round, the folder checked
            shutil.rmtree(folder)
        waiter.join(30)
    finally:
        logging.getLogger("tasks.gpu_limit").removeHandler(handler)
    assert got == [0]
    assert stat.S_IMODE(os.lstat(folder).st_mode) == 0o1777 and (folder / "GPU-a.lock").is_file()


def test_the_lock_folder_is_made_like_tmp_world_writable_and_sticky(tmp_path: Path) -> None:
    """Every user's GPU runs share it, and none may delete or replace another's lock files."""
    folder = tmp_path / "shared" / "howto-gpu-locks"
    with local_gpu(["GPU-a"], None, folder) as index:
        assert index == 0
    assert stat.S_IMODE(os.lstat(folder).st_mode) == 0o1777


def test_a_link_planted_as_a_lock_file_is_refused_and_its_target_left_alone(tmp_path: Path) -> None:
    victim = tmp_path / "notes.txt"  # a file of the user whose run takes the lock
    victim.write_text("my notes\n")
    folder = tmp_path / "locks"
    folder.mkdir()
    (folder / "GPU-a.lock").symlink_to(victim)
    with pytest.raises(UnsafeTempFolder, match=r"GPU-a\.lock: a symbolic link, not followed"):
        with local_gpu(["GPU-a"], None, folder):
            pass
    assert victim.read_text() == "my notes\n"  # the old open() followed it, emptied it and wrote a pid in


def test_a_hard_link_planted_as_a_lock_file_locks_but_is_never_written(tmp_path: Path) -> None:
    victim = tmp_path / "notes.txt"
    victim.write_text("my notes, longer than a pid line\n")
    folder = tmp_path / "locks"
    folder.mkdir()
    os.link(victim, folder / "GPU-a.lock")
    with local_gpu(["GPU-a"], None, folder) as index:
        assert index == 0
    assert victim.read_text() == "my notes, longer than a pid line\n"


def test_a_lock_file_of_ours_gets_the_pid_without_being_truncated(tmp_path: Path) -> None:
    with local_gpu(["GPU-a"], None, tmp_path):
        assert (tmp_path / "GPU-a.lock").read_text() == f"pid {os.getpid():<10}\n"
    (tmp_path / "GPU-a.lock").write_text("pid 1         \nand more\n")
    with local_gpu(["GPU-a"], None, tmp_path):
        assert (tmp_path / "GPU-a.lock").read_text() == f"pid {os.getpid():<10}\nand more\n"


@pytest.mark.parametrize("kind", ["a FIFO", "a folder", "a socket"])
def test_a_non_file_planted_as_a_lock_file_is_refused_without_waiting(tmp_path: Path, kind: str) -> None:
    """Anyone may make any of them in the shared folder; a folder there was an IsADirectoryError's traceback,
    a UNIX socket bound there an OSError's (ENXIO, "No such device or address")."""
    with contextlib.ExitStack() as planted:
        if kind == "a FIFO":
            os.mkfifo(tmp_path / "GPU-a.lock")
        elif kind == "a folder":
            (tmp_path / "GPU-a.lock").mkdir()
        else:
            bound = planted.enter_context(socket.socket(socket.AF_UNIX))
            bound.bind(str(tmp_path / "GPU-a.lock"))
        with pytest.raises(UnsafeTempFolder, match=r"GPU-a\.lock: not a regular file"):
            with local_gpu(["GPU-a"], None, tmp_path):
                pass


@pytest.mark.parametrize(
    "kind", ["ours, open to all, holding other files", "another user's, open to all", "a link"]
)
def test_a_lock_folder_others_could_empty_is_refused(tmp_path: Path, kind: str) -> None:
    folder = tmp_path / "howto-gpu-locks"
    if kind == "a link":
        (tmp_path / "elsewhere").mkdir()
        folder.symlink_to(tmp_path / "elsewhere")
        says = "a symbolic link"
    else:
        folder.mkdir()
        folder.chmod(0o777)
        if kind.startswith("ours"):  # a folder in use ($HOWTO_GPU_LOCK_DIR set to it): never opened up
            (folder / "notes.txt").write_text("mine\n")
            says = r"writable by others but not sticky \(mode 777\).*: chmod 1777 it \(or remove it\)"
        else:
            _needs_root()
            os.chown(folder, NOBODY, NOBODY)
            name = pwd.getpwuid(NOBODY).pw_name
            says = rf"writable by others but not sticky \(mode 777\).*: ask {name} or root to chmod 1777 it"
    with pytest.raises(UnsafeTempFolder, match=f"GPU lock folder {folder}: {says}"):
        with local_gpu(["GPU-a"], None, folder):
            pass
    assert not (tmp_path / "elsewhere" / "GPU-a.lock").exists()


# -- a lock folder an older version made with the umask (0755) -----------------------------------------------

NOBODY = 65534


def _needs_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: a folder of another user, or a process of one, is made with chown/setuid")


@pytest.mark.parametrize("mode", [0o755, 0o777, 0o700], ids=oct)
def test_our_lock_folder_made_with_the_umask_is_made_1777(
    tmp_path: Path, mode: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Older howto made the folder with the umask (0755): other users' runs could not make their lock files
    in it. Ours, and holding only locks, it is made 1777, and the log says so."""
    folder = tmp_path / "howto-gpu-locks"
    folder.mkdir()
    (folder / "GPU-a.lock").write_text("pid 1\n")
    folder.chmod(mode)
    with caplog.at_level(logging.WARNING, logger="tasks.gpu_limit"):
        with local_gpu(["GPU-a", "GPU-b"], None, folder) as index:
            assert index == 0
    assert stat.S_IMODE(os.lstat(folder).st_mode) == 0o1777
    assert f"GPU lock folder {folder}: mode {mode:o} made 1777" in caplog.text


def test_a_folder_of_ours_holding_other_files_is_never_opened_to_all(tmp_path: Path) -> None:
    folder = tmp_path / "work"  # $HOWTO_GPU_LOCK_DIR pointed at a folder in use
    folder.mkdir()
    (folder / "notes.txt").write_text("mine\n")
    folder.chmod(0o700)
    with local_gpu(["GPU-a"], None, folder) as index:
        assert index == 0
    assert stat.S_IMODE(os.lstat(folder).st_mode) == 0o700


def _lock_as_nobody(folder: Path) -> str:
    """What local_gpu says in a process of another user (nobody) that locks a GPU in `folder`."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: become nobody, try, report; leave without running the parent's cleanup
        try:
            os.close(read)
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            try:
                with local_gpu(["GPU-b"], None, folder):
                    said = "locked"
            except Exception as exc:
                said = f"{type(exc).__name__}: {exc}"
            os.write(write, said.encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        said = pipe.read()
    os.waitpid(pid, 0)
    return said


def test_another_users_folder_made_with_the_umask_says_what_to_do() -> None:
    """A folder of root made 0755 by an older version: before, another user's run stopped with a traceback
    (PermissionError on the lock file it could not create); now one line says whom to ask for what."""
    _needs_root()
    base = Path(tempfile.mkdtemp(prefix="howto-test-gpu-"))
    try:
        base.chmod(0o755)  # nobody may look in, as in /tmp
        folder = base / "howto-gpu-locks"
        folder.mkdir(mode=0o755)
        (folder / "GPU-a.lock").write_text("pid 1\n")  # root's lock (root's runs took a card)
        folder.chmod(0o755)
        said = _lock_as_nobody(folder)
        assert said == (
            f"UnsafeTempFolder: GPU lock folder {folder}: root's (mode 755), so this user's runs cannot make"
            " their lock files in it: ask root to chmod 1777 it (or to remove it: the next run makes it 1777),"
            " then run again"
        )
        assert stat.S_IMODE(os.lstat(folder).st_mode) == 0o755  # not ours to change
        with local_gpu(["GPU-b"], None, folder):  # root's own run: its folder, made 1777
            pass
        assert stat.S_IMODE(os.lstat(folder).st_mode) == 0o1777
        assert _lock_as_nobody(folder) == "locked"
    finally:
        shutil.rmtree(base, ignore_errors=True)
