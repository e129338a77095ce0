"""Training recipes: complete, flat TOML files loaded into typed dataclasses.

A recipe has a few top-level keys (`seed`, `precision`) and one table per concern: `[data]`,
`[model]`, `[optim]`, `[eval]`, `[output]`. No inheritance: every file says everything about its
run. Unknown keys, missing required keys and values of the wrong type are errors that name the
key; `section.key=value` overrides from the command line go through the same checks (a bare
`key=value` works when the key name is unique across sections).

    recipe = load_recipe("recipes/tsn_r50_8x1_synthetic150_pretrain.toml", ["optim.lr=0.02"])
    recipe.optim.lr  # 0.02
    write_recipe(recipe, run_dir / "recipe.toml")  # the resolved recipe, saved with every run
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path

from synapt_fast.atomic import write_atomic

TRAINING_MODES = ("pretrain", "finetune", "linear_probe", "scratch")
SCHEDULES = ("cosine", "step")
PRECISIONS = ("fp32", "bf16", "fp16")


class RecipeError(ValueError):
    """A recipe (or override) that does not fit the schema; the message names the key."""


@dataclass
class Data:
    """What the model sees: shard splits, frame sampling, crops and the per-process batch."""

    train: str  # split folder of the training shards, e.g. "shards/synthetic150/train"
    val: str  # split folder evaluated during and after training
    batch_size: int  # clips per process (per GPU) and step
    sampling: str = "segments"  # segments (TSN) | dense (I3D, R(2+1)D, TimeSformer 8x32) | uniform
    # where the frames fall: ibm (IBM's video_dataset.py: one offset shared by the segments, evaluation
    # clips from frame 0, short clips loop) | centred (offset per segment, centred clips, last frame
    # repeated); see synapt_fast/loader/sampling.py
    sampling_style: str = "ibm"
    num_frames: int = 8  # segments, or frames of a dense/uniform clip
    frames_per_segment: int = 1  # segments only
    interval: int = 1  # dense only: stride between sampled frames
    image_size: int = 224  # crop side fed to the model
    train_crop: str = "multiscale"  # multiscale (TSN) | random_resized | center | jitter (short side 256-320 x size/224)
    flip: bool = True  # random horizontal flip when training
    resize_ratio: float = 0.875  # evaluation: short side resized to image_size / resize_ratio, in (0, 1]
    backend: str = "dali"  # dali | reference (torch DataLoader + PyAV)
    decode: str = "auto"  # auto | cpu | gpu (DALI decoder placement)
    workers: int = 2  # DALI threads (or DataLoader processes) per process
    prefetch: int = 2  # batches queued ahead
    shuffle_buffer: int = 256  # DALI reader shuffle buffer (samples)


@dataclass
class Model:
    """Which network, where its weights come from, and what trains."""

    name: str  # registered model name (synapt_fast.models.list_models())
    mode: str  # pretrain | finetune | linear_probe | scratch
    init: str = ""  # checkpoint to start from (required for finetune and linear_probe)
    init_format: str = "checkpoint"  # checkpoint (IBM/SynAPT, TimeSformer, ours) | imagenet (2D ResNet / ViT)
    pretrained_on: str = ""  # label of the pre-training source in result.json ("" : inferred)
    dropout: float = 0.5  # before the classifier (the paper's setting)
    channels_last: bool = False  # channels-last memory format (helps some 3D CNNs)
    # linear_probe only: "cached" runs the frozen backbone once per epoch's clips and caches the
    # features under <output.dir>/feature_cache/, shared by every run (sweep cell) with the same
    # backbone, data and views; "online" recomputes them in every run.
    probe: str = "online"


@dataclass
class Optim:
    """SGD with momentum; cosine decay or steps, with optional linear warm-up; gradient clipping."""

    lr: float  # peak learning rate for the whole (global) batch the recipe describes
    epochs: int
    schedule: str = "cosine"  # cosine (to min_lr) | step (lr x step_factor at each of step_epochs)
    step_epochs: list[float] = field(default_factory=list)  # step only: epochs where the lr drops
    step_factor: float = 0.1  # step only: the multiplier at each drop
    weight_decay: float = 1e-4
    momentum: float = 0.9
    nesterov: bool = False
    warmup_epochs: float = 0.0  # linear warm-up from 0 over this many epochs
    min_lr: float = 0.0  # cosine floor
    clip_grad_norm: float = 0.0  # max global gradient norm; 0 turns clipping off
    label_smoothing: float = 0.0


@dataclass
class Eval:
    """Evaluation views and period."""

    every_epochs: int = 1  # evaluate every this many epochs (and always after the last)
    num_clips: int = 1  # temporal clips per video (dense sampling)
    crops: int = 1  # spatial crops per clip: 1, 3 or 10
    batch_size: int = 0  # videos per process and step; 0: the training batch size


@dataclass
class Output:
    """Where the run goes and how often it is saved and logged."""

    dir: str = "runs"  # runs root; the run folder is <dir>/<name>
    name: str = ""  # run name ("" : the recipe file's stem)
    checkpoint_minutes: float = 30.0  # also checkpoint mid-epoch this often (0: only at epoch ends)
    log_every: int = 20  # steps between metrics.jsonl training records (and progress lines in a log)
    csv: bool = True  # metrics.csv beside metrics.jsonl
    tensorboard: bool = True  # TensorBoard event files in <run>/tensorboard/


@dataclass
class Recipe:
    data: Data
    model: Model
    optim: Optim
    eval: Eval = field(default_factory=Eval)
    output: Output = field(default_factory=Output)
    seed: int = 0
    precision: str = "fp32"  # fp32 | bf16 (autocast) | fp16 (autocast + gradient scaler)
    deterministic: bool = False  # torch deterministic algorithms (CPU runs are deterministic anyway)

    def run_dir(self) -> Path:
        return Path(self.output.dir) / self.output.name


SECTIONS = {"data": Data, "model": Model, "optim": Optim, "eval": Eval, "output": Output}
CHOICES = {
    "data.sampling": ("segments", "dense", "uniform"),
    "data.sampling_style": ("ibm", "centred"),
    "data.train_crop": ("multiscale", "random_resized", "center", "jitter"),
    "data.backend": ("dali", "reference"),
    "data.decode": ("auto", "cpu", "gpu"),
    "model.mode": TRAINING_MODES,
    "model.init_format": ("checkpoint", "imagenet"),
    "model.probe": ("online", "cached"),
    "optim.schedule": SCHEDULES,
    "eval.crops": (1, 3, 10),
    "precision": PRECISIONS,
}
POSITIVE = {"data.batch_size", "data.num_frames", "data.frames_per_segment", "data.interval", "data.image_size",
            "data.workers", "optim.epochs", "eval.every_epochs", "eval.num_clips", "output.log_every"}


def _fields(cls) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def _type_of(cls, name: str):
    return typing.get_type_hints(cls)[name]


def _check_value(key: str, value, typ):
    """`value` as `typ` (ints are accepted where floats are expected), or a RecipeError."""
    if typing.get_origin(typ) is list:
        if not isinstance(value, list):
            raise RecipeError(f"{key}: expected a list, got {type(value).__name__} {value!r}")
        (item,) = typing.get_args(typ)
        return [_check_value(f"{key}[{i}]", v, item) for i, v in enumerate(value)]
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if typ is float and isinstance(value, float) and not math.isfinite(value):
        # TOML and float() both accept nan and inf; no recipe number means either
        raise RecipeError(f"{key}: must be a finite number, got {value!r}")
    if typ is bool and not isinstance(value, bool) or typ is int and (isinstance(value, bool)
                                                                        or not isinstance(value, int)):
        raise RecipeError(f"{key}: expected {typ.__name__}, got {type(value).__name__} {value!r}")
    if not isinstance(value, typ):
        raise RecipeError(f"{key}: expected {typ.__name__}, got {type(value).__name__} {value!r}")
    return value


def _build(cls, table: dict, where: str):
    known = _fields(cls)
    for key in table:
        if key not in known:
            raise RecipeError(f"{where}{key}: unknown key (known: {', '.join(known)})")
    kwargs = {}
    for name, f in known.items():
        key = f"{where}{name}"
        typ = _type_of(cls, name)
        if dataclasses.is_dataclass(typ):
            sub = table.get(name, {})
            if not isinstance(sub, dict):
                raise RecipeError(f"{key}: expected a table [{name}], got {type(sub).__name__}")
            kwargs[name] = _build(typ, sub, f"{name}.")
        elif name in table:
            kwargs[name] = _check_value(key, table[name], typ)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise RecipeError(f"{key}: required key missing")
    return cls(**kwargs)


def _validate(r: Recipe) -> None:
    flat = flatten(r)
    for key, allowed in CHOICES.items():
        if flat[key] not in allowed:
            raise RecipeError(f"{key}: must be one of {', '.join(map(str, allowed))}, got {flat[key]!r}")
    for key in POSITIVE:
        if flat[key] < 1:
            raise RecipeError(f"{key}: must be >= 1, got {flat[key]}")
    for key in ("optim.lr", "optim.weight_decay", "optim.momentum", "optim.warmup_epochs", "optim.min_lr",
                "optim.clip_grad_norm", "output.checkpoint_minutes", "eval.batch_size"):
        if flat[key] < 0:
            raise RecipeError(f"{key}: must be >= 0, got {flat[key]}")
    if not 0 < r.data.resize_ratio <= 1:
        raise RecipeError(f"data.resize_ratio: must be in (0, 1] (the evaluation short side is image_size / "
                          f"resize_ratio), got {r.data.resize_ratio}")
    if r.optim.schedule == "step":
        steps = r.optim.step_epochs
        if not steps:
            raise RecipeError("optim.step_epochs: required for optim.schedule = 'step' (e.g. [11, 14])")
        if any(b <= a for a, b in zip(steps, steps[1:])) or not 0 < steps[0] or steps[-1] >= r.optim.epochs:
            raise RecipeError(f"optim.step_epochs: must increase strictly and lie inside (0, optim.epochs = "
                              f"{r.optim.epochs}), got {steps}")
        if not 0 < r.optim.step_factor < 1:
            raise RecipeError(f"optim.step_factor: must be in (0, 1), got {r.optim.step_factor}")
    elif r.optim.step_epochs:
        raise RecipeError(f"optim.step_epochs: only used with optim.schedule = 'step' (it is {r.optim.schedule!r})")
    if not 0 <= r.model.dropout < 1:
        raise RecipeError(f"model.dropout: must be in [0, 1), got {r.model.dropout}")
    if not 0 <= r.optim.label_smoothing < 1:
        raise RecipeError(f"optim.label_smoothing: must be in [0, 1), got {r.optim.label_smoothing}")
    if r.optim.warmup_epochs > r.optim.epochs:
        raise RecipeError(f"optim.warmup_epochs: {r.optim.warmup_epochs} is longer than optim.epochs")
    if r.model.mode in ("finetune", "linear_probe") and not r.model.init:
        raise RecipeError(f"model.init: required for model.mode = {r.model.mode!r} (a pre-trained checkpoint)")
    if r.model.mode == "scratch" and r.model.init:
        raise RecipeError("model.init: must be empty for model.mode = 'scratch' (random initialisation)")
    if not r.output.name:
        raise RecipeError("output.name: empty (set it, or load the recipe from a file to default to its stem)")
    name = Path(r.output.name)
    if name.is_absolute() or ".." in name.parts or r.output.name.startswith("~"):
        raise RecipeError(f"output.name: {r.output.name!r} would leave output.dir; use a relative name "
                          f"without '..' (sub-folders are fine: sweep/cell)")
    from synapt_fast.models import list_models  # imported late: the model zoo imports torch

    known = list_models()
    if r.model.name not in known:
        raise RecipeError(f"model.name: unknown model {r.model.name!r} (known: {', '.join(known)})")


def from_dict(table: dict, overrides: list[str] = (), *, default_name: str = "") -> Recipe:
    """A checked `Recipe` from a parsed TOML table plus `key=value` overrides."""
    table = {k: (dict(v) if isinstance(v, dict) else v) for k, v in table.items()}
    for item in overrides:
        apply_override(table, item)
    if default_name and not table.get("output", {}).get("name"):
        table.setdefault("output", {})["name"] = default_name
    recipe = _build(Recipe, table, "")
    _validate(recipe)
    return recipe


def load_recipe(path: str | Path, overrides: list[str] = ()) -> Recipe:
    """Read and check a recipe file; the run name defaults to the file's stem."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            table = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise RecipeError(f"{path}: not valid TOML: {e}") from None
    return from_dict(table, overrides, default_name=path.stem)


def _resolve_key(key: str) -> tuple[str | None, str]:
    """`section.name` or a bare `name` (unique across sections and top level) -> (section, name)."""
    if "." in key:
        section, name = key.split(".", 1)
        if section not in SECTIONS:
            raise RecipeError(f"{key}: unknown section {section!r} (known: {', '.join(SECTIONS)})")
        if name not in _fields(SECTIONS[section]):
            raise RecipeError(f"{key}: unknown key (known in [{section}]: {', '.join(_fields(SECTIONS[section]))})")
        return section, name
    top = [n for n in _fields(Recipe) if n not in SECTIONS]
    if key in top:
        return None, key
    owners = [s for s, cls in SECTIONS.items() if key in _fields(cls)]
    if len(owners) == 1:
        return owners[0], key
    if owners:
        raise RecipeError(f"{key}: ambiguous, say which: {', '.join(f'{s}.{key}' for s in owners)}")
    raise RecipeError(f"{key}: unknown key")


def _parse_value(key: str, text: str, typ):
    if typing.get_origin(typ) is list:  # key=1,2,3 (key= for an empty list)
        (item,) = typing.get_args(typ)
        return [_parse_value(key, part.strip(), item) for part in text.strip("[]").split(",") if part.strip()]
    if typ is str:
        return text
    if typ is bool:
        low = text.lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no"):
            return False
        raise RecipeError(f"{key}: expected bool (true/false), got {text!r}")
    try:
        return typ(text)
    except ValueError:
        raise RecipeError(f"{key}: expected {typ.__name__}, got {text!r}") from None


def apply_override(table: dict, item: str) -> None:
    """Apply one `key=value` override to a parsed recipe table, converting `value` to the key's type."""
    if "=" not in item:
        raise RecipeError(f"override {item!r}: expected key=value")
    key, text = item.split("=", 1)
    key = key.strip()
    section, name = _resolve_key(key)
    cls = SECTIONS[section] if section else Recipe
    value = _parse_value(key, text.strip(), _type_of(cls, name))
    if section:
        table.setdefault(section, {})[name] = value
    else:
        table[name] = value


def to_dict(r: Recipe) -> dict:
    return dataclasses.asdict(r)


def flatten(r: Recipe) -> dict:
    """{"data.train": ..., "seed": ...}: every key with its section prefix."""
    out = {}
    for k, v in to_dict(r).items():
        if isinstance(v, dict):
            out.update({f"{k}.{kk}": vv for kk, vv in v.items()})
        else:
            out[k] = v
    return out


def _toml_value(v) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    s = str(v).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{s}"'


def dumps(r: Recipe) -> str:
    """The recipe as TOML text (every key, defaults included); `from_dict(tomllib.loads(...))` round-trips."""
    d = to_dict(r)
    lines = [f"{k} = {_toml_value(v)}" for k, v in d.items() if not isinstance(v, dict)]
    for section in SECTIONS:
        lines += ["", f"[{section}]"] + [f"{k} = {_toml_value(v)}" for k, v in d[section].items()]
    return "\n".join(lines) + "\n"


def write_recipe(r: Recipe, path: str | Path) -> None:
    write_atomic(Path(path), dumps(r), durable=False)
