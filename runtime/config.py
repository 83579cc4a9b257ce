"""One command-line convention for every entry point: ``python -m pkg.cmd key=value ...``.

A command is described by a typed config (a dataclass, possibly nested). Values are resolved in
this order, later winning: the dataclass defaults, a named preset (``preset=NAME``, a YAML file
shipped with the package), a user YAML file (``config=FILE.yaml``), then ``key=value`` overrides
with dotted keys for nested configs (``generator.n_blocks=2``). Values are parsed as YAML scalars
and checked against the field's type, so a typo or a wrong type is an error naming the key, not a
silent default. ``--help`` lists every key with its default and meaning; ``--print-config`` prints
the resolved config as YAML and exits.

A field may declare the range of its values (``param(1, "...", at_least=1)``; ``above``, ``at_most`` and
``below`` likewise; each element of a tuple): ``--help`` shows it, a value outside it is an error naming
the key, and a config class based on ``Bounded`` checks it again whenever it is built (directly, by
``dataclasses.replace`` or from a checkpoint), so a range is declared once, beside its field, and this
module checks it itself; a class's own ``__post_init__`` is left for what one field cannot say.

A group of settings that is another command's config may take that command's presets: a field declared
``param(default_factory=TrainConfig, presets=DIR)`` accepts ``GROUP.preset=NAME`` (in a preset, a
config file or on the command line), which fills the group from ``DIR/NAME.yaml`` under the keys given
for it; the keys the outer config sets itself (``not_from_preset``: an output folder, say) are not
taken from it. So a pipeline preset names the trainers' presets instead of repeating their values.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import sys
import traceback
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from runtime.errors import ConfigError, TrainingDiverged

T = TypeVar("T")


def param(default: Any = dataclasses.MISSING, help: str = "", *, choices: Sequence[Any] | None = None,
          default_factory: Any = dataclasses.MISSING, run_only: bool = False, at_least: float | None = None,
          above: float | None = None, at_most: float | None = None, below: float | None = None,
          presets: Path | None = None, not_from_preset: Sequence[str] = (), added: bool = False) -> Any:
    """A dataclass field carrying the one-line meaning shown by ``--help`` and the allowed values.
    ``run_only``: the key changes how a run executes (folder, device, threads, logging), never what
    it computes; a resumed run may change it and a cache fingerprint leaves it out (``content``).
    ``at_least`` / ``above`` / ``at_most`` / ``below``: the value's range (>=, >, <=, <; every element of
    a tuple or list). ``presets`` (a group of settings): the folder of the presets ``GROUP.preset=NAME``
    reads, without the dotted keys ``not_from_preset`` (those the outer config sets itself).
    ``added``: a key added after results were cached, whose default computes what was computed without it:
    ``content`` leaves it out while it holds its default, so adding the knob redoes no finished stage."""
    bounds = tuple((op, limit) for op, limit in ((">=", at_least), (">", above), ("<=", at_most), ("<", below))
                   if limit is not None)
    metadata = {"help": help, "choices": tuple(choices) if choices is not None else None, "run_only": run_only,
                "bounds": bounds, "presets": presets, "not_from_preset": tuple(not_from_preset), "added": added}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    if isinstance(default, (list, dict, set)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


# ----------------------------------------------------------------------------- type coercion

def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` (already YAML-parsed) against the annotation ``tp``; convert where lossless."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{key}: {value!r} is not a valid {_type_name(tp)}")
    if origin is typing.Literal:
        if value in args:
            return value
        raise ConfigError(f"{key}: {value!r} is not one of {list(args)}")
    if origin in (tuple, list):
        if isinstance(value, str) and "," in value:
            value = [yaml.safe_load(v) for v in value.split(",")]
        fixed = origin is tuple and args and args[-1] is not Ellipsis
        if not fixed and isinstance(value, (str, int, float)) and not isinstance(value, bool):
            value = [value]  # methods=none: a list of one, as portions=0.2 is for the sweep
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list like [a, b] or a,b, got {value!r}")
        if fixed:
            if len(value) != len(args):
                raise ConfigError(f"{key}: expected {len(args)} values, got {len(value)} ({value!r})")
            return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        item = args[0] if args else Any
        items = [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads 2e-4 as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    if tp is Path:
        if isinstance(value, (str, Path)):
            return Path(value)
        raise ConfigError(f"{key}: expected a path, got {value!r}")
    raise ConfigError(f"{key}: unsupported field type {_type_name(tp)}")


def _fields(cls: type) -> dict[str, tuple[dataclasses.Field, Any]]:
    hints = typing.get_type_hints(cls)
    return {f.name: (f, hints[f.name]) for f in dataclasses.fields(cls) if f.init}


def _check_choice(field: dataclasses.Field, value: Any, key: str) -> None:
    choices = field.metadata.get("choices")
    if choices and value not in choices:
        raise ConfigError(f"{key}: {value!r} is not one of {list(choices)}")


_HOLDS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": lambda v, limit: v >= limit, ">": lambda v, limit: v > limit,
    "<=": lambda v, limit: v <= limit, "<": lambda v, limit: v < limit,
}


def bounds_text(field: dataclasses.Field) -> str:
    """A field's declared range as ``>= 1``, ``>= 0, < 1`` (empty when it declares none)."""
    return ", ".join(f"{op} {limit:g}" for op, limit in field.metadata.get("bounds", ()))


def _check_bounds(field: dataclasses.Field, value: Any, key: str) -> None:
    bounds = field.metadata.get("bounds", ())
    values = value if isinstance(value, (tuple, list)) else (value,)
    if bounds and not all(_HOLDS[op](v, limit) for v in values for op, limit in bounds):
        each = "each value of " if isinstance(value, (tuple, list)) else ""
        raise ConfigError(f"{each}{key} must be {bounds_text(field)}, got {value!r}")


@functools.cache
def _arities(cls: type) -> dict[str, int]:
    """The fields of ``cls`` annotated as fixed-length tuples (``tuple[int, int]``), with their lengths."""
    return {name: len(typing.get_args(tp)) for name, (_, tp) in _fields(cls).items()
            if typing.get_origin(tp) is tuple and typing.get_args(tp) and typing.get_args(tp)[-1] is not Ellipsis}


class Bounded:
    """Base of a config dataclass whose fields declare ranges (``param(..., at_least=1)``): they are
    checked whenever an instance is made, in Python too, with the length of fixed-length tuples. A
    subclass with checks of its own (between fields) calls ``super().__post_init__()`` first."""

    def __post_init__(self) -> None:
        for name, n in _arities(type(self)).items():
            value = getattr(self, name)
            if not isinstance(value, (tuple, list)) or len(value) != n:
                raise ConfigError(f"{name} must be {n} values, got {value!r}")
        for field in dataclasses.fields(self):  # type: ignore[arg-type]
            _check_bounds(field, getattr(self, field.name), field.name)


PRESET_KEY = "preset"  # in a group that takes presets: the preset it starts from


def _group_values(field: dataclasses.Field, values: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """A group's values with its ``preset`` (if it names one) filled in under them."""
    if PRESET_KEY not in values:
        return values
    presets: Path | None = field.metadata.get("presets")
    name = values[PRESET_KEY]
    if presets is None:
        raise ConfigError(f"{key}.{PRESET_KEY}: the group {key} takes no presets")
    names = preset_names(presets)
    if name not in names:
        raise ConfigError(f"{key}.{PRESET_KEY}: unknown preset {name!r}; available presets: {', '.join(names)}")
    preset = load_yaml(presets / f"{name}.yaml")
    for dotted in field.metadata.get("not_from_preset", ()):
        *parents, leaf = dotted.split(".")
        node = preset
        for part in parents:
            node = node.get(part) if isinstance(node.get(part), dict) else {}
        node.pop(leaf, None)
    return _merge(preset, {k: v for k, v in values.items() if k != PRESET_KEY})


def build(cls: type[T], values: Mapping[str, Any], prefix: str = "") -> T:
    """Instantiate dataclass ``cls`` from a nested mapping, checking every key and type; a group's
    ``preset`` key is resolved first (``param(presets=...)``)."""
    fields = _fields(cls)
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        key = f"{prefix}{name}"
        if name not in fields:
            raise ConfigError(f"unknown key {key!r}; known keys here: {', '.join(sorted(fields))} "
                              "(see --help)")
        field, tp = fields[name]
        if dataclasses.is_dataclass(tp):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{key}: is a group of settings; set its keys like {key}.<name>=...")
            kwargs[name] = build(tp, _group_values(field, value, key), prefix=f"{key}.")
        else:
            kwargs[name] = _coerce(value, tp, key)
            _check_choice(field, kwargs[name], key)
            _check_bounds(field, kwargs[name], key)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        where = prefix.rstrip(".") or cls.__name__
        raise ConfigError(f"{where}: {exc}") from exc


def to_dict(config: Any) -> dict[str, Any]:
    """A plain, YAML/JSON-safe nested dict of a config (tuples become lists, paths strings)."""
    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, Path):
            return str(v)
        return v
    return plain(config)


def run_only_keys(cls: type) -> tuple[str, ...]:
    """The top-level fields of a config class declared ``param(..., run_only=True)``."""
    return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("run_only"))


def content(config: Any, drop: Sequence[str] = ()) -> dict[str, Any]:
    """``to_dict(config)`` without its run-only keys (at every level), without ``added`` keys that hold
    their default, and without the dotted keys in ``drop`` (``data.root``): what a cached result computed
    from ``config`` depends on."""
    def kept(v: Any, f: dataclasses.Field) -> bool:
        if f.metadata.get("run_only"):
            return False
        return not (f.metadata.get("added") and f.default is not dataclasses.MISSING and getattr(v, f.name) == f.default)

    def strip(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: strip(getattr(v, f.name)) for f in dataclasses.fields(v) if kept(v, f)}
        return to_dict(v)

    tree = strip(config)
    for key in drop:
        *parents, leaf = key.split(".")
        node = tree
        for part in parents:
            node = node.get(part, {})
        node.pop(leaf, None)
    return tree


def flatten(config: Mapping[str, Any], skip: Sequence[str] = ()) -> dict[str, Any]:
    """A nested config dict as flat dotted keys (``generator.ngf``), without the top-level keys in ``skip``."""
    flat: dict[str, Any] = {}

    def walk(node: Mapping[str, Any], prefix: str) -> None:
        for k, v in node.items():
            if isinstance(v, Mapping):
                walk(v, f"{prefix}{k}.")
            else:
                flat[f"{prefix}{k}"] = v

    walk({k: v for k, v in config.items() if k not in skip}, "")
    return flat


def config_differences(mine: Mapping[str, Any], theirs: Mapping[str, Any], run_keys: Sequence[str] = ()) -> list[str]:
    """The dotted keys (``generator.ngf``) whose values differ between two config dicts, ignoring the
    top-level ``run_keys`` a resumed run may change (output folder, device, threads, ...)."""
    a, b = flatten(mine, run_keys), flatten(theirs, run_keys)
    return sorted(k for k in set(a) | set(b) if a.get(k, _ABSENT) != b.get(k, _ABSENT))


_ABSENT = object()


def config_from_checkpoint(cls: type[T], state: Mapping[str, Any]) -> T:
    """Rebuild the typed config a checkpoint was trained with (the stored dict is plain data)."""
    return build(cls, state["config"])


def _merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in update.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _merge(dict(out[k]), v)
        else:
            out[k] = v
    return out


def _set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = tree
    for p in parts[:-1]:
        child = node.get(p)
        if not isinstance(child, dict):
            child = {}
            node[p] = child
        node = child
    node[parts[-1]] = value


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with errors that name the file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping of keys to values at the top level")
    return data


def preset_names(presets_dir: Path | None) -> list[str]:
    if presets_dir is None or not presets_dir.is_dir():
        return []
    return sorted(p.stem for p in presets_dir.glob("*.yaml"))


def resolve(cls: type[T], argv: Sequence[str], presets_dir: Path | None = None,
            default_preset: str | None = None) -> T:
    """Resolve ``key=value`` arguments (plus ``preset=`` / ``config=``) into a config instance."""
    overrides: dict[str, Any] = {}
    preset = default_preset
    config_file = None
    for arg in argv:
        if "=" not in arg:
            raise ConfigError(f"argument {arg!r} is not key=value (see --help)")
        key, raw = arg.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"argument {arg!r} has an empty key")
        if key == "preset":
            preset = raw
            continue
        if key == "config":
            config_file = raw
            continue
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem", None) or "not valid YAML"
            raise ConfigError(f"{key}: cannot read the value {raw!r} ({mark}); quote it or fix the brackets") \
                from None
        _set_dotted(overrides, key, value)
    values: dict[str, Any] = {}
    if preset:
        names = preset_names(presets_dir)
        if preset not in names:
            raise ConfigError(f"unknown preset {preset!r}; available presets: {', '.join(names) or 'none'}")
        values = _merge(values, load_yaml(presets_dir / f"{preset}.yaml"))
    if config_file:
        values = _merge(values, load_yaml(config_file))
    values = _merge(values, overrides)
    return build(cls, values)


def help_text(cls: type, prog: str, description: str, presets_dir: Path | None = None,
              default_preset: str | None = None) -> str:
    """``--help``: every key with its type, default and meaning; the defaults shown are the ones a
    run without arguments uses (the default preset's, where the command has one)."""
    lines = [f"usage: {prog} [preset=NAME] [config=FILE.yaml] [key=value ...] [--print-config] [--debug]", ""]
    if description:
        lines += [description.strip(), ""]
    names = preset_names(presets_dir)
    if names:
        lines += [f"presets: {', '.join(names)}", ""]
    lines.append("keys (default, meaning):")

    def walk(c: type, prefix: str, instance: Any) -> None:
        for name, (field, tp) in _fields(c).items():
            value = getattr(instance, name)
            if dataclasses.is_dataclass(tp):
                if field.metadata.get("presets") is not None:
                    lines.append(f"  {prefix}{name}.{PRESET_KEY}=NAME  start the group from that preset of its own "
                                 f"command (one of: {', '.join(preset_names(field.metadata['presets']))})")
                walk(tp, f"{prefix}{name}.", value)
                continue
            meaning = field.metadata.get("help", "")
            choices = field.metadata.get("choices")
            if choices:
                meaning += f" (one of: {', '.join(map(str, choices))})"
            if bounds_text(field):
                meaning += f" ({bounds_text(field)})"
            shown = yaml.safe_dump(to_dict(value) if dataclasses.is_dataclass(value) else
                                   to_dict({"v": value})["v"], default_flow_style=True).strip()
            shown = shown.removesuffix("\n...").removesuffix("...").strip()
            lines.append(f"  {prefix}{name}={shown}  {meaning}")

    if default_preset:
        lines[-1] = f"keys (default with preset={default_preset}, meaning):"
    walk(cls, "", resolve(cls, [], presets_dir, default_preset) if default_preset else cls())
    return "\n".join(lines)


def parse_config(cls: type[T], argv: Sequence[str] | None = None, *, prog: str, description: str = "",
                 presets_dir: Path | None = None, default_preset: str | None = None) -> T:
    """The entry-point front door: handles --help / --print-config and turns config errors into a
    one-line message and exit status 2 instead of a traceback."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "-h" in args or "--help" in args:
        print(help_text(cls, prog, description, presets_dir, default_preset))
        raise SystemExit(0)
    print_only = "--print-config" in args
    args = [a for a in args if a != "--print-config"]
    try:
        config = resolve(cls, args, presets_dir, default_preset)
    except ConfigError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if print_only:
        print(yaml.safe_dump(to_dict(config), sort_keys=False), end="")
        raise SystemExit(0)
    return config


# ----------------------------------------------------------------------------- one error path

DEBUG_FLAG = "--debug"
# Errors that mean "the input is wrong" (exit 2); anything else that escapes a command is a runtime
# failure (exit 1). Config, format and checkpoint errors of this project subclass ValueError.
BAD_INPUT: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError,
                                              IsADirectoryError)
EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_INTERRUPTED = 2, 1, 130


def close_progress_bars() -> None:
    """Close every progress bar still open, before a command prints its last line. A bar that an
    exception left open is closed only when it is collected: after the error message, so the redrawn
    bar, not the error, was the last line the user saw (a full disk mid-synthesis did this)."""
    from tqdm import tqdm  # here, not at the top: only a failing command needs it

    for bar in list(getattr(tqdm, "_instances", ())):  # tqdm's registry of open bars (a WeakSet)
        bar.close()
    sys.stderr.flush()


def error_line(exc: BaseException) -> str:
    """An exception as one line: its message's lines joined, or its type when it has none."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return text or type(exc).__name__


# What a training command reports as "training failed" (exit 1, one message) rather than a crash:
# files and data (OSError, MissingWeightsError), bad checkpoints, configs and formats (ValueError
# subclasses: CheckpointError, FormatError, MarketLayoutError) and a diverged loss.
TRAINING_FAILURES: tuple[type[BaseException], ...] = (OSError, ValueError, TrainingDiverged)


def train_command(prog: str, cls: type[T], argv: Sequence[str] | None, *, description: str,
                  presets_dir: Path | None, trainer: Callable[[T], Any]) -> int:
    """The body of a ``train`` command: parse the config, fit ``trainer(config)`` and print its summary
    as JSON (exit 0); a training failure is one message on stderr and exit 1, whichever trainer it is.
    ``trainer`` may import its module itself, so that ``--help`` does not wait for heavy imports."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    config = parse_config(cls, argv, prog=prog, description=description, presets_dir=presets_dir)
    try:
        summary = trainer(config).fit()
    except TRAINING_FAILURES as exc:
        close_progress_bars()
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    print(json.dumps(summary, indent=2))
    return 0


def entry_point(prog: str) -> Callable[[Callable[[list[str]], int]], Callable[[Sequence[str] | None], int]]:
    """Wrap a command's ``main(argv) -> int`` so that every command fails the same way: one line on
    stderr naming the problem, exit 2 for bad input, 1 for a runtime failure, 130 on Ctrl-C (trainers
    have saved a checkpoint by then), and no traceback unless ``--debug`` is given."""
    def wrap(main: Callable[[list[str]], int]) -> Callable[[Sequence[str] | None], int]:
        @functools.wraps(main)
        def guarded(argv: Sequence[str] | None = None) -> int:
            args = list(sys.argv[1:] if argv is None else argv)
            debug = DEBUG_FLAG in args
            args = [a for a in args if a != DEBUG_FLAG]
            try:
                return main(args)
            except KeyboardInterrupt:
                close_progress_bars()
                if debug:
                    traceback.print_exc()
                print(f"{prog}: interrupted; finished work and checkpoints are kept: rerun the same command to "
                      "resume", file=sys.stderr)
                return EXIT_INTERRUPTED
            except Exception as exc:  # the one place a command's uncaught error becomes a message
                close_progress_bars()
                if debug:
                    traceback.print_exc()
                code = EXIT_BAD_INPUT if isinstance(exc, BAD_INPUT) else EXIT_FAILURE
                hint = "" if debug else f" ({DEBUG_FLAG} shows the traceback)"
                print(f"{prog}: error: {error_line(exc)}{hint}", file=sys.stderr)
                return code
        return guarded
    return wrap
