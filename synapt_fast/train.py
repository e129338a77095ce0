"""The trainer: pre-training, fine-tuning, linear probing and scratch baselines from a recipe.

    torchrun --nproc_per_node 8 -m synapt_fast.train --recipe recipes/<name>.toml [key=value ...] [--resume]
    python -m synapt_fast.train --recipe recipes/<name>.toml          # one process, same code

One process per GPU (NCCL) or per CPU slot (gloo); multi-node runs are torchrun's business
(`--nnodes`, `--rdzv-endpoint`). The run folder `<output.dir>/<output.name>` receives the
resolved `recipe.toml`, `metrics.jsonl`, `checkpoint.pth.tar`, `model_best.pth.tar`,
`confusion.json` and finally `result.json`.

Determinism and resume: the loader's epoch `e` is a pure function of (seed, e, rank), the
torch generator is re-seeded from (seed, rank, step) before every step, and ranks stay in
lock-step, so the state after step `s` depends on nothing else. Only rank 0 writes checkpoints
(every epoch, every `output.checkpoint_minutes`, and on SIGTERM); `--resume` restores the
model, optimiser, schedule, scaler, step and the loader position (`loader.iterate(epoch,
start_batch)`), and the run finishes as if it had never stopped.

Uneven inputs: each training sample is read once per epoch across ranks, so ranks may get one
batch more or fewer. The step loop runs under DDP's `Join` (finished ranks shadow the gradient
all-reduce instead of hanging); afterwards the optimiser and scaler state of a rank that took
the most steps is broadcast, so every rank starts the next epoch with identical state.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from synapt_fast import checkpoint as ckpt
from synapt_fast.loader.prefetch import Prefetched
from synapt_fast.recipe import Recipe, RecipeError, flatten, load_recipe, write_recipe

STOP_EXIT_CODE = 143  # 128 + SIGTERM: the run was stopped and saved; resume it with --resume


class NonFiniteLoss(RuntimeError):
    pass


# --- processes and devices -----------------------------------------------------------------

@dataclass(frozen=True)
class Dist:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed() -> Dist:
    """Join torchrun's process group (NCCL on GPUs, gloo on CPUs), or run as one process."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    rank = int(os.environ.get("RANK", 0))
    local = int(os.environ.get("LOCAL_RANK", 0))
    if torch.cuda.is_available():
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            dist.init_process_group("nccl", device_id=device)
        else:
            dist.init_process_group("gloo")
    return Dist(rank, world, local, device)


def set_cpu_threads(workers: int) -> int:
    """torch intra-op threads for a CPU process: the cores left after the loader's `workers` DALI
    threads, at least one; an explicit OMP_NUM_THREADS (torchrun sets 1 per process) wins.

    On 2 cores, a tiny I3D epoch with 2 torch threads beside 2 DALI threads took 4-7x as long
    as with 1 (OpenMP threads spin waiting for each other while DALI holds the cores);
    1 torch + 2 DALI threads was also ~10 % faster than 1 + 1 (benchmarks/README.md).
    """
    if "OMP_NUM_THREADS" in os.environ:
        return torch.get_num_threads()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    cores //= max(int(os.environ.get("LOCAL_WORLD_SIZE", 1)), 1)
    torch.set_num_threads(max(1, cores - workers))
    return torch.get_num_threads()


def autocast_dtype(precision: str) -> torch.dtype | None:
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


# --- learning-rate schedule -------------------------------------------------------------------

class CosineSchedule:
    """Linear warm-up from 0, then cosine decay to `min_lr`, set per step on the optimiser."""

    def __init__(self, optimizer: torch.optim.Optimizer, *, lr: float, min_lr: float, warmup_steps: int,
                 total_steps: int):
        self.optimizer, self.lr, self.min_lr = optimizer, lr, min_lr
        self.warmup_steps, self.total_steps = warmup_steps, max(total_steps, 1)
        self.step_count = 0
        self._apply()

    def lr_at(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        span = max(self.total_steps - self.warmup_steps, 1)
        t = min(step - self.warmup_steps, span) / span
        return self.min_lr + (self.lr - self.min_lr) * 0.5 * (1 + math.cos(math.pi * t))

    def _apply(self) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(self.step_count)

    def step(self) -> None:
        self.step_count += 1
        self._apply()

    def set_step(self, step: int) -> None:
        self.step_count = step
        self._apply()

    def state_dict(self) -> dict:
        return {"step": self.step_count, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps}

    def load_state_dict(self, state: dict) -> None:
        self.set_step(state["step"])


# --- building the pieces ----------------------------------------------------------------------

def build_sampling(r: Recipe):
    from synapt_fast.loader import Sampling

    d = r.data
    return Sampling(mode=d.sampling, num_frames=d.num_frames, frames_per_segment=d.frames_per_segment,
                    interval=d.interval, num_clips=r.eval.num_clips, style=d.sampling_style)


def build_loaders(r: Recipe, env: Dist, sampling, layout: str):
    """Training and validation loaders for this rank (the clip layout is the model's)."""
    from synapt_fast.loader import Transform, make_loader

    d = r.data
    transform = Transform(size=d.image_size, train_crop=d.train_crop, flip=d.flip, eval_crops=r.eval.crops,
                          resize_ratio=d.resize_ratio, layout=layout)
    common = dict(backend=d.backend, decode=d.decode, rank=env.rank, world_size=env.world_size, seed=r.seed,
                  workers=d.workers, prefetch=d.prefetch)
    if d.backend == "dali":
        common["shuffle_buffer"] = d.shuffle_buffer
    train = make_loader(d.train, sampling, transform, train=True, batch_size=d.batch_size, **common)
    val = make_loader(d.val, sampling, transform, train=False, batch_size=r.eval.batch_size or d.batch_size,
                      **common)
    return train, val


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
    import json

    result = Path(r.model.init).parent / "result.json"
    if result.exists():
        try:
            return json.loads(result.read_text())["dataset"]
        except (ValueError, KeyError):
            pass
    return Path(r.model.init).stem


def steps_per_rank(num_samples: int, world: int, batch_size: int, epoch: int, *,
                   skip_single: bool = False) -> list[int]:
    """Optimiser steps each rank takes in `epoch`: its batches (the loader's contiguous, rotating
    shards), less a last batch of one clip when `skip_single` (BatchNorm cannot train on it)."""
    out = [0] * world
    for rank in range(world):
        shard = (rank + epoch) % world
        count = num_samples * (shard + 1) // world - num_samples * shard // world
        out[rank] = math.ceil(count / batch_size)
        if skip_single and count % batch_size == 1:
            out[rank] -= 1
    return out


def step_seed(seed: int, rank: int, step: int) -> int:
    return (seed * 1_000_003 + rank * 7_919 + step * 104_729) % (2**63)


def seed_step(seed: int, device: torch.device) -> None:
    """Re-seed the generators a training step draws from (dropout, drop-path).

    `torch.manual_seed` also walks every accelerator backend from Python (~0.1-0.2 ms); seeding
    the CPU generator and this GPU's directly costs microseconds.
    """
    torch.default_generator.manual_seed(seed)
    if device.type == "cuda":
        torch.cuda.manual_seed(seed)


# --- the trainer ------------------------------------------------------------------------------

class Trainer:
    def __init__(self, r: Recipe, env: Dist, *, resume: bool):
        self.r, self.env = r, env
        self.run_dir = r.run_dir()
        self.stop_requested = False
        self.amp_dtype = autocast_dtype(r.precision)
        if r.deterministic:
            torch.use_deterministic_algorithms(True)
        torch.manual_seed(r.seed)  # the same initial weights on every rank

        from synapt_fast.manifest import Manifest

        train_m, val_m = Manifest.load(Path(r.data.train)), Manifest.load(Path(r.data.val))
        if list(train_m.class_names) != list(val_m.class_names):
            raise RecipeError(f"data.val: its classes differ from data.train's ({r.data.val} vs {r.data.train})")
        self.class_names, self.dataset, self.val_set = list(train_m.class_names), train_m.set, val_m.set
        self.num_classes = len(self.class_names)

        self.sampling = build_sampling(r)
        self.frames_per_clip = self.sampling.frames_per_clip()
        model, self.load_summary = build_model(r, self.num_classes, self.frames_per_clip)
        layout = model.input_layout
        self.train_loader, self.val_loader = build_loaders(r, env, self.sampling, layout)
        self.memory_format = None
        if r.model.channels_last:
            self.memory_format = torch.channels_last_3d if layout == "NCTHW" else torch.channels_last
        model = model.to(env.device)
        if self.memory_format is not None:
            model = model.to(memory_format=self.memory_format)
        self.model = model
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.has_batchnorm = any(isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training
                                 for m in model.modules())
        self.ddp = None
        if env.world_size > 1:
            # Buffers (BatchNorm statistics) follow rank 0's batches and are broadcast from rank 0
            # after each epoch, not before every forward: the same statistics DDP's default gives,
            # one broadcast per epoch instead of one per step, and under `Join` DDP would take them
            # from whichever rank is still running, which a checkpoint of rank 0 cannot restore.
            self.ddp = nn.parallel.DistributedDataParallel(
                model, device_ids=[env.local_rank] if env.device.type == "cuda" else None,
                forward_sync_buffers=False)
        self.optimizer = torch.optim.SGD(self.params, lr=r.optim.lr, momentum=r.optim.momentum,
                                         weight_decay=r.optim.weight_decay, nesterov=r.optim.nesterov)
        self.num_train = train_m.num_samples
        self.steps_per_epoch = max(self._steps(0))
        self.total_steps = self.steps_per_epoch * r.optim.epochs
        from synapt_fast.schedule import build_schedule  # cosine or step, as the recipe says

        self.schedule = build_schedule(self.optimizer, r.optim, self.steps_per_epoch)
        self.scaler = torch.amp.GradScaler(env.device.type) if r.precision == "fp16" else None

        self.epoch, self.batch, self.step = 0, 0, 0
        self.best_top1, self.best_epoch = -1.0, -1
        self.train_seconds, self.train_clips = 0.0, 0
        self.last_eval = None

        from synapt_fast.metrics import MetricsLog

        last = self.run_dir / ckpt.LAST
        if last.exists() and not resume:
            raise RecipeError(f"output.name: {self.run_dir} already holds a checkpoint; pass --resume to "
                              f"continue it, or choose another output.name")
        if env.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log = MetricsLog(self.run_dir / "metrics.jsonl" if env.main else None)
        if resume and last.exists():
            self._restore(ckpt.load(last))
            self.log.truncate_after(self.step)
        elif env.main:
            (self.run_dir / "metrics.jsonl").unlink(missing_ok=True)
        if env.main:
            write_recipe(r, self.run_dir / "recipe.toml")
        self.last_save = time.monotonic()

    # --- checkpoints ------------------------------------------------------------------------
    def _state(self) -> dict:
        return {
            "format": ckpt.FORMAT, "epoch": self.epoch, "batch": self.batch, "step": self.step,
            "arch": self.r.model.name, "state_dict": self.model.state_dict(), "best_top1": self.best_top1,
            "best_epoch": self.best_epoch, "optimizer": self.optimizer.state_dict(),
            "scheduler": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler else {},
            "rng": ckpt.rng_state(), "class_names": self.class_names,
            "train_seconds": self.train_seconds, "train_clips": self.train_clips,
            "recipe": flatten(self.r),
        }

    def _restore(self, state: dict) -> None:
        changed = [k for k, v in state.get("recipe", {}).items()
                   if k not in ("output.checkpoint_minutes", "output.log_every", "data.workers", "data.prefetch")
                   and flatten(self.r).get(k) != v]
        if changed:
            raise RecipeError(f"--resume with a different recipe: {', '.join(changed)} changed since the checkpoint")
        self.model.load_state_dict(state["state_dict"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["scheduler"])
        if self.scaler and state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        ckpt.set_rng_state(state["rng"])
        self.epoch, self.batch, self.step = state["epoch"], state["batch"], state["step"]
        self.best_top1, self.best_epoch = state["best_top1"], state["best_epoch"]
        self.train_seconds, self.train_clips = state["train_seconds"], state["train_clips"]
        self.resumed_from = (self.epoch, self.batch)

    def save(self, *, best: bool = False) -> None:
        """Rank 0 writes the last state (and the best); ranks hold identical state, so one copy does."""
        self.last_save = time.monotonic()
        if not self.env.main:
            return
        state = self._state()
        ckpt.save_atomic(state, self.run_dir / ckpt.LAST)
        if best:
            ckpt.save_atomic(state, self.run_dir / ckpt.BEST)
        self.last_save = time.monotonic()

    # --- one step ---------------------------------------------------------------------------
    def forward_backward(self, video: torch.Tensor, label: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        net = self.ddp or self.model
        amp = torch.autocast(self.env.device.type, dtype=self.amp_dtype) if self.amp_dtype else nullcontext()
        with amp:
            logits = net(video)
        loss = F.cross_entropy(logits.float(), label, label_smoothing=self.r.optim.label_smoothing)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        if self.r.optim.clip_grad_norm > 0:
            norm = nn.utils.clip_grad_norm_(self.params, self.r.optim.clip_grad_norm)
        elif self.scaler:
            norm = nn.utils.get_total_norm([p.grad for p in self.params if p.grad is not None])
        else:
            # No clipping: skip the norm (a pass over every gradient); a non-finite loss shows
            # the same trouble one step later at the latest, on every rank.
            norm = loss.detach()
        if self.scaler:
            self.scaler.step(self.optimizer)  # skipped when the fp16 gradients overflowed
            self.scaler.update()
        else:
            self.optimizer.step()
        return loss.detach(), norm.detach()

    # --- epochs -----------------------------------------------------------------------------
    def train_epoch(self, epoch: int, start_batch: int, display) -> dict:
        r, env = self.r, self.env
        counts = self._steps(epoch)
        mine = steps_per_rank(self.num_train, env.world_size, r.data.batch_size, epoch)[env.rank]  # batches
        net = self.ddp or self.model
        net.train()
        display.start_epoch(epoch, r.optim.epochs, mine, start_batch)
        # Non-finite checks stay on the device until a sync point (logging, saving): no per-step sync.
        # fp16 tolerates a few overflowing steps (the scaler skips them and lowers its scale).
        limit = 25 if self.scaler else 1
        streak = torch.zeros((), device=env.device)
        worst = torch.zeros((), device=env.device)
        loss_sum = torch.zeros((), device=env.device)
        n_log, clips_log, wait_log, t_log = 0, 0, 0.0, time.perf_counter()
        epoch_loss, epoch_steps, epoch_clips, epoch_wait, t_epoch = 0.0, 0, 0, 0.0, time.perf_counter()
        join = nullcontext()
        if self.ddp is not None:
            from torch.distributed.algorithms.join import Join

            join = Join([self.ddp])
        # A thread fetches the next batch while this step runs (see loader/prefetch.py).
        it = Prefetched(self.train_loader.iterate(epoch, start_batch))
        i = start_batch
        with it, join:
            while True:
                t0 = time.perf_counter()
                batch = next(it, None)
                if batch is None:
                    break
                if len(batch.label) == 1 and self.has_batchnorm:
                    # BatchNorm cannot train on one clip; only an epoch's last batch can be this small.
                    i += 1
                    self.batch = i
                    continue
                video = batch.video.to(env.device, non_blocking=True)
                label = batch.label.to(env.device, non_blocking=True)
                if self.memory_format is torch.channels_last_3d:
                    video = video.contiguous(memory_format=self.memory_format)
                t1 = time.perf_counter()
                seed_step(step_seed(r.seed, env.rank, self.step), env.device)
                loss, norm = self.forward_backward(video, label)
                bad = ~torch.isfinite(norm) | ~torch.isfinite(loss)
                streak = (streak + 1) * bad
                worst = torch.maximum(worst, streak)
                loss_sum += torch.nan_to_num(loss, nan=0.0, posinf=0.0)
                i += 1
                self.batch, self.step = i, self.step + 1
                self.schedule.step()
                n = len(label)
                n_log += 1
                clips_log += n
                wait_log += t1 - t0
                save_due = env.main and (self.stop_requested or self._checkpoint_due())
                if n_log == r.output.log_every or save_due:
                    # Every rank checks at the same log steps; rank 0 also before it saves.
                    if worst.item() >= limit:
                        raise NonFiniteLoss(self._nonfinite_message(epoch, i))
                    dt = time.perf_counter() - t_log
                    mean_loss = loss_sum.item() / n_log
                    rate = clips_log * env.world_size / dt
                    done = self.step
                    eta = (self.total_steps - done) * dt / n_log
                    self.log.write("train", epoch=epoch, batch=i, step=self.step, loss=mean_loss,
                                   lr=self.optimizer.param_groups[0]["lr"], clips_per_s=rate,
                                   frames_per_s=rate * self.frames_per_clip, data_wait=wait_log / dt,
                                   peak_mem_mib=_peak(env.device))
                    display.update(i, loss=mean_loss, lr=self.optimizer.param_groups[0]["lr"], clips_per_s=rate,
                                   wait=wait_log / dt, eta_s=eta)
                    epoch_loss += loss_sum.item()
                    epoch_steps += n_log
                    epoch_clips += clips_log
                    epoch_wait += wait_log
                    loss_sum.zero_()
                    n_log, clips_log, wait_log, t_log = 0, 0, 0.0, time.perf_counter()
                    if save_due:
                        self.save()
                    if save_due and self.stop_requested:
                        # Other ranks carry on until rank 0 has saved and left; then their next
                        # collective fails and they exit too (see main).
                        raise SystemExit(STOP_EXIT_CODE)
        if worst.item() >= limit:
            raise NonFiniteLoss(self._nonfinite_message(epoch, i))
        epoch_loss += loss_sum.item()
        epoch_steps += n_log
        epoch_clips += clips_log
        epoch_wait += wait_log
        seconds = time.perf_counter() - t_epoch
        self._sync_after_epoch(counts)
        self.step = epoch * self.steps_per_epoch + max(counts)
        self.schedule.set_step(self.step)
        # Clips over all ranks (ranks run in parallel, so rank 0's time is the epoch's time).
        clips = epoch_clips * env.world_size
        self.train_seconds += seconds
        self.train_clips += clips
        rec = dict(epoch=epoch, step=self.step, loss=epoch_loss / max(epoch_steps, 1),
                   clips_per_s=clips / seconds if seconds else 0.0,
                   frames_per_s=clips * self.frames_per_clip / seconds if seconds else 0.0,
                   data_wait=epoch_wait / seconds if seconds else 0.0, seconds=seconds,
                   peak_mem_mib=_peak(env.device))
        self.log.write("epoch", **rec)
        return rec

    def _steps(self, epoch: int) -> list[int]:
        return steps_per_rank(self.num_train, self.env.world_size, self.r.data.batch_size, epoch,
                              skip_single=self.has_batchnorm)

    def _nonfinite_message(self, epoch: int, batch: int) -> str:
        where = self.run_dir / ckpt.LAST
        keep = f"the last good checkpoint is {where}" if where.exists() else "no checkpoint was written yet"
        return (f"non-finite loss or gradients in epoch {epoch + 1}, before step {self.step} (batch {batch}); "
                f"stopped without saving this state; {keep}. Lower optim.lr, set optim.clip_grad_norm, or use "
                f"precision = \"bf16\"/\"fp32\".")

    def _checkpoint_due(self) -> bool:
        minutes = self.r.output.checkpoint_minutes
        return minutes > 0 and time.monotonic() - self.last_save >= minutes * 60

    def _sync_after_epoch(self, counts: list[int]) -> None:
        """Give every rank rank 0's buffers, and the optimiser/scaler state of a rank that took the
        most steps (`counts`) (parameters are already equal: DDP's join broadcasts them)."""
        if self.ddp is None:
            return
        for b in self.model.buffers():
            dist.broadcast(b, 0)
        if min(counts) == max(counts):
            return
        src = counts.index(max(counts))
        for p in self.params:
            state = self.optimizer.state[p]
            if "momentum_buffer" not in state or state["momentum_buffer"] is None:
                state["momentum_buffer"] = torch.zeros_like(p)
            dist.broadcast(state["momentum_buffer"], src)
        if self.scaler:
            s = self.scaler.state_dict()
            obj = [s]
            dist.broadcast_object_list(obj, src)
            self.scaler.load_state_dict(obj[0])

    def evaluate(self):
        from synapt_fast.evaluate import evaluate

        return evaluate(self.model, self.val_loader.iterate(0), num_classes=self.num_classes, device=self.env.device,
                        autocast_dtype=self.amp_dtype, channels_last=self.memory_format is torch.channels_last_3d)

    def fit(self) -> dict:
        import json

        r, env = self.r, self.env
        display_enabled = env.main
        from synapt_fast.metrics import ProgressDisplay

        if env.main:
            ProgressDisplay(True, 0).print(
                f"[bold]{r.output.name}[/bold]: {r.model.name} {r.model.mode} on {self.dataset} "
                f"({self.num_train} clips, {self.num_classes} classes), {env.world_size} process(es) on "
                f"{env.device.type}, {r.precision}; {self.load_summary.splitlines()[0]}")
        with ProgressDisplay(display_enabled, self.total_steps) as display:
            while self.epoch < r.optim.epochs:
                e = self.epoch
                rec = self.train_epoch(e, self.batch, display)
                self.epoch, self.batch = e + 1, 0
                line = (f"epoch {e + 1}/{r.optim.epochs}: loss {rec['loss']:.4f}, {rec['clips_per_s']:.1f} clips/s, "
                        f"data wait {rec['data_wait']:.0%}")
                best = False
                if (e + 1) % r.eval.every_epochs == 0 or e + 1 == r.optim.epochs:
                    res = self.evaluate()
                    self.last_eval = res
                    self.log.write("eval", epoch=e, step=self.step, **res.metrics())
                    best = res.top1 > self.best_top1
                    if best:
                        self.best_top1, self.best_epoch = res.top1, e
                    if env.main:
                        (self.run_dir / "confusion.json").write_text(json.dumps(
                            {"epoch": e, "class_names": self.class_names, "matrix": res.confusion}) + "\n")
                    line += f"; val top-1 {res.top1:.3f} top-5 {res.top5:.3f} (clip {res.clip_top1:.3f})"
                display.print(line)
                self.save(best=best)
                if self.stop_requested and env.main:
                    raise SystemExit(STOP_EXIT_CODE)
        if self.last_eval is None:  # resumed after the last epoch's checkpoint
            self.last_eval = self.evaluate()
        sync = self._rank_weight_spread()
        result = self._result(sync)
        if env.main:
            (self.run_dir / "result.json").write_text(json.dumps(result, indent=1) + "\n")
        return result

    def _rank_weight_spread(self) -> float:
        """Largest difference between ranks of any parameter checksum (0.0 when ranks agree)."""
        sums = torch.stack([p.detach().double().sum() for p in self.model.parameters()]
                           + [p.detach().double().pow(2).sum() for p in self.model.parameters()]).cpu()
        if self.ddp is None:
            return 0.0
        parts = [None] * self.env.world_size
        dist.all_gather_object(parts, sums)
        return max((p - parts[0]).abs().max().item() for p in parts)

    def _result(self, weight_spread: float) -> dict:
        from synapt_fast.machine import machine_info

        machine = machine_info()
        r, ev = self.r, self.last_eval
        return {
            "run": r.output.name, "model": r.model.name, "mode": r.model.mode, "pretrained_on": pretrained_on(r),
            "dataset": self.dataset, "val_set": self.val_set, "num_classes": self.num_classes,
            "top1": ev.top1, "top5": ev.top5, "clip_top1": ev.clip_top1, "clip_top5": ev.clip_top5,
            "best_top1": self.best_top1, "best_epoch": self.best_epoch + 1,
            "train_clips_per_s": self.train_clips / self.train_seconds if self.train_seconds else 0.0,
            "train_frames_per_s": self.train_clips * self.frames_per_clip / self.train_seconds
            if self.train_seconds else 0.0,
            "eval_clips_per_s": ev.clips_per_s, "eval_videos": ev.videos, "eval_views": ev.views,
            "epochs": r.optim.epochs, "steps": self.step, "world_size": self.env.world_size,
            "global_batch": r.data.batch_size * self.env.world_size, "precision": r.precision,
            "device": self.env.device.type, "rank_weight_spread": weight_spread,
            "hyper_parameters": flatten(r), "machine": machine,
        }


def _peak(device: torch.device) -> float:
    from synapt_fast.metrics import peak_memory_mib

    return round(peak_memory_mib(device), 1)


# --- entry point ------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m synapt_fast.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--recipe", required=True, help="recipe TOML file")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's last checkpoint")
    p.add_argument("overrides", nargs="*", help="section.key=value overrides, checked like the file")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        recipe = load_recipe(args.recipe, args.overrides)
    except (RecipeError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    env = setup_distributed()
    if env.device.type == "cpu":
        set_cpu_threads(recipe.data.workers)
    trainer = None

    def on_sigterm(signum, frame):
        # Only a flag: the step loop saves at the next step boundary (rank 0) and exits.
        if trainer is not None:
            trainer.stop_requested = True
        else:
            raise SystemExit(STOP_EXIT_CODE)

    signal.signal(signal.SIGTERM, on_sigterm)
    from synapt_fast.manifest import ManifestError  # a missing split: one line naming it
    from synapt_fast.models.weights import CheckpointError  # an unreadable or wrong model.init: one line

    try:
        trainer = Trainer(recipe, env, resume=args.resume)
        trainer.fit()
        return 0
    except (RecipeError, CheckpointError, ManifestError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except NonFiniteLoss as e:
        if env.main:
            print(f"error: {e}", file=sys.stderr)
        return 3
    except SystemExit as e:
        if env.main and e.code == STOP_EXIT_CODE:
            print(f"stopped by SIGTERM; checkpoint saved in {recipe.run_dir()}; continue with --resume",
                  file=sys.stderr)
        return int(e.code or 0)
    except Exception:
        if trainer is not None and trainer.stop_requested:
            return STOP_EXIT_CODE  # a peer stopped first and the collective failed: expected
        raise
    finally:
        if dist.is_initialized():
            try:
                dist.destroy_process_group()
            except Exception:
                pass


if __name__ == "__main__":
    sys.exit(main())
