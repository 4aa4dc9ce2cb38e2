"""Error sorting, the global rate cap, and the circuit breaker (fake clocks: no real waiting)."""

from __future__ import annotations

import random
import threading

import pytest

from tasks.ratelimit import RateLimiter
from tasks.youtube.errors import ErrorKind, StageHalted, classify, clean_message
from tasks.youtube.politeness import CircuitBreaker


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []
        self.lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        with self.lock:
            self.slept.append(s)
            self.now += s


# Messages as yt-dlp prints them (DownloadError text).
@pytest.mark.parametrize(
    ("message", "kind"),
    [
        (
            "ERROR: [youtube] dQw4w9WgXcQ: Unable to download webpage: HTTP Error 429: Too Many Requests",
            "rate_limited",
        ),
        (
            "ERROR: [youtube] dQw4w9WgXcQ: Sign in to confirm you\u2019re not a bot. Use --cookies-from-browser or "
            "--cookies for the authentication.",
            "bot_check",
        ),
        ("ERROR: [youtube] dQw4w9WgXcQ: Sign in to confirm you're not a bot", "bot_check"),
        (
            "ERROR: [youtube] dQw4w9WgXcQ: Private video. Sign in if you've been granted access to this video",
            "unavailable",
        ),
        (
            "ERROR: [youtube] dQw4w9WgXcQ: Video unavailable. This video has been removed by the uploader",
            "unavailable",
        ),
        (
            "ERROR: [youtube] dQw4w9WgXcQ: Sign in to confirm your age. This video may be inappropriate",
            "unavailable",
        ),
        (
            "ERROR: [youtube] dQw4w9WgXcQ: Video unavailable. This video is no longer available because the YouTube "
            "account associated with this video has been terminated.",
            "unavailable",
        ),
        ("ERROR: [demo] abc: Unable to download webpage: HTTP Error 404: Not Found", "unavailable"),
        (
            "ERROR: [youtube] dQw4w9WgXcQ: Unable to download webpage: The read operation timed out",
            "transient",
        ),
        (
            "ERROR: [youtube] dQw4w9WgXcQ: Unable to download webpage: HTTP Error 503: Service Unavailable",
            "transient",
        ),
        (
            "ERROR: [youtube] dQw4w9WgXcQ: Unable to download webpage: <urlopen error [Errno 111] Connection refused>",
            "transient",
        ),
    ],
)
def test_classify(message: str, kind: str) -> None:
    assert classify(message) is ErrorKind(kind)


def test_clean_message_masks_secrets() -> None:
    raw = (
        "\x1b[0;31mERROR:\x1b[0m unable: http://user:hunter2@proxy.example:3128 "
        "https://www.youtube.com/api/timedtext?v=x&signature=ABC.DEF&key=yt8&lang=en"
    )
    clean = clean_message(raw)
    assert "hunter2" not in clean and "ABC.DEF" not in clean and "\x1b" not in clean
    assert "lang=en" in clean and "proxy.example" in clean
    assert len(clean_message("x" * 5000)) <= 503


def test_clean_message_masks_a_cookies_files_path_and_lines() -> None:
    # What yt-dlp reports when http.cookiejar refuses a cookies file: its path, and the line, value and all.
    for raw in (
        "ERROR: invalid Netscape format cookies file '/home/me/yt-s3cret.txt': "
        "'youtube.com\\tTRUE\\t/\\tFALSE\\t1828208305\\tSID\\tg.a000s3cret'",
        "ERROR: '/home/me/yt-s3cret.txt' does not look like a Netscape format cookies file",
    ):
        clean = clean_message(raw)
        assert "s3cret" not in clean and clean.startswith("the cookies file: ") and "not shown" in clean


def test_rate_limiter_spaces_requests() -> None:
    clock = FakeClock()
    limiter = RateLimiter(2.0, 0.0, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        limiter.wait()
    # First request goes at once, then one every 0.5 s.
    assert clock.now == pytest.approx(102.0)


def test_rate_limiter_jitter_is_bounded_and_random() -> None:
    clock = FakeClock()
    limiter = RateLimiter(0, 1.0, clock=clock, sleep=clock.sleep, rng=random.Random(1))
    waits = [limiter.wait() for _ in range(20)]
    assert all(0 <= w <= 1.0 for w in waits) and len(set(waits)) > 10


def test_rate_limiter_is_shared_by_threads() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10.0, 0.0, clock=clock, sleep=lambda s: None)
    slots: list[float] = []
    lock = threading.Lock()

    def go() -> None:
        for _ in range(10):
            w = limiter.wait()
            with lock:
                slots.append(clock.now + w)

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # 40 requests over 4 threads still land 0.1 s apart: the cap is global, not per thread.
    assert sorted(round(s, 6) for s in slots) == [round(100 + i * 0.1, 6) for i in range(40)]


def test_breaker_doubles_pauses_then_halts() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(10.0, 35.0, 3, clock=clock, sleep=clock.sleep, rng=random.Random(0))
    pauses = [breaker.record_rate_limited("HTTP Error 429") for _ in range(3)]
    assert [round(p / b, 3) <= 1.25 and p >= b for p, b in zip(pauses, (10, 20, 35), strict=True)] == [
        True
    ] * 3
    with pytest.raises(StageHalted) as info:
        breaker.record_rate_limited("HTTP Error 429")
    assert info.value.kind is ErrorKind.RATE_LIMITED and "--rate" in str(info.value)


def test_breaker_pauses_everyone_and_resets_on_success() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(5.0, 60.0, 2, clock=clock, sleep=clock.sleep, rng=random.Random(0))
    pause = breaker.record_rate_limited()
    assert breaker.wait_if_open() == pytest.approx(pause)
    assert breaker.wait_if_open() == 0.0  # closed again once the pause is over
    breaker.record_success()
    breaker.record_rate_limited()
    breaker.record_rate_limited()  # 2 in a row after the reset: still within the limit
    assert breaker.trips == 3
