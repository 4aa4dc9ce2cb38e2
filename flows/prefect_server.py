"""Prefect's temporary API server, as a `howto` command starts it, made to live and die with the command.

Without a configured server, Prefect runs one for the command (uvicorn in a child process) and stops it at
exit. Two ways that went wrong, measured on a demo pipeline:
- Ctrl-C at the terminal reaches the whole foreground process group, so the server died with the command's
  first KeyboardInterrupt; the flow then reported its crash to a dead API, retried for 214 s, and ended in
  httpx tracebacks. In a session of its own the server is out of the terminal's reach: the interrupted
  flow reports to it at once, and Prefect stops it at exit as usual.
- A SIGKILL of the command (the OOM killer) skipped that exit, and the server stayed, holding its port and
  220 MB, for good. Run through this module, it watches its parent and ends when the parent is gone.

`python -m flows.prefect_server UVICORN-ARGS...` runs uvicorn with that watch; `serve_in_own_session()`
makes Prefect start its server that way.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import runpy
import subprocess
import sys
import threading
import time
from types import ModuleType
from typing import Any

PARENT_POLL_S = 0.5
PARENT_ENV = "HOWTO_PREFECT_SERVER_PARENT"


SERVER_MODULE = "prefect.server.api.server"


def serve_in_own_session() -> None:
    """Make Prefect start its temporary server through this module, in a session of its own. Idempotent.

    Prefect's server module costs 1.5 s to import, which most commands never need: the patch is applied
    when Prefect itself imports it (to start the server), or now if it already has."""
    module = sys.modules.get(SERVER_MODULE)
    if module is not None:
        _patch(module)
    elif not any(isinstance(finder, _PatchOnImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _PatchOnImport())


def _patch(module: ModuleType) -> None:
    module.SubprocessASGIServer._run_uvicorn_command = _watched_uvicorn


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Finds Prefect's server module as usual, and patches it once it has run."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if name != SERVER_MODULE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def exec_module(module: ModuleType) -> None:
            load(module)
            _patch(module)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def _watched_uvicorn(self: Any) -> subprocess.Popen[Any]:
    """Prefect's SubprocessASGIServer._run_uvicorn_command (prefect 3, pinned), with uvicorn run through
    this module and `start_new_session`: the same arguments and environment otherwise."""
    import prefect
    from prefect.settings import get_current_settings

    server_env = {"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}
    return subprocess.Popen(
        args=[
            sys.executable,
            "-m",
            "flows.prefect_server",
            "--app-dir",
            str(prefect.__module_path__.parent),
            "--factory",
            "prefect.server.api.server:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "error",
            "--lifespan",
            "on",
        ],  # fmt: skip
        env={
            **os.environ,
            **server_env,
            **get_current_settings().to_environment_variables(exclude_unset=True),
            PARENT_ENV: str(os.getpid()),
        },
        start_new_session=True,
    )


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os._exit(0)  # the command is gone (its exit would have stopped us): nothing to flush


def main(argv: list[str]) -> None:
    # The command's pid as it started us: a command killed before this line runs has already handed us
    # to another parent, which os.getppid() would now name.
    parent = int(os.environ.pop(PARENT_ENV, "") or os.getppid())
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    sys.argv = ["uvicorn", *argv]
    runpy.run_module("uvicorn", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
