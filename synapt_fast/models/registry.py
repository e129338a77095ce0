"""One registry for every model variant: `@register_model` builders and `create_model(name, ...)`.

Each builder is a plain function named after its variant (`tsn_r50`, `i3d_r50_tiny`, ...) that takes
`num_classes` plus whatever keyword arguments its constructor accepts, and returns an `nn.Module`.
The family modules import this one and register themselves; `synapt_fast.models` imports every
family, and importing this module imports that package first, so the registry is always full.
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


def list_models(pattern: str | None = None) -> list[str]:
    """Sorted names of registered models, optionally only those containing `pattern`."""
    names = sorted(_BUILDERS)
    return [n for n in names if pattern is None or pattern in n]


def create_model(name: str, num_classes: int, **kwargs) -> nn.Module:
    """Build the registered model `name` with a `num_classes`-way classifier.

    Extra keyword arguments go to the builder (e.g. `dropout=0.3`, `num_frames=16`).
    Raises `KeyError` naming the known models when `name` is not registered.
    """
    try:
        builder = _BUILDERS[name]
    except KeyError:
        known = ", ".join(sorted(_BUILDERS))
        raise KeyError(f"unknown model {name!r}; known models: {known}") from None
    model = builder(num_classes=num_classes, **kwargs)
    model.registered_name = name  # what checkpoints record as `arch`, and what error messages suggest
    return model
