"""From a recipe to a ready `Trainer`: data, model, optimiser, schedule and run folder.

Building happens in a fixed order because the torch generator seeded from the recipe draws the
initial weights (the same on every rank): model first, then loaders, devices and DDP.
"""

from __future__ import annotations

import inspect
import json
import sys
from pathlib import Path

import torch
import torch.nn as nn

from synapt_fast.format.manifest import Manifest

from .distributed import Dist
from .recipe import Recipe, RecipeError
from .run_dir import RunDir
from .schedule import build_schedule, steps_per_rank
from .trainer import Trainer


def build_sampling(r: Recipe):
    from synapt_fast.loader import Sampling

    d = r.data
    return Sampling(mode=d.sampling, num_frames=d.num_frames, frames_per_segment=d.frames_per_segment,
                    interval=d.interval, num_clips=r.eval.num_clips, style=d.sampling_style)


def build_loaders(r: Recipe, env: Dist, sampling, layout: str):
    """Training and validation loaders for this rank (the clip layout is the model's)."""
    from synapt_fast.format.codecs import decode_for_trainer
    from synapt_fast.loader import Transform, make_loader

    d = r.data
    # Channels-last 3D models get their clips from DALI in that memory format (no copy per step).
    channels_last = r.model.channels_last and layout == "NCTHW" and d.backend == "dali"
    transform = Transform(size=d.image_size, train_crop=d.train_crop, flip=d.flip, eval_crops=r.eval.crops,
                          resize_ratio=d.resize_ratio, layout=layout, channels_last=channels_last)
    common = dict(backend=d.backend, decode=decode_for_trainer(str(env.device), d.decode), rank=env.rank, world_size=env.world_size, seed=r.seed,
                  workers=d.workers, prefetch=d.prefetch)
    if d.backend == "dali":
        common["shuffle_buffer"] = d.shuffle_buffer
        # Host batches for a GPU trainer are page-locked, so their copy to the GPU is asynchronous.
        common["pin_memory"] = env.device.type == "cuda"
    train = make_loader(d.train, sampling, transform, train=True, batch_size=d.batch_size, **common)
    val = make_loader(d.val, sampling, transform, train=False, batch_size=r.eval.batch_size or d.batch_size,
                      **common)
    return train, val


def checked_split(r: Recipe, split: str) -> Manifest:
    """The split's manifest after the checks the loaders make (sizes, index bounds, totals), so a
    broken or edited split stops the run before any model is built, naming the recipe key."""
    from synapt_fast.format.verify import ShardError, quick_check

    path = getattr(r.data, split)
    try:
        return quick_check(Path(path))
    except ShardError as e:
        if not (Path(path) / "manifest.json").is_file():
            raise RecipeError(f"data.{split}: {e}") from None
        raise RecipeError(f"data.{split}: {e}\n  (`synapt-fast verify {path}` runs every check)") from None


def build_model_checked(r: Recipe, num_classes: int, frames_per_clip: int) -> tuple[nn.Module, str]:
    """`build_model`, with an unknown model or an unreadable `model.init` as a recipe error."""
    import pickle

    from synapt_fast.models.weights import CheckpointError, CheckpointMismatch

    try:
        return build_model(r, num_classes, frames_per_clip)
    except CheckpointError:
        raise  # already one line naming the file (empty, unreadable, another variant)
    except KeyError as e:
        raise RecipeError(f"model.name: {e.args[0] if e.args else e}") from None
    except (CheckpointMismatch, OSError, EOFError, pickle.UnpicklingError, RuntimeError, ValueError) as e:
        if not r.model.init:
            raise
        what = "is empty or cut short" if isinstance(e, EOFError) else f"cannot be loaded ({e})"
        raise RecipeError(f"model.init: {r.model.init} {what}") from None


def build_model(r: Recipe, num_classes: int, frames_per_clip: int) -> tuple[nn.Module, str]:
    """The model with its initial weights and transfer set-up; returns (model, load summary)."""
    from synapt_fast.models import create_model, load_checkpoint, load_imagenet, prepare_transfer

    m = r.model
    model = create_model(m.name, num_classes=num_classes, num_frames=frames_per_clip,
                         image_size=r.data.image_size, dropout=m.dropout)
    summary = "random initialisation"
    if m.init:
        loader = load_imagenet if m.init_format == "imagenet" else load_checkpoint
        summary = loader(model, m.init).summary()
    if m.mode != "pretrain":
        prepare_transfer(model, m.mode, num_classes)
    return model, summary


def pretrained_on(r: Recipe) -> str:
    """The pre-training source named in result.json."""
    if r.model.pretrained_on:
        return r.model.pretrained_on
    if r.model.mode in ("pretrain", "scratch") and not r.model.init:
        return "none"
    if r.model.init_format == "imagenet":
        return "imagenet"
    result = Path(r.model.init).parent / "result.json"
    if result.exists():
        try:
            return json.loads(result.read_text())["dataset"]
        except (ValueError, KeyError):
            pass
    return Path(r.model.init).stem


def cached_probe(r: Recipe, env: Dist, model: nn.Module, train_loader, val_loader, memory_format):
    """Feature loaders over the video loaders and the head-only module a cached probe trains."""
    from .probe_cache import CachedFeatures, HeadOnly, cache_key
    from .trainer import autocast_dtype

    cache = Path(r.output.dir) / "feature_cache" / cache_key(r, env.world_size)
    common = dict(rank=env.rank, device=env.device, autocast_dtype=autocast_dtype(r.precision),
                  memory_format=memory_format)
    return (CachedFeatures(train_loader, model, cache, name="train", **common),
            CachedFeatures(val_loader, model, cache, name="val", **common), HeadOnly(model))


def wrap_ddp(model: nn.Module, env: Dist) -> nn.Module | None:
    if env.world_size == 1:
        return None
    # Buffers (BatchNorm statistics) follow rank 0's batches and are broadcast from rank 0 after
    # each epoch, not before every forward: the same statistics DDP's default gives, one broadcast
    # per epoch instead of one per step, and under `Join` DDP would take them from whichever rank
    # is still running, which a checkpoint of rank 0 cannot restore.
    ddp = nn.parallel.DistributedDataParallel
    no_sync = no_buffer_sync_kwargs(inspect.signature(ddp).parameters)
    return ddp(model, device_ids=[env.device.index] if env.device.type == "cuda" else None, **no_sync)


def no_buffer_sync_kwargs(ddp_parameters) -> dict:
    """DDP's switch for "do not broadcast buffers before each forward": torch 2.13 calls it
    `forward_sync_buffers`; older releases (GPU images often carry them) only know `broadcast_buffers`."""
    return {"forward_sync_buffers": False} if "forward_sync_buffers" in ddp_parameters else {"broadcast_buffers": False}


def build_trainer(r: Recipe, env: Dist, *, resume: bool) -> Trainer:
    if r.deterministic:
        torch.use_deterministic_algorithms(True)
    torch.manual_seed(r.seed)  # the same initial weights on every rank

    train_m, val_m = checked_split(r, "train"), checked_split(r, "val")
    if list(train_m.class_names) != list(val_m.class_names):
        raise RecipeError(f"data.val: its classes differ from data.train's ({r.data.val} vs {r.data.train})")
    class_names = list(train_m.class_names)
    if env.main:
        from .resolution import resolution_warnings

        for warning in resolution_warnings(r, train_m, val_m):  # clips upscaled to the crop: say so
            print(f"warning: {warning}", file=sys.stderr)
    if val_m.num_samples < env.world_size:
        raise RecipeError(f"data.val: {r.data.val} has {val_m.num_samples} clip(s), fewer than the "
                          f"{env.world_size} processes; every process needs at least one to evaluate")

    sampling = build_sampling(r)
    model, load_summary = build_model_checked(r, len(class_names), sampling.frames_per_clip())
    layout = model.input_layout
    has_batchnorm = any(isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training for m in model.modules())
    steps_per_epoch = max(steps_per_rank(train_m.num_samples, env.world_size, r.data.batch_size, 0,
                                         skip_single=has_batchnorm))
    if steps_per_epoch == 0:
        raise RecipeError(f"data.train: {r.data.train} has {train_m.num_samples} clip(s): with "
                          f"{env.world_size} process(es) no batch of two or more clips is left to train "
                          f"{r.model.name} on (BatchNorm cannot train on one clip)")
    train_loader, val_loader = build_loaders(r, env, sampling, layout)
    memory_format = None
    if r.model.channels_last:
        memory_format = torch.channels_last_3d if layout == "NCTHW" else torch.channels_last
    model = model.to(env.device)
    if memory_format is not None:
        model = model.to(memory_format=memory_format)
    net = model
    if r.model.mode == "linear_probe" and r.model.probe == "cached":
        train_loader, val_loader, net = cached_probe(r, env, model, train_loader, val_loader, memory_format)
        memory_format = None  # the trainer now sees feature vectors, not clips
    ddp = wrap_ddp(net, env)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=r.optim.lr, momentum=r.optim.momentum,
                                weight_decay=r.optim.weight_decay, nesterov=r.optim.nesterov)
    schedule = build_schedule(optimizer, r.optim, steps_per_epoch)  # cosine or step, as the recipe says
    scaler = torch.amp.GradScaler(env.device.type) if r.precision == "fp16" else None

    trainer = Trainer(
        r, env, model=model, ddp=ddp, optimizer=optimizer, schedule=schedule, scaler=scaler,
        train_loader=train_loader, val_loader=val_loader, run_dir=RunDir(r.run_dir(), main=env.main),
        class_names=class_names, dataset=train_m.set, val_set=val_m.set, num_train=train_m.num_samples,
        frames_per_clip=sampling.frames_per_clip(), memory_format=memory_format, has_batchnorm=has_batchnorm,
        steps_per_epoch=steps_per_epoch, load_summary=load_summary, pretrained_on=pretrained_on(r), net=net)
    state = trainer.run_dir.checkpoint_to_resume(resume)
    if state is not None:
        trainer.restore(state)
    trainer.run_dir.start(r, resumed_step=trainer.step if state is not None else None)
    return trainer
