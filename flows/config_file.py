"""The pipeline's one config surface: a file (YAML, TOML or JSON), CLI options, then `--set a.b=value`.

Pure (no typer, no Prefect): `resolve` layers defaults < file < explicit CLI options < `--set`, validates
each layer with the pydantic configs, and raises `ConfigError` whose message is the one line the CLI prints
("--set search.max_reslts: unknown field of search (did you mean max_results? allowed: ...)").
"""

from __future__ import annotations

import difflib
import json
import tomllib
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from flows.pipeline_config import PipelineConfig
from tasks.youtube.access import SECRET_FIELDS

Key = tuple[str, ...]

# A config holds only references to secrets (env:NAME, block:NAME), so a printed config can be pasted
# into an issue as it is. A value given where a reference belongs is refused, and never echoed back:
# it is most likely the secret itself.
MASK = "**********"
HEADER = "# howto pipeline config (resolved); run it with: howto pipeline --config FILE\n"

_PARSERS: dict[str, tuple[str, Callable[[str], Any]]] = {
    ".yaml": ("YAML", yaml.safe_load),
    ".yml": ("YAML", yaml.safe_load),
    ".toml": ("TOML", tomllib.loads),
    ".json": ("JSON", json.loads),
}


class ConfigError(ValueError):
    """A config problem, worded as the one line the user sees (the CLI adds `error: ` and exits 2)."""


@dataclass(frozen=True)
class Override:
    """One value set on top of the file: `label` is how the user wrote it (`--loss`, `--set a.b`)."""

    label: str
    key: Key
    value: Any


def read_file(path: Path) -> dict[str, Any]:
    """A config file as a nested dict; the format comes from the suffix."""
    kind, parse = _PARSERS.get(path.suffix.lower(), (None, None))
    if kind is None or parse is None:
        raise ConfigError(
            f"{path}: unknown config format {path.suffix or '(no suffix)'!r}; use {', '.join(_PARSERS)}"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}") from None
    try:
        data = parse(text)
    except (yaml.YAMLError, tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not valid {kind}: {_parse_problem(exc)}") from None
    except RecursionError:  # each parser recurses per level: a file nested thousands deep overflows it
        raise ConfigError(f"{path}: not a config this reads: nested too deeply") from None
    if data is None:  # an empty YAML file: all defaults
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: expected a mapping of sections ({', '.join(PipelineConfig.model_fields)}), "
            f"got {type(data).__name__}"
        )
    return data


def parse_set(item: str) -> Override:
    """`stage.field=value` -> an override; the value is read as YAML (50, [resnet152], null, true)."""
    dotted, sep, raw = item.partition("=")
    dotted = dotted.strip()
    if not sep or not dotted:
        raise ConfigError(f"--set {item}: expected STAGE.FIELD=VALUE, e.g. search.max_results=50")
    key = tuple(dotted.split("."))
    label = f"--set {dotted}"
    if any(not part for part in key):
        raise ConfigError(f"{label}: empty name in the key")
    return Override(label, key, _parse_value(label, raw, field_annotation(label, key)))


def resolve(
    file: Path | None = None,
    options: Sequence[Override] = (),
    sets: Sequence[str] = (),
    base: PipelineConfig | None = None,
) -> PipelineConfig:
    """Defaults (or `base`, such as the demo's config) < file < explicit CLI options < --set, validated once
    all are applied (a check across fields, such as runner.part < runner.parts, must not depend on the order
    of the --set options); a problem is reported under the last layer that set its field, else the file's
    name."""
    overrides = [*options, *(parse_set(item) for item in sets)]  # bad --set syntax fails before any I/O
    data: dict[str, Any] = read_file(file) if file is not None else {}
    if base is not None:
        data = _merged(base.model_dump(mode="json"), data)
    for override in overrides:
        data = _with(data, override.key, override.value)
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as exc:
        loc = tuple(str(p) for p in exc.errors()[0]["loc"])
        label, key = str(file) if file is not None else "config", ()
        for override in overrides:  # the last one that touched the failing field (or its section) wins
            n = min(len(loc), len(override.key))
            if override.key[:n] == loc[:n]:
                label, key = override.label, override.key
        raise ConfigError(_describe(exc, label, key)) from None


def _merged(under: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` laid on `under`, section by section: a file that sets one field of a section keeps the rest of
    the base's section."""
    out = dict(under)
    for key, value in over.items():
        below = out.get(key)
        out[key] = _merged(below, value) if isinstance(below, dict) and isinstance(value, dict) else value
    return out


def to_yaml(cfg: PipelineConfig) -> str:
    """The config as YAML that `resolve(file=...)` reads back to the same config (secrets are references)."""
    return HEADER + yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def field_annotation(label: str, key: Key) -> Any:
    """The type of the field at `key` (walking nested models); ConfigError naming the bad part if none."""
    model: type[BaseModel] | None = PipelineConfig
    annotation: Any = PipelineConfig
    for i, name in enumerate(key):
        where = ".".join(key[:i])
        if model is None:
            raise ConfigError(f"{label}: {where} is a value, not a section")
        if name not in model.model_fields:
            # The label already ends with the bad name unless a section in the middle is the bad part.
            prefix = "" if i == len(key) - 1 else f"{'.'.join(key[: i + 1])}: "
            raise ConfigError(f"{label}: {prefix}{_unknown(name, where, model)}")
        annotation = model.model_fields[name].annotation
        model = _model_of(annotation)
    return annotation


def _describe(exc: ValidationError, label: str, key: Key) -> str:
    """The first problem as `label: where: what`, where `where` is left out when the label says it."""
    first = exc.errors()[0]
    loc = tuple(str(p) for p in first["loc"])
    if first["type"] == "extra_forbidden":
        parent = ".".join(loc[:-1])
        what = _unknown(loc[-1], parent, _model_of(field_annotation(label, loc[:-1])) or PipelineConfig)
    else:
        secret = next((part for part in loc if part in SECRET_FIELDS), None)
        given = MASK if secret else _short(first.get("input"))
        what = f"{first['msg']} (got {given})"
        if secret:
            what += f"; the default, env:{SECRET_FIELDS[secret]}, reads ${SECRET_FIELDS[secret]}"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    where = "" if loc == key else f"{'.'.join(loc)}: "
    return f"{label}: {where}{what}{more}"


def _unknown(name: str, where: str, model: type[BaseModel]) -> str:
    allowed = list(model.model_fields)
    close = difflib.get_close_matches(name, allowed, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    return f"unknown field of {where or 'the config'} ({hint}allowed: {', '.join(allowed)})"


def _parse_value(label: str, raw: str, annotation: Any) -> Any:
    text = raw.strip()
    # Text fields take the words as typed: YAML would turn crawl_id=0001 into 1 and device=off into False.
    if _is_text(annotation) and text[:1] not in ("'", '"') and text not in ("", "null", "~"):
        return raw
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{label}: value is not valid YAML: {_parse_problem(exc)}") from None
    except RecursionError:
        raise ConfigError(f"{label}: value is not a config value this reads: nested too deeply") from None


def _is_text(annotation: Any) -> bool:
    """str or str | None (not Literal choices, tuples or numbers)."""
    if annotation is str:
        return True
    if get_origin(annotation) in (Union, types.UnionType):
        return set(get_args(annotation)) == {str, type(None)}
    return False


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _with(data: dict[str, Any], key: Key, value: Any) -> dict[str, Any]:
    """A copy of `data` with `value` at `key`; a mapping given for a section merges into it."""
    out = dict(data)
    head, rest = key[0], key[1:]
    current = out.get(head)
    if rest:
        out[head] = _with(current if isinstance(current, dict) else {}, rest, value)
    elif isinstance(value, dict) and isinstance(current, dict):
        out[head] = {**current, **value}
    else:
        out[head] = value
    return out


def _parse_problem(exc: Exception) -> str:
    """A parser's error on one line, with its position when the parser gives one."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"{exc.problem} (line {mark.line + 1}, column {mark.column + 1})"
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} (line {exc.lineno}, column {exc.colno})"
    return " ".join(str(exc).split())


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
