"""Run configuration: TOML -> frozen dataclasses, with validation.

A config file has a ``[job]`` table naming the job kind, and one table per component::

    [job]
    kind = "heat"            # which runner `llgfem run` dispatches to
    name = "heat-demo"       # output folder name under [output].dir

    [domain]                 # see DomainConfig
    kind = "interval"
    lower = [0.0]
    upper = [6.283185307179586]
    n = [100]

    [time]
    T = 0.2
    n_t = 51

    [output]
    dir = "outputs"

Job-specific tables (``[heat]``, ``[llg]``, ...) are declared by the job's runner as frozen
dataclasses and parsed with :func:`parse_section`, so every table gets the same checks: unknown
keys (with the nearest valid name), missing keys and wrong types are reported with the dotted key
name (``domain.n``).  Which tables a job kind reads is declared in :data:`JOB_TABLES`; any other
table (a misspelt ``[feild]``, ``[[coils]]``) is refused with the nearest valid name before any
work starts.  ``[[coil]]`` and ``[[concentration]]`` are arrays of tables (:data:`ARRAY_TABLES`).

Values are range-checked where they are parsed: non-finite floats everywhere; by name, any key
``seed``/``*_seed`` must be >= 0, ``every``/``*_every`` >= 0 and ``*weight*`` > 0; a dataclass
field may declare bounds with ``field(metadata={"gt": 0})`` (keys ``gt``, ``ge``, ``lt``, ``le``);
the dataclass's own ``validate(where)`` checks the rest.

Errors are raised as :class:`ConfigError` before any collective operation, so every MPI rank
raises the identical message (every rank reads the same file).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "ARRAY_TABLES",
    "JOB_TABLES",
    "Config",
    "ConfigError",
    "DomainConfig",
    "JobConfig",
    "OutputConfig",
    "TimeConfig",
    "config_to_dict",
    "dumps_toml",
    "load_config",
    "parse_config",
    "parse_section",
    "read_toml",
    "validate_sections",
    "write_resolved_config",
]


class ConfigError(ValueError):
    """An invalid configuration; the message names the offending key."""


_GRID = ("domain", "time")
_SIGNALS = ("observation", "coil", "concentration")
_BROWN_NEEL = ("brown_neel_fom", "brown_neel_pod", "brown_neel_rom", "brown_neel_identify")
_SURROGATE = ("surrogate_generate", "surrogate_train", "surrogate_predict", "surrogate_kernel")

#: The tables each job kind reads besides ``[job]`` and ``[output]``; any other table in a
#: config (or an ``--set`` override) is refused.  Keep in step with the runners (a unit test
#: checks that every kind of :data:`llgfem.jobs.JOBS` is listed).
JOB_TABLES: dict[str, tuple[str, ...]] = {
    "heat": (*_GRID, "heat"),
    "llg_forward": (*_GRID, "llg", "physical", "field", *_SIGNALS),
    "calibrate": (*_GRID, "llg", "physical", "field", *_SIGNALS, "calibrate", "data",
                  "synthetic"),
    "all_at_once": (*_GRID, "aao", "synthetic"),
    **{kind: ("brown_neel",) for kind in _BROWN_NEEL},
    "brown_neel_identify": ("brown_neel", "data"),  # [data]: calibrate from an MDF file
    **{kind: (*_GRID, "surrogate", "dataset", "sp4", "kernel") for kind in _SURROGATE},
}

#: The frozen dataclass of every job table (``module:Class``, imported when validating), so
#: ``llgfem run`` checks every table of a config before any work starts.
TABLE_CLASSES: dict[str, str] = {
    "heat": "llgfem.jobs.heat:HeatJobConfig",
    "llg": "llgfem.builders:LLGConfig",
    "physical": "llgfem.physics:PhysicalParameters",
    "field": "llgfem.physics:FieldSpec",
    "observation": "llgfem.builders:ObservationConfig",
    "coil": "llgfem.builders:CoilConfig",
    "concentration": "llgfem.builders:ConcentrationConfig",
    "calibrate": "llgfem.jobs.calibrate:CalibrateConfig",
    "data": "llgfem.builders:DataConfig",
    "aao": "llgfem.jobs.all_at_once:AAOConfig",
    "synthetic": "llgfem.calibration.synthetic:SyntheticConfig",
    "brown_neel": "llgfem.brownneel.jobs:BrownNeelConfig",
    "surrogate": "llgfem.surrogates.jobs:SurrogateJobConfig",
    "dataset": "llgfem.surrogates.data:FEMDatasetSpec",
    "sp4": "llgfem.surrogates.sp4:SP4DatasetSpec",
    "kernel": "llgfem.surrogates.kernel:KernelSurrogateConfig",
}

#: Plausibility limits: larger values are typos that would exhaust memory, not runs.
MAX_CELLS = 50_000_000
MAX_TIME_LEVELS = 1_000_000
#: Coordinates (after ``domain.scale``) within +-MAX_COORDINATE and built-in cells at least
#: MIN_CELL wide: beyond them the cell Jacobians overflow or underflow (1e300 -> inf/NaN).
MAX_COORDINATE = 1e12
MIN_CELL = 1e-15
#: Plausible time horizons ``[time] T`` (an attosecond to ~30 years; 1e300 gave NaN steps).
MIN_TIME = 1e-18
MAX_TIME = 1e9

#: Tables written as arrays of tables (``[[coil]]``); a single ``[coil]`` counts as one entry.
ARRAY_TABLES = frozenset({"coil", "concentration"})


def nearest(name: str, candidates) -> str:
    """`` (did you mean 'x'?)`` for the closest candidate to ``name``, or ``""``."""
    match = difflib.get_close_matches(str(name), [str(c) for c in candidates], n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


@dataclass(frozen=True)
class JobConfig:
    """Which job `llgfem run` performs and how its outputs are named."""

    kind: str
    name: str = ""

    def validate(self, where: str) -> None:
        if not self.kind:
            raise ConfigError(f"{where}.kind: must name a job kind")


@dataclass(frozen=True)
class DomainConfig:
    """The computational domain.

    Attributes:
        kind: ``interval`` (1-D), ``rectangle`` (2-D), ``box`` (3-D) or ``file``.
        lower, upper: corner coordinates of built-in domains (length = dimension).
        n: cells per direction of built-in domains.
        cell_type: ``auto`` (interval/triangle/tetrahedron), ``quadrilateral``, ``hexahedron``.
        path: mesh file for ``kind = "file"`` (gmsh ``.msh`` or anything meshio reads);
            relative paths are taken relative to the config file.
        gdim: geometric dimension for mesh files (0 = infer).
        scale: factor applied to mesh-file coordinates (e.g. 1e-3 for mm -> m).
    """

    kind: str = "interval"
    lower: tuple[float, ...] = (0.0,)
    upper: tuple[float, ...] = (1.0,)
    n: tuple[int, ...] = (32,)
    cell_type: str = "auto"
    path: str = ""
    gdim: int = 0
    scale: float = 1.0

    def validate(self, where: str) -> None:
        kinds = {"interval": 1, "rectangle": 2, "box": 3, "file": None}
        if self.kind not in kinds:
            raise ConfigError(f"{where}.kind: {self.kind!r} is not one of {sorted(kinds)}")
        if self.kind == "file":
            if not self.path:
                raise ConfigError(f"{where}.path: required when kind = 'file'")
            if not MIN_CELL <= self.scale <= MAX_COORDINATE:
                raise ConfigError(f"{where}.scale: must lie in [{MIN_CELL:g}, "
                                  f"{MAX_COORDINATE:g}], got {self.scale}")
            if self.gdim not in (0, 1, 2, 3):
                raise ConfigError(f"{where}.gdim: must be 0 (infer), 1, 2 or 3, got {self.gdim}")
            return
        dim = kinds[self.kind]
        for key in ("lower", "upper", "n"):
            if len(getattr(self, key)) != dim:
                raise ConfigError(f"{where}.{key}: needs {dim} entries for kind {self.kind!r}")
        for key in ("lower", "upper"):
            if any(abs(v) > MAX_COORDINATE for v in getattr(self, key)):
                raise ConfigError(f"{where}.{key}: coordinates must lie within "
                                  f"+-{MAX_COORDINATE:g}, got {list(getattr(self, key))}")
        if any(u <= lo for lo, u in zip(self.lower, self.upper, strict=True)):
            raise ConfigError(f"{where}.upper: must exceed {where}.lower componentwise")
        if any(k < 1 for k in self.n):
            raise ConfigError(f"{where}.n: cell counts must be >= 1, got {list(self.n)}")
        widths = [(u - lo) / k for lo, u, k in zip(self.lower, self.upper, self.n, strict=True)]
        if min(widths) < MIN_CELL:
            raise ConfigError(f"{where}.n: cells {min(widths):.3g} wide (upper - lower over n) "
                              f"are below {MIN_CELL:g}")
        if math.prod(self.n) > MAX_CELLS:
            raise ConfigError(f"{where}.n: {math.prod(self.n):.3g} cells exceed the limit "
                              f"{MAX_CELLS:.0e} of a built-in mesh")
        allowed = {"auto", "quadrilateral", "hexahedron"}
        if self.cell_type not in allowed:
            raise ConfigError(f"{where}.cell_type: {self.cell_type!r} not in {sorted(allowed)}")


@dataclass(frozen=True)
class TimeConfig:
    """Uniform time grid t_i = i T/(n_t - 1), i = 0..n_t-1."""

    T: float = 1.0
    n_t: int = 51

    def validate(self, where: str) -> None:
        if not (self.T > 0 and math.isfinite(self.T)):
            raise ConfigError(f"{where}.T: must be a positive number, got {self.T}")
        if not MIN_TIME <= self.T <= MAX_TIME:
            raise ConfigError(f"{where}.T: must lie in [{MIN_TIME:g}, {MAX_TIME:g}] (seconds in "
                              f"physical runs, scaled time otherwise), got {self.T}")
        if not 2 <= self.n_t <= MAX_TIME_LEVELS:
            raise ConfigError(f"{where}.n_t: need 2 to {MAX_TIME_LEVELS} time levels, "
                              f"got {self.n_t}")


@dataclass(frozen=True)
class OutputConfig:
    """Where a run writes (``<dir>/<job.name>/``) and what."""

    dir: str = "outputs"
    fields: bool = True
    plots: bool = True
    progress: bool = True


@dataclass(frozen=True)
class Config:
    """A whole run: the common tables plus the raw job-specific tables."""

    job: JobConfig
    domain: DomainConfig = field(default_factory=DomainConfig)
    time: TimeConfig = field(default_factory=TimeConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: str = ""

    @property
    def run_dir(self) -> Path:
        return Path(self.output.dir) / (self.job.name or self.job.kind)

    def sections_list(self, name: str, cls: type) -> list[Any]:
        """Parse the array of tables ``[[name]]`` (a single ``[name]`` table counts as one)."""
        raw = self.sections.get(name, [])
        tables = [raw] if isinstance(raw, dict) else raw
        return [parse_section(cls, t, f"{name}[{i}]") for i, t in enumerate(tables)]

    def section(self, name: str, cls: type, required: bool = False) -> Any:
        """Parse the job-specific table ``[name]`` into the frozen dataclass ``cls``."""
        if name not in self.sections and required:
            raise ConfigError(f"{name}: table [{name}] is required for job kind {self.job.kind!r}")
        table = self.sections.get(name, {})
        if isinstance(table, list):
            raise ConfigError(f"{name}: expected one [{name}] table, not [[{name}]]")
        return parse_section(cls, table, name)


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Convert a TOML value to the annotated type, or raise ConfigError."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        errors = []
        for arg in typing.get_args(hint):
            if arg is type(None) and value is None:
                return None
            try:
                return _coerce(value, arg, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[-1] if errors else f"{where}: bad value {value!r}")
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__} {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(f"{where}: expected {len(args)} entries, got {len(value)}")
        return tuple(_coerce(v, a, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        return dict(value)
    if hint is Any:
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{where}: must be finite, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported type {hint!r}")  # pragma: no cover


def _name_bounds(name: str) -> dict[str, float]:
    """Bounds every table shares by key name (seeds, intervals, weights)."""
    if name == "seed" or name.endswith("_seed"):
        return {"ge": 0}
    if name == "every" or name.endswith("_every"):
        return {"ge": 0}
    if "weight" in name:
        return {"gt": 0}
    return {}


_BOUNDS = {"gt": (lambda v, b: v > b, "> {}"), "ge": (lambda v, b: v >= b, ">= {}"),
           "lt": (lambda v, b: v < b, "< {}"), "le": (lambda v, b: v <= b, "<= {}")}


def _check_range(value: Any, name: str, metadata, where: str) -> None:
    """Apply the name bounds and ``metadata`` bounds to a number (or each entry of a tuple)."""
    bounds = {**_name_bounds(name), **{k: v for k, v in metadata.items() if k in _BOUNDS}}
    values = value if isinstance(value, tuple) else (value,)
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        for key, bound in bounds.items():
            ok, text = _BOUNDS[key]
            if not ok(v, bound):
                raise ConfigError(f"{where}: must be {text.format(bound)}, got {value!r}")


def parse_section(cls: type, table: dict[str, Any], where: str) -> Any:
    """Build frozen dataclass ``cls`` from a TOML table, checking keys, types and values."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table, got {table!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - set(fields))
    renamed = getattr(cls, "RENAMED", {})
    for key in unknown:
        if key in renamed:
            raise ConfigError(f"{where}.{key}: renamed to {where}.{renamed[key]} (one "
                              "vocabulary for every identification job)")
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown key{nearest(unknown[0], fields)} "
                          f"(allowed: {', '.join(sorted(fields))})")
    kwargs = {}
    for name, f in fields.items():
        if name in table:
            kwargs[name] = _coerce(table[name], hints[name], f"{where}.{name}")
            _check_range(kwargs[name], name, f.metadata, f"{where}.{name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}.{name}: required key is missing")
    try:
        obj = cls(**kwargs)
    except (TypeError, ValueError) as e:  # a __post_init__ check of the dataclass
        raise ConfigError(f"{where}: {e}") from None
    if hasattr(obj, "validate"):
        try:
            obj.validate(where)
        except ConfigError:
            raise
        except ValueError as e:  # a library-level check (e.g. physics.ParameterError)
            raise ConfigError(str(e)) from None
    return obj


def check_tables(data: dict[str, Any], kind: str, tables: tuple[str, ...]) -> None:
    """Refuse any table of ``data`` that job ``kind`` does not read (nearest name in the message).

    Args:
        data: The raw config (TOML) dictionary.
        kind: The job kind (for the message).
        tables: The tables the job reads besides ``[job]`` and ``[output]``.

    Raises:
        ConfigError: naming the first unknown table, or an array where one table is expected.
    """
    known = ("job", "output", *tables)
    for name, value in data.items():
        if name not in known:
            raise ConfigError(f"{name}: unknown table [{name}] for job kind {kind!r}"
                              f"{nearest(name, known)}; it reads {', '.join(sorted(known))}")
        if isinstance(value, list) and name not in ARRAY_TABLES:
            raise ConfigError(f"{name}: expected one [{name}] table, not [[{name}]]")


def _check_domain_keys(kind: str, table: dict[str, Any]) -> None:
    """Refuse ``[domain]`` keys the domain kind does not use (they would be ignored)."""
    builtin, from_file = ("lower", "upper", "n", "cell_type"), ("path", "gdim", "scale")
    unused = from_file if kind != "file" else builtin
    for key in unused:
        if key in table:
            raise ConfigError(f"domain.{key}: not used with domain.kind = {kind!r}")


def parse_config(data: dict[str, Any], source: str = "",
                 tables: tuple[str, ...] | None = None) -> Config:
    """Validate a config dictionary (as read from TOML).

    Args:
        data: The raw config dictionary.
        source: The config file (relative mesh paths are taken relative to it).
        tables: The tables the job reads (default: :data:`JOB_TABLES` of its kind; a kind not
            listed there skips the table check, ``llgfem run`` refuses such kinds).

    Raises:
        ConfigError: naming the offending table or key.
    """
    if not isinstance(data.get("job"), dict):
        raise ConfigError("job: table [job] with `kind = ...` is required")
    kind = data["job"].get("kind")
    if tables is None and isinstance(kind, str):
        tables = JOB_TABLES.get(kind)
    if tables is not None:
        check_tables(data, str(kind), tables)
    common = {
        "job": JobConfig,
        "domain": DomainConfig,
        "time": TimeConfig,
        "output": OutputConfig,
    }
    parsed = {k: parse_section(cls, data.get(k, {}), k) for k, cls in common.items()}
    domain = parsed["domain"]
    _check_domain_keys(domain.kind, data.get("domain", {}))
    if domain.kind == "file" and source and not Path(domain.path).is_absolute():
        path = str((Path(source).parent / domain.path).resolve())
        domain = dataclasses.replace(domain, path=path)
    sections = {k: v for k, v in data.items() if k not in common}
    for key, value in sections.items():
        is_array = isinstance(value, list) and all(isinstance(v, dict) for v in value)
        if not (isinstance(value, dict) or is_array):
            raise ConfigError(f"{key}: expected a table or [[{key}]] tables, got {value!r}")
    return Config(
        job=parsed["job"],
        domain=domain,
        time=parsed["time"],
        output=parsed["output"],
        sections=sections,
        source=source,
    )


def validate_sections(cfg: Config) -> dict[str, Any]:
    """Parse every job table of ``cfg`` present in the file (no MPI: same error on every rank).

    Returns:
        The parsed tables (dataclass, or a list of them for arrays of tables), by name.

    Raises:
        ConfigError: naming the first invalid key or value.
    """
    import importlib

    parsed: dict[str, Any] = {}
    for name in cfg.sections:
        if name not in TABLE_CLASSES:
            continue
        module, cls = TABLE_CLASSES[name].split(":")
        cls = getattr(importlib.import_module(module), cls)
        if name in ARRAY_TABLES:
            parsed[name] = cfg.sections_list(name, cls)
        else:
            parsed[name] = cfg.section(name, cls)
    return parsed


def read_toml(path: str | Path) -> dict[str, Any]:
    """The raw TOML table of a config file (ConfigError if missing or not valid TOML)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        return tomllib.loads(path.read_bytes().decode("utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not a UTF-8 text file ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the config file: {e.strerror}") from None


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML config file.

    Raises:
        ConfigError: if the file is missing, not valid TOML, or has an invalid entry.
    """
    return parse_config(read_toml(path), source=str(path))


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """The resolved config (all defaults filled in) as a plain dictionary."""
    out: dict[str, Any] = {}
    for name in ("job", "domain", "time", "output"):
        out[name] = dataclasses.asdict(getattr(cfg, name))
    for name, table in cfg.sections.items():
        out[name] = dict(table) if isinstance(table, dict) else [dict(t) for t in table]
    return out


def write_resolved_config(cfg: Config, run_dir: Path, resolved: dict[str, Any] | None = None):
    """Write ``config.resolved.json`` and ``config.resolved.toml`` into run_dir.

    Call on one rank only.  Every table the job reads is written with all its defaults filled
    in (tables absent from the file with their default values); ``resolved`` may add or
    replace parsed job-specific sections.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    data = config_to_dict(cfg)
    for name, obj in _resolved_tables(cfg).items():
        data[name] = obj
    for name, obj in (resolved or {}).items():
        data[name] = dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else obj
    (run_dir / "config.resolved.json").write_text(json.dumps(data, indent=2, default=list))
    (run_dir / "config.resolved.toml").write_text(dumps_toml(_toml_safe(data)))


def _toml_key(key: str) -> str:
    return key if key and all(c.isalnum() or c in "_-" for c in key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("nan" if math.isnan(value) else
                                                         ("inf" if value > 0 else "-inf"))
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are TOML basic-string escapes
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(str(k))} = {_toml_value(v)}"
                               for k, v in value.items()) + "}"
    return json.dumps(str(value))


def dumps_toml(data: dict[str, Any]) -> str:
    """TOML text of a config dictionary (tables, arrays of tables, scalars, lists; nested
    tables inline), read back by :func:`tomllib.loads` to the same data.  Uses ``tomli_w``
    when it is installed (the ``dev`` extra), this writer otherwise."""
    try:
        import tomli_w

        return tomli_w.dumps(data)
    except ImportError:
        pass
    lines = [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in data.items()
             if not isinstance(v, dict) and not (isinstance(v, list) and v
                                                 and all(isinstance(e, dict) for e in v))]
    for key, value in data.items():
        if isinstance(value, dict):
            lines += ["", f"[{_toml_key(key)}]"]
            lines += [f"{_toml_key(str(k))} = {_toml_value(v)}" for k, v in value.items()]
        elif isinstance(value, list) and value and all(isinstance(e, dict) for e in value):
            for entry in value:
                lines += ["", f"[[{_toml_key(key)}]]"]
                lines += [f"{_toml_key(str(k))} = {_toml_value(v)}" for k, v in entry.items()]
    return "\n".join(lines).lstrip("\n") + "\n"


def _resolved_tables(cfg: Config) -> dict[str, Any]:
    """The job tables with defaults filled in (present ones parsed, absent ones defaulted)."""
    import importlib

    def plain(obj: Any) -> Any:
        if isinstance(obj, list):
            return [plain(o) for o in obj]
        return dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else obj

    out = {name: plain(obj) for name, obj in validate_sections(cfg).items()}
    for name in JOB_TABLES.get(cfg.job.kind, ()):
        if name in out or name in ARRAY_TABLES or name not in TABLE_CLASSES:
            continue
        module, cls = TABLE_CLASSES[name].split(":")
        try:
            out[name] = plain(parse_section(getattr(importlib.import_module(module), cls), {},
                                            name))
        except ConfigError:  # a table without defaults for every key
            continue
    return out


def _toml_safe(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _toml_safe(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, (list, tuple)):
        return [_toml_safe(v) for v in obj]
    return obj
