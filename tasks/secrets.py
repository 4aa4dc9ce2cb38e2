"""Secrets by reference: configs and flow parameters name where a secret lives, never hold it.

Prefect stores every flow parameter in its database and shows it in the UI, so a cookies path or a proxy
URL with credentials must never be one. A config says `env:NAME` (an environment variable of the process
that runs the task) or `block:NAME` (a Prefect Secret block, kept encrypted by the server); the task reads
the value when it needs it, into a pydantic SecretStr that no repr, log line or dump shows.
"""

from __future__ import annotations

import os
import re
from typing import Annotated, Any

from pydantic import AfterValidator, SecretStr

_REF = re.compile(r"^(env|block):([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})$")
REF_HELP = (
    "expected a reference to a secret, env:NAME (an environment variable) or block:NAME "
    "(a Prefect Secret block), never the secret itself"
)


def _check(ref: str) -> str:
    if not _REF.match(ref):
        # The message never repeats the value: it may be the very secret that was pasted here.
        raise ValueError(REF_HELP)
    return ref


SecretRef = Annotated[str, AfterValidator(_check)]


def env_ref(name: str) -> str:
    """The reference to environment variable `name`."""
    return _check(f"env:{name}")


def resolve_secret(ref: str | None) -> SecretStr | None:
    """The secret `ref` names, read now; None when no reference is given or the variable is unset or empty.

    Call it inside the task that uses the secret (a block is read through the Prefect API of that run);
    a missing block raises, since a named block that is not there is a configuration mistake.
    """
    if not ref:
        return None
    match = _REF.match(ref)
    if match is None:
        raise ValueError(REF_HELP)
    kind, name = match.groups()
    if kind == "env":
        value = os.environ.get(name)
    else:
        from prefect.blocks.system import Secret  # only block references need Prefect

        block: Any = Secret.load(name)  # a task body is sync code: this is the block, not a coroutine
        value = str(block.get())
    return SecretStr(value) if value else None
