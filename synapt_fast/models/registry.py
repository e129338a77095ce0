"""One registry for every model variant: `@register_model` builders and `create_model(name, ...)`.

Each builder is a plain function named after its variant (`tsn_r50`, `i3d_r50_tiny`, ...) that takes
`num_classes` plus whatever keyword arguments its constructor accepts, and returns an `nn.Module`.
"""

from __future__ import annotations

from typing import Callable

import torch.nn as nn

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register `fn` under its function name; a second builder with the same name is an error."""
    name = fn.__name__
    if name in _BUILDERS:
        raise ValueError(f"model {name!r} is registered twice")
    _BUILDERS[name] = fn
    return fn


def _ensure_families_imported() -> None:
    # Importing the family modules runs their @register_model decorators; done lazily so that
    # `registry` itself has no import cycle with the modules that use it.
    from synapt_fast.models import resnet3d, timesformer, tsn  # noqa: F401


def list_models(pattern: str | None = None) -> list[str]:
    """Sorted names of registered models, optionally only those containing `pattern`."""
    _ensure_families_imported()
    names = sorted(_BUILDERS)
    return [n for n in names if pattern is None or pattern in n]


def create_model(name: str, num_classes: int, **kwargs) -> nn.Module:
    """Build the registered model `name` with a `num_classes`-way classifier.

    Extra keyword arguments go to the builder (e.g. `dropout=0.3`, `num_frames=16`).
    Raises `KeyError` naming the known models when `name` is not registered.
    """
    _ensure_families_imported()
    try:
        builder = _BUILDERS[name]
    except KeyError:
        known = ", ".join(sorted(_BUILDERS))
        raise KeyError(f"unknown model {name!r}; known models: {known}") from None
    model = builder(num_classes=num_classes, **kwargs)
    model.registered_name = name  # what checkpoints record as `arch`, and what error messages suggest
    return model
