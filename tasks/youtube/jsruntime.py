"""The JavaScript runtime yt-dlp needs for YouTube's player challenges: the deno binary that the `deno`
PyPI package ships (found from Python, not on PATH), and an offline check that it runs the EJS scripts."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass

RUNTIMES = ("deno", "node", "bun", "quickjs")

# The options yt-dlp's own deno challenge provider runs with (no network, no npm, no prompts).
_DENO_OPTIONS = [
    "--ext=js", "--no-code-cache", "--no-prompt", "--no-remote", "--no-lock",
    "--node-modules-dir=none", "--no-config", "--no-npm", "--cached-only",
]  # fmt: skip


def bundled_deno() -> str | None:
    """The deno executable installed by the `deno` package (the project depends on it); None without it."""
    try:
        import deno

        return str(deno.find_deno_bin())
    except (ImportError, FileNotFoundError):
        return None


def js_runtimes_param(runtime: str, path: str | None) -> dict[str, dict[str, str]]:
    """yt-dlp's `js_runtimes` option: `{runtime: {"path": ...}}`; deno without a path is the bundled one,
    others without a path are looked up by yt-dlp on PATH."""
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown JS runtime {runtime!r}: one of {', '.join(RUNTIMES)}")
    if path is None and runtime == "deno":
        path = bundled_deno()
    return {runtime: {"path": path} if path else {}}


@dataclass(frozen=True)
class RuntimeReport:
    """What yt-dlp sees of the configured runtime, and whether it ran the challenge solver scripts."""

    name: str
    path: str | None
    version: str | None  # None: yt-dlp could not run it
    supported: bool  # recent enough for yt-dlp's challenge solver
    ejs_version: str | None  # yt-dlp-ejs scripts installed (None: missing)
    ejs_expected: str  # the script version this yt-dlp wants
    ejs_ok: bool  # scripts present, version and hashes as yt-dlp expects
    solver_ran: bool  # the runtime loaded the scripts and defined the solver
    detail: str = ""


def runtime_report(runtime: str, path: str | None, timeout_s: float = 20.0) -> RuntimeReport:
    """Ask yt-dlp what it makes of the runtime (its own version probe), check the EJS scripts as yt-dlp
    would (version and hashes), then have deno load them and report the solver entry point. Offline."""
    import hashlib

    from yt_dlp import YoutubeDL
    from yt_dlp.extractor.youtube.jsc._builtin import vendor

    params = js_runtimes_param(runtime, path)
    with YoutubeDL({"quiet": True, "no_warnings": True, "js_runtimes": params}, auto_init=False) as ydl:
        found = ydl._js_runtimes.get(runtime)  # what yt-dlp's challenge providers consult
        info = found.info if found is not None else None
    resolved = info.path if info is not None else params[runtime].get("path")
    try:
        import yt_dlp_ejs.yt.solver as solver
        from yt_dlp_ejs import version as ejs_version
    except ImportError:
        lib = core = ejs_version = None
    else:
        lib, core = solver.lib(), solver.core()
    ejs_ok = bool(
        ejs_version
        and lib is not None
        and core is not None
        and ejs_version.split(".")[:2] == vendor.VERSION.split(".")[:2]
        and hashlib.sha3_512(lib.encode()).hexdigest() == vendor.HASHES["yt.solver.lib.min.js"]
        and hashlib.sha3_512(core.encode()).hexdigest() == vendor.HASHES["yt.solver.core.min.js"]
    )
    ran, detail = False, ""
    if info is not None and lib is not None and core is not None and runtime == "deno":
        ran, detail = _deno_loads_solver(info.path, lib, core, timeout_s)
    return RuntimeReport(
        name=runtime,
        path=resolved,
        version=info.version if info is not None else None,
        supported=bool(info and info.supported),
        ejs_version=ejs_version,
        ejs_expected=vendor.VERSION,
        ejs_ok=ejs_ok,
        solver_ran=ran,
        detail=detail,
    )


def _deno_loads_solver(deno: str, lib: str, core: str, timeout_s: float) -> tuple[bool, str]:
    """Run the solver scripts under deno as yt-dlp does (stdin, same sandbox flags), without a player."""
    script = (
        f"{lib}\nObject.assign(globalThis, lib);\n{core}\n"
        "console.log(JSON.stringify({solver: typeof jsc}));\n"
    )
    try:
        done = subprocess.run(
            [deno, "run", *_DENO_OPTIONS, "-"],
            input=script,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"{type(exc).__name__}: {exc}"
    try:
        out = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return False, (done.stderr.strip().splitlines() or [f"deno exited with {done.returncode}"])[-1][:300]
    return out.get("solver") == "function", f"solver entry point: {out.get('solver')}"
