"""Secret references: what a config may hold, how a task reads the secret, and that reprs never show it."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from tasks.secrets import REF_HELP, env_ref, resolve_secret
from tasks.youtube.access import AccessSecrets, YoutubeAccess


def test_env_reference_is_read_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    ref = env_ref("HOWTO_TEST_TOKEN")
    monkeypatch.delenv("HOWTO_TEST_TOKEN", raising=False)
    assert resolve_secret(ref) is None and resolve_secret(None) is None
    monkeypatch.setenv("HOWTO_TEST_TOKEN", "")
    assert resolve_secret(ref) is None  # empty means unset
    monkeypatch.setenv("HOWTO_TEST_TOKEN", "s3cret-value")
    secret = resolve_secret(ref)
    assert isinstance(secret, SecretStr) and secret.get_secret_value() == "s3cret-value"


@pytest.mark.parametrize("bad", ["s3cret-value", "env:", "env:A B", "file:/x", "http://u:p@h:1"])
def test_only_references_are_accepted(bad: str) -> None:
    with pytest.raises(ValueError) as info:
        resolve_secret(bad)
    assert str(info.value) == REF_HELP  # the message never repeats what was given: it may be the secret


def test_resolved_secrets_never_show_in_reprs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOWTO_YTDLP_COOKIES", "/home/me/cookies-s3cret.txt")
    monkeypatch.setenv("HOWTO_YTDLP_PROXY", "http://user:s3cret@proxy:3128")
    access = YoutubeAccess()
    secrets = access.secrets()
    assert isinstance(secrets, AccessSecrets) and secrets.proxy is not None
    shown = " ".join([repr(secrets), str(secrets), repr(access), access.model_dump_json()])
    assert "s3cret" not in shown
    assert secrets.proxy.get_secret_value() == "http://user:s3cret@proxy:3128"
