"""Bad-input mutations of the demo configs, shared by the fuzz tests and ``tools/fuzz_cli.py``.

A mutation takes the raw TOML dictionary of a demo config and returns a changed copy plus what
``llgfem`` must do with it:

* ``"refuse"`` — the input is invalid whatever the job (unknown/misspelt table or key, wrong
  type, NaN/inf): validation must raise ``ConfigError`` naming the key;
* ``"any"`` — the value may or may not be valid for this key (zero, negative, huge, a missing
  table): validation may accept it, but must never fail with anything but ``ConfigError``;
* ``"refuse-at-run"`` — invalid, in a table the job validates itself when it starts (no entry
  in ``TABLE_CLASSES``): ``llgfem run`` must refuse it.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import math
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llgfem.config import (
    ARRAY_TABLES,
    TABLE_CLASSES,
    DomainConfig,
    JobConfig,
    OutputConfig,
    TimeConfig,
    read_toml,
)

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "demos" / "configs").glob("*.toml"))
COMMON = {"job": JobConfig, "domain": DomainConfig, "time": TimeConfig, "output": OutputConfig}
KINDS = ("unknown_table", "misspelt_table", "unknown_key", "misspelt_key", "wrong_type", "nan",
         "inf", "negative", "zero", "huge", "remove_table")
VALUE_KINDS = ("wrong_type", "nan", "inf", "negative", "zero", "huge")


@dataclass(frozen=True)
class Mutation:
    """One bad input: where, what, and the expected outcome."""

    config: str
    kind: str
    table: str
    key: str
    value: Any
    expect: str  # "refuse" or "any"

    @property
    def label(self) -> str:
        return f"{Path(self.config).stem}:{self.kind}:{self.table}.{self.key}={self.value!r}"


def table_class(name: str) -> type | None:
    """The dataclass of table ``name`` (None if the table has none)."""
    if name in COMMON:
        return COMMON[name]
    if name not in TABLE_CLASSES:
        return None
    module, cls = TABLE_CLASSES[name].split(":")
    return getattr(importlib.import_module(module), cls)


def tables_of(data: dict) -> tuple[str, ...]:
    """The tables the job of ``data`` reads (with the common ones)."""
    from llgfem.cli import _job_tables

    return ("job", "output", *_job_tables(data))


def fields_of(table: str) -> dict[str, Any]:
    """Field name -> type hint of a table's dataclass."""
    cls = table_class(table)
    if cls is None:
        return {}
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _base(hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin is tuple:
        return tuple
    if origin in (dict,) or hint is dict:
        return dict
    if origin is not None and type(None) in typing.get_args(hint):
        return _base(next(a for a in typing.get_args(hint) if a is not type(None)))
    return hint


def _misspell(name: str, valid: set[str]) -> str:
    for cand in (name[:-1], name + "x", name[1:] + name[0], name.replace("_", "")):
        if cand and cand not in valid and cand != name:
            return cand
    return name + "_zz"


def _wrong_type(hint: Any) -> tuple[Any, str]:
    base = _base(hint)
    if base in (int, float):
        return "text", "refuse"
    if base is bool:
        return "yes", "refuse"
    if base is str:
        return 1.5, "refuse"
    if base is tuple:
        return 3, "refuse"
    return 1.5, "any"  # dict / Any


def _number(hint: Any, kind: str) -> tuple[Any, str] | None:
    base = _base(hint)
    element = typing.get_args(hint)[0] if base is tuple and typing.get_args(hint) else hint
    is_float = _base(element) is float
    if _base(element) not in (int, float) or _base(element) is bool:
        return None
    value = {"nan": math.nan, "inf": math.inf, "negative": -1 if not is_float else -1.0,
             "zero": 0 if not is_float else 0.0, "huge": 10**12 if not is_float else 1e300}[kind]
    if kind in ("nan", "inf") and not is_float:
        return None
    expect = "refuse" if kind in ("nan", "inf") else "any"
    if base is tuple:
        n = len(typing.get_args(hint)) if Ellipsis not in typing.get_args(hint) else 2
        value = [value] * n
    return value, expect


def set_value(data: dict, table: str, key: str, value: Any) -> None:
    """``data[table][key] = value`` (the first entry of an array of tables)."""
    current = data.get(table)
    if table in ARRAY_TABLES and isinstance(current, list) and current:
        current[0][key] = value
    elif isinstance(current, dict):
        current[key] = value
    else:
        data[table] = [{key: value}] if table in ARRAY_TABLES else {key: value}


def mutations(path: Path) -> list[Mutation]:
    """Every mutation of one demo config (systematic: each table x key x kind)."""
    data = read_toml(path)
    tables = tables_of(data)
    out = [Mutation(str(path), "unknown_table", "zz_unknown", "x", 1, "refuse")]
    for table in tables:
        fields = fields_of(table)
        out.append(Mutation(str(path), "misspelt_table", _misspell(table, set(tables)), "x",
                            None, "refuse"))
        known = table_class(table) is not None  # else the job checks the table itself
        out.append(Mutation(str(path), "unknown_key", table, "zz_unknown", 1,
                            "refuse" if known else "refuse-at-run"))
        if table in data and table != "job":
            out.append(Mutation(str(path), "remove_table", table, "", None, "any"))
        for key, hint in fields.items():
            if table == "job" and key == "kind":
                continue
            out.append(Mutation(str(path), "misspelt_key", table, _misspell(key, set(fields)),
                                1, "refuse"))
            value, expect = _wrong_type(hint)
            out.append(Mutation(str(path), "wrong_type", table, key, value, expect))
            for kind in ("nan", "inf", "negative", "zero", "huge"):
                number = _number(hint, kind)
                if number is not None:
                    out.append(Mutation(str(path), kind, table, key, *number))
    return out


def apply(m: Mutation) -> dict:
    """The mutated raw config of ``m``."""
    data = copy.deepcopy(read_toml(m.config))
    if m.kind == "unknown_table":
        data[m.table] = {m.key: m.value}
    elif m.kind == "misspelt_table":
        data[m.table] = {"x": 1}
    elif m.kind == "remove_table":
        del data[m.table]
    else:
        set_value(data, m.table, m.key, m.value)
    return data


def as_override(m: Mutation) -> str | None:
    """The mutation as one ``--set`` argument (None if it cannot be written as one)."""
    import json

    if m.kind in ("remove_table", "misspelt_table") or m.value is None:
        return None
    if isinstance(m.value, float) and not math.isfinite(m.value):
        text = "nan" if math.isnan(m.value) else "inf"
    elif isinstance(m.value, list):
        text = "[" + ", ".join("nan" if isinstance(v, float) and math.isnan(v) else
                               "inf" if isinstance(v, float) and math.isinf(v) else
                               json.dumps(v) for v in m.value) + "]"
    else:
        text = json.dumps(m.value)
    index = ".0" if m.table in ARRAY_TABLES else ""
    return f"{m.table}{index}.{m.key}={text}"
