"""parse_article in a child process under a time and a memory limit: some markup makes the parse itself blow up.

The page comes from the network (a broken mirror, a proxy's error page, a hostile site) and lexbor's tree
builder follows the HTML5 algorithm, whose cost is not linear in the page. Measured on this 2-core machine
(README, wikiHow): 200,000 nested <div>s (2.4 MB) take ~124 s, because each
start tag checks the whole stack of open elements; 4,000 `<div><b c=N></div>` (80 KB) take ~10 s and 6 GB,
because each <b> re-creates every formatting element the </div>s closed (the "active formatting elements"),
so the tree grows as the square of the page, at a nesting depth of 2 in the source. A pre-scan of the source
cannot bound the second (it would have to re-implement the tree builder), and our selectors cannot make the
parse faster. So the parse runs where it can be stopped: a child process, killed past `base_s + s_per_mb` per
MB of the page, whose address space is capped (lexbor then fails cleanly). The child is started once per
parser (~0.8 s here, imports included) and serves every page of a shard; a page costs 2-7 ms more than
in-process (pickling and the pipe), against the 1 s the rate limiter puts between requests. Our own walk of
the tree is not the slow part: its selectors took under 0.2 s on 100k nested <div>s whose parse took 146 s.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import resource
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

from tasks.wikihow.parser import Article, ParseError

# A real article page (~0.4 MB) parses in ~0.1 s here and a 20 MB page of real articles (tasks.max_response_mb)
# in ~6 s: 2 s plus 1 s per MB leaves 20x and 3.5x of room, and stops 200k nested <div>s after 4.4 s.
BASE_S = 2.0
S_PER_MB = 1.0
# A 20 MB page of real articles peaks at ~320 MB in the child; past this, lexbor's allocations fail (the
# stage's default: tasks.parse_memory_mb).
MEMORY_BYTES = 1 << 30
# The child imports selectolax before it says it is ready: slow only on a loaded machine.
_START_S = 60.0
_HEADER = struct.Struct(">Q")
_ROOT = Path(__file__).resolve().parents[2]  # the folder holding `tasks`: the child imports this very code


class ParseAborted(ParseError):
    """The parse did not finish: past its time or memory limit, or the parser died. Not the page's verdict
    (a loaded machine can be slow), so its row is an error to retry next run, until its page has been
    given up on (tasks/tasks/parse_attempts.py)."""


class ParserUnavailable(Exception):
    """The parsing child could not be started: a fault of this machine, not of any page (the shard fails)."""


class BoundedParser:
    """parse_article with limits, through one child process started on first use and replaced after a
    page that was killed; use one per shard (pages are parsed one at a time, under a lock)."""

    def __init__(self, base_s: float = BASE_S, s_per_mb: float = S_PER_MB, memory_bytes: int = MEMORY_BYTES):
        self.base_s = base_s
        self.s_per_mb = s_per_mb
        self.memory_bytes = memory_bytes
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> BoundedParser:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._end()

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs (what a test can watch)."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def limit_s(self, html: str | bytes) -> float:
        return self.base_s + self.s_per_mb * len(html) / 1e6

    def parse(self, html: str | bytes, url: str | None = None) -> Article:
        """parse_article(html, url) in the child: its Article or ParseError as they are; ParseAborted when
        the page ran past its limits or the child died on it."""
        limit_s = self.limit_s(html)
        request = pickle.dumps((html, url, limit_s), protocol=pickle.HIGHEST_PROTOCOL)
        with self._lock:
            proc = self._started()
            try:
                _write_frame(proc, request)
            except OSError:  # it died idle (killed for memory by the system, say): a new one takes the page
                self._end()
                proc = self._started()
                _write_frame(proc, request)
            try:
                answer = _read_frame(proc, time.monotonic() + limit_s)
            except TimeoutError:
                self._end()
                raise ParseAborted(
                    f"parsing stopped at its {limit_s:.1f} s limit ({self.base_s:g} s + {self.s_per_mb:g} s per MB"
                    f" of a {len(html) / 1e6:.2f} MB page; tasks.parse_timeout_s): deeply nested or otherwise pathological HTML"
                ) from None
            if answer is None:
                self._end()
                raise ParseAborted(f"the parsing process died on this page ({_how_ended(proc)})")
        kind, value = pickle.loads(answer)
        if kind == "ok":
            return value  # type: ignore[no-any-return]
        if kind == "error":
            raise value
        if kind == "memory":
            raise ParseAborted(
                f"parsing stopped at its {self.memory_bytes >> 20} MiB memory limit ({value}; tasks.parse_memory_mb):"
                " pathological HTML (misnested formatting tags, say)"
            )
        raise ParseAborted(f"the parser failed on this page ({value})")

    def _started(self) -> subprocess.Popen[bytes]:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        self._end()
        # Its own session: a Ctrl-C meant for this process does not kill a child mid-page (which would read
        # as the page's fault); it ends on its own when our end of its stdin closes, or at its CPU limit.
        proc = subprocess.Popen(
            [sys.executable, "-m", "tasks.wikihow.bounded_parse", str(self.memory_bytes)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            cwd=_ROOT, start_new_session=True,
        )  # fmt: skip
        self._proc = proc
        try:
            ready = _read_frame(proc, time.monotonic() + _START_S)
            # At its end of file the child has closed its pipes but may not have exited yet: wait for
            # its exit status (a poll() here read a dying child as one still starting).
            how = _how_ended(proc, wait_s=10.0) if ready is None else "it did not say it was ready"
        except TimeoutError:
            ready, how = None, f"not ready after {_START_S:.0f} s"
        if ready is None or pickle.loads(ready) != "ready":
            self._end()
            raise ParserUnavailable(f"the wikiHow parsing process did not start ({how})")
        return proc

    def _end(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


def _write_frame(proc: subprocess.Popen[bytes], data: bytes) -> None:
    assert proc.stdin is not None
    proc.stdin.write(_HEADER.pack(len(data)) + data)
    proc.stdin.flush()


def _read_frame(proc: subprocess.Popen[bytes], deadline: float) -> bytes | None:
    """One frame from the child; None at its end of file (it died); TimeoutError past `deadline`."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    header = _read_exact(fd, _HEADER.size, deadline)
    if header is None:
        return None
    return _read_exact(fd, _HEADER.unpack(header)[0], deadline)


def _read_exact(fd: int, n: int, deadline: float) -> bytes | None:
    chunks: list[bytes] = []
    while n:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise TimeoutError
        data = os.read(fd, min(n, 1 << 20))
        if not data:
            return None
        chunks.append(data)
        n -= len(data)
    return b"".join(chunks)


def _how_ended(proc: subprocess.Popen[bytes], wait_s: float | None = None) -> str:
    try:
        code = proc.wait(wait_s)
    except subprocess.TimeoutExpired:
        return f"its output ended but it was still running after {wait_s:g} s"
    if code >= 0:
        return f"exit code {code}"
    try:
        return f"killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"killed by signal {-code}"


# -- the child's side ----------------------------------------------------------------------------------


def _answer(html: str | bytes, url: str | None) -> tuple[str, Any]:
    from selectolax.lexbor import SelectolaxError

    from tasks.wikihow.parser import parse_article

    try:
        return "ok", parse_article(html, url=url)
    except ParseError as exc:
        return "error", exc
    except (MemoryError, SelectolaxError) as exc:  # lexbor says "Can't parse HTML." when its allocations fail
        return "memory", f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # a fault of ours on a page is that page's error row, not a crashed shard
        return "failed", f"{type(exc).__name__}: {exc}"


def _send(out: BinaryIO, message: object) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(_HEADER.pack(len(data)) + data)
    out.flush()


def child_main(memory_bytes: int) -> int:
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = memory_bytes if hard == resource.RLIM_INFINITY else min(memory_bytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print goes to stderr, never into the frames
    requests = sys.stdin.buffer
    import tasks.wikihow.parser  # noqa: F401  (selectolax loaded before the first page's clock starts)

    _send(out, "ready")
    while True:
        header = requests.read(_HEADER.size)
        if len(header) < _HEADER.size:
            return 0  # the parent is gone
        html, url, limit_s = pickle.loads(requests.read(_HEADER.unpack(header)[0]))
        # Our own stop, should the parent be gone mid-page (it kills us at limit_s): SIGXCPU past twice that.
        used = resource.getrusage(resource.RUSAGE_SELF)
        soft = int(used.ru_utime + used.ru_stime + 2 * limit_s) + 1
        _, hard = resource.getrlimit(resource.RLIMIT_CPU)
        resource.setrlimit(
            resource.RLIMIT_CPU, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard)
        )
        _send(out, _answer(html, url))


if __name__ == "__main__":
    sys.exit(child_main(int(sys.argv[1])))
