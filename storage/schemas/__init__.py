"""Registry of dataset schemas: one module per dataset, each with NAME, VERSION and SCHEMA."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass

import pyarrow as pa


@dataclass(frozen=True)
class DatasetSchema:
    """A dataset's name, schema version and pyarrow schema."""

    name: str
    version: int
    schema: pa.Schema


class SchemaError(ValueError):
    """A table does not match its dataset's schema."""


def _discover() -> dict[str, DatasetSchema]:
    found: dict[str, DatasetSchema] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "SCHEMA"):
            found[module.NAME] = DatasetSchema(module.NAME, module.VERSION, module.SCHEMA)
    return found


SCHEMAS: dict[str, DatasetSchema] = _discover()


def get_schema(dataset: str) -> DatasetSchema:
    try:
        return SCHEMAS[dataset]
    except KeyError:
        raise SchemaError(f"unknown dataset {dataset!r}; known: {', '.join(sorted(SCHEMAS))}") from None


def validate_table(dataset: str, table: pa.Table) -> pa.Table:
    """Return `table` cast to the dataset's schema, or raise SchemaError naming dataset and column.

    Columns must all be present with the declared type; null-typed columns (all values missing) and
    integer widths that cast losslessly are accepted, anything else (e.g. a string where an int is
    declared) is refused rather than silently coerced.
    """
    spec = get_schema(dataset)
    names = set(table.column_names)
    missing = [f.name for f in spec.schema if f.name not in names]
    if missing:
        raise SchemaError(f"{dataset}: missing column(s) {', '.join(missing)}")
    extra = sorted(names - set(spec.schema.names))
    if extra:
        raise SchemaError(f"{dataset}: unexpected column(s) {', '.join(extra)}")
    columns = []
    for field in spec.schema:
        column = table.column(field.name)
        if column.type != field.type:
            if not _compatible(column.type, field.type):
                raise SchemaError(
                    f"{dataset}: column {field.name!r} has type {column.type}, expected {field.type}"
                )
            try:
                column = column.cast(field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise SchemaError(
                    f"{dataset}: column {field.name!r} cannot be cast to {field.type}: {exc}"
                ) from exc
        if not field.nullable and column.null_count:
            raise SchemaError(
                f"{dataset}: column {field.name!r} has {column.null_count} null(s), none allowed"
            )
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=spec.schema)


def _compatible(actual: pa.DataType, expected: pa.DataType) -> bool:
    """Same kind of data: null to anything, int to int, float to float, string to string, lists alike."""
    if pa.types.is_null(actual):
        return True
    kinds = (
        pa.types.is_integer,
        pa.types.is_floating,
        pa.types.is_string,
        pa.types.is_large_string,
        pa.types.is_boolean,
        pa.types.is_timestamp,
    )
    for kind in kinds:
        if kind(expected):
            if kind(actual):
                return True
            # string and large_string are the same kind of data
            return (pa.types.is_string(expected) or pa.types.is_large_string(expected)) and (
                pa.types.is_string(actual) or pa.types.is_large_string(actual)
            )
    if (
        pa.types.is_list(expected)
        or pa.types.is_fixed_size_list(expected)
        or pa.types.is_large_list(expected)
    ):
        is_list = (
            pa.types.is_list(actual) or pa.types.is_fixed_size_list(actual) or pa.types.is_large_list(actual)
        )
        return is_list and _compatible(actual.value_type, expected.value_type)
    return False


def columns_problem(dataset: str, actual: pa.Schema) -> str | None:
    """How a shard file's columns differ from the dataset's schema, in one line; None when they match.

    Names and types must be the declared ones (in any order): DuckDB's view over many files takes its
    columns from the first and fits the others to them, so one foreign file (a column renamed, added or of
    another type) would silently retype the whole view, or fail every query without naming it. What reads
    alike does not count: nullability (Parquet's required or optional), a list's value field name, and
    large against plain strings, binaries and lists.
    """
    expected = get_schema(dataset).schema
    have = {f.name: f.type for f in actual}
    problems = []
    missing = [name for name in expected.names if name not in have]
    if missing:
        problems.append(f"missing {', '.join(missing)}")
    extra = [name for name in actual.names if name not in expected.names]
    if extra:
        problems.append(f"unexpected {', '.join(extra)}")
    for field in expected:
        if field.name in have and _plain(have[field.name]) != _plain(field.type):
            problems.append(f"{field.name} is {have[field.name]}, expected {field.type}")
    return "; ".join(problems) or None


def _plain(kind: pa.DataType) -> object:
    """A type as the readers see it: lists by their value type, large variants as plain ones, a dictionary
    as its values."""
    if pa.types.is_dictionary(kind):
        return _plain(kind.value_type)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        return ("list", _plain(kind.value_type))
    if pa.types.is_struct(kind):
        return (
            "struct",
            tuple((kind.field(i).name, _plain(kind.field(i).type)) for i in range(kind.num_fields)),
        )
    if pa.types.is_large_string(kind):
        return pa.string()
    if pa.types.is_large_binary(kind):
        return pa.binary()
    return kind
