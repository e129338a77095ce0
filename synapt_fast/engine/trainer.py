"""The trainer: pre-training, fine-tuning, linear probing and scratch baselines, built from a recipe
by `engine.build.build_trainer` and run by `engine.main` (`torchrun -m synapt_fast.train`).

One process per GPU (NCCL) or per CPU slot (gloo); multi-node runs are torchrun's business
(`--nnodes`, `--rdzv-endpoint`). The run folder `<output.dir>/<output.name>` receives the
resolved `recipe.toml`, `metrics.jsonl`, `checkpoint.pth.tar`, `model_best.pth.tar`,
`confusion.json` (the best epoch's, with per-class accuracy) and finally `result.json`.

Determinism and resume: the loader's epoch `e` is a pure function of (seed, e, rank), the
torch generator is re-seeded from (seed, rank, step) before every step (`synapt_fast.seeds`), and
ranks stay in lock-step, so the state after step `s` depends on nothing else. Only rank 0 writes
checkpoints (every epoch, every `output.checkpoint_minutes`, and on SIGTERM); `--resume` restores
the model, optimiser, schedule, scaler, step and the loader position (`loader.iterate(epoch,
start_batch)`), and the run finishes as if it had never stopped.

Uneven inputs: each training sample is read once per epoch across ranks, so ranks may get one
batch more or fewer. The step loop runs under DDP's `Join` (finished ranks shadow the gradient
all-reduce instead of hanging); afterwards the optimiser and scaler state of a rank that took
the most steps is broadcast, so every rank starts the next epoch with identical state.
"""

from __future__ import annotations

import time
from contextlib import nullcontext

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from synapt_fast.loader.prefetch import Prefetched
from synapt_fast.seeds import seed_step, step_seed

from . import checkpoint as ckpt
from .distributed import Dist
from .guard import NonFiniteGuard
from .metrics import peak_memory_mib
from .recipe import Recipe, RecipeError, flatten
from .run_dir import RunDir
from .schedule import steps_per_rank
from .step_meter import StepMeter, Window

STOP_EXIT_CODE = 143  # 128 + SIGTERM: the run was stopped and saved; resume it with --resume
# Recipe keys a resumed run may change: where the run folder lives (moved runs resume), speed and
# logging; never the result.
RESUMABLE_CHANGES = ("output.dir", "output.checkpoint_minutes", "output.log_every", "output.csv",
                     "output.tensorboard", "data.workers", "data.prefetch")


class DataError(RuntimeError):
    """The loader failed on the shards (most often a clip that does not decode)."""


def shards_read(split_dir, rank: int, world_size: int, epoch: int) -> list[str]:
    """The tars of `split_dir` that `rank` reads in `epoch` (its contiguous share of the samples)."""
    from synapt_fast.format.manifest import Manifest
    from synapt_fast.loader.partition import rank_shard, shard_range

    m = Manifest.load(split_dir)
    mine = shard_range(m.num_samples, rank_shard(rank, epoch, world_size), world_size)
    names, first = [], 0
    for s in m.shards:
        if first < mine.stop and mine.start < first + s.samples:
            names.append(s.tar)
        first += s.samples
    return names


def loader_failure(key: str, split_dir, epoch: int, batch: int, error: Exception, *, rank: int = 0,
                   world_size: int = 1) -> DataError:
    """DALI's decoder errors name neither shard nor sample: name the split, the tars this rank was
    reading and the command that finds the bad clip."""
    try:
        tars = shards_read(split_dir, rank, world_size, epoch)
        where = f" (rank {rank} reads {', '.join(tars[:6])}{' ...' if len(tars) > 6 else ''})"
    except Exception:  # noqa: BLE001 - the message must not fail in its turn
        where = ""
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return DataError(f"{key}: the loader failed on {split_dir}{where} in epoch {epoch + 1} near batch {batch + 1}: "
                     f"{first_line}\n  a clip that passes the size checks may still not decode: "
                     f"`synapt-fast verify --decode {split_dir}` finds every bad clip")


def confusion_record(epoch: int, class_names: list[str], matrix: list[list[int]]) -> dict:
    """confusion.json: the video-level confusion matrix ([true][predicted]) and per-class accuracy."""
    per_class = {name: (row[i] / sum(row) if sum(row) else None)
                 for i, (name, row) in enumerate(zip(class_names, matrix))}
    return {"epoch": epoch, "class_names": class_names, "matrix": matrix, "per_class_top1": per_class}


def autocast_dtype(precision: str) -> torch.dtype | None:
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


class Trainer:
    def __init__(self, r: Recipe, env: Dist, *, model: nn.Module, ddp: nn.Module | None, optimizer, schedule,
                 scaler, train_loader, val_loader, run_dir: RunDir, class_names: list[str], dataset: str,
                 val_set: str, num_train: int, frames_per_clip: int, memory_format, has_batchnorm: bool,
                 steps_per_epoch: int, load_summary: str, pretrained_on: str, net: nn.Module | None = None):
        self.r, self.env = r, env
        # What a step runs: the model, or only its head when a cached probe feeds features.
        self.net = net if net is not None else model
        self.model, self.ddp, self.optimizer, self.schedule, self.scaler = model, ddp, optimizer, schedule, scaler
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.train_loader, self.val_loader, self.run_dir = train_loader, val_loader, run_dir
        self.class_names, self.num_classes = class_names, len(class_names)
        self.dataset, self.val_set, self.num_train = dataset, val_set, num_train
        self.frames_per_clip, self.memory_format, self.has_batchnorm = frames_per_clip, memory_format, has_batchnorm
        self.steps_per_epoch, self.total_steps = steps_per_epoch, steps_per_epoch * r.optim.epochs
        self.load_summary, self.pretrained_on = load_summary, pretrained_on
        self.amp_dtype = autocast_dtype(r.precision)
        self.stop_requested = False
        self.epoch, self.batch, self.step = 0, 0, 0
        self.best_top1, self.best_epoch = -1.0, -1
        self.train_seconds, self.train_clips = 0.0, 0
        self.last_eval = None
        self.last_save = time.monotonic()
        self._gpu_peak = 0.0  # MiB in use on the GPU as the driver counts it, the most seen so far

    # --- checkpoints ------------------------------------------------------------------------
    def state(self) -> dict:
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

    def restore(self, state: dict) -> None:
        changed = [k for k, v in state.get("recipe", {}).items()
                   if k not in RESUMABLE_CHANGES and flatten(self.r).get(k) != v]
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

    def save(self, *, best: bool = False) -> None:
        """Rank 0 writes the last state (and the best); ranks hold identical state, so one copy does."""
        if self.env.main:
            self.run_dir.save(self.state(), best=best)
        self.last_save = time.monotonic()

    def _checkpoint_due(self) -> bool:
        minutes = self.r.output.checkpoint_minutes
        return minutes > 0 and time.monotonic() - self.last_save >= minutes * 60

    # --- one step ---------------------------------------------------------------------------
    def forward_backward(self, video: torch.Tensor, label: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        net = self.ddp or self.net
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
        (self.ddp or self.net).train()
        batches = steps_per_rank(self.num_train, env.world_size, r.data.batch_size, epoch)[env.rank]
        display.start_epoch(epoch, r.optim.epochs, batches, start_batch)
        guard = NonFiniteGuard(env.device, limit=25 if self.scaler else 1)
        meter = StepMeter(env.device)
        agree_until = min(self._steps(epoch))  # the last batch every rank still has (see _stop_now)
        self.batch = start_batch
        # A thread fetches the next batch while this step runs (see loader/prefetch.py).
        device_id = getattr(self.train_loader, "device_id", None)  # the thread uses DALI's CUDA device
        with Prefetched(self.train_loader.iterate(epoch, start_batch), device_id=device_id) as it, self._join():
            for video, label, wait in self._device_batches(it):
                self.batch += 1
                if video is None:
                    continue  # a last batch of one clip: BatchNorm cannot train on it
                seed_step(step_seed(r.seed, env.rank, self.step), env.device)
                loss, norm = self.forward_backward(video, label)
                guard.observe(loss, norm)
                meter.update(loss, len(label), wait)
                self.step += 1
                self.schedule.step()
                stop = self._stop_now(agree_until)
                save_due = env.main and (stop or self._checkpoint_due())
                if meter.steps == r.output.log_every or save_due or stop:
                    # Every rank checks at its log steps; rank 0 also before it saves.
                    guard.check(lambda: self._nonfinite_message(epoch))
                    self._log_window(epoch, meter.flush(), display)
                    if save_due:
                        self.save()
                    if stop:
                        raise SystemExit(STOP_EXIT_CODE)
        guard.check(lambda: self._nonfinite_message(epoch))
        return self._end_epoch(epoch, meter.finish())

    def _stop_now(self, agree_until: int) -> bool:
        """Whether to stop after this step because some rank got SIGTERM.

        Ranks agree through a collective (a one-element all-reduce), so they all stop after the
        same step: a rank that left alone would leave the others waiting in the next gradient
        all-reduce (with NCCL until a watchdog kills them). The collective runs at every
        `log_every`-th batch while every rank still has batches in this epoch (`Join` would not
        shadow it for a rank that has finished); a later request waits for the epoch's end.
        """
        if self.ddp is None:
            return self.stop_requested
        if self.batch % self.r.output.log_every or self.batch > agree_until:
            return False
        return self._stop_agreed()

    def _stop_agreed(self) -> bool:
        """Any rank's stop request, known to every rank (all ranks must call this together)."""
        if self.ddp is None:
            return self.stop_requested
        flag = torch.tensor([1.0 if self.stop_requested else 0.0], device=self.env.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    def _join(self):
        if self.ddp is None:
            return nullcontext()
        from torch.distributed.algorithms.join import Join

        return Join([self.ddp])

    def _device_batches(self, it):
        """(video, label, seconds waited for the loader) on this rank's device; `None` video for a
        batch of one clip when the model has BatchNorm."""
        epoch = self.epoch
        while True:
            t0 = time.perf_counter()
            try:
                batch = next(it, None)
            except RuntimeError as e:  # DALI's decoder errors name neither shard nor sample
                raise loader_failure("data.train", self.r.data.train, epoch, self.batch, e, rank=self.env.rank,
                                     world_size=self.env.world_size) from e
            if batch is None:
                return
            if len(batch.label) == 1 and self.has_batchnorm:
                yield None, None, 0.0
                continue
            video = batch.video.to(self.env.device, non_blocking=True)
            label = batch.label.to(self.env.device, non_blocking=True)
            if self.memory_format is torch.channels_last_3d:
                video = video.contiguous(memory_format=self.memory_format)
            yield video, label, time.perf_counter() - t0

    def _log_window(self, epoch: int, w: Window, display) -> None:
        world = self.env.world_size
        rate = w.clips * world / w.seconds
        lr = self.optimizer.param_groups[0]["lr"]
        self.run_dir.log.write("train", epoch=epoch, batch=self.batch, step=self.step, loss=w.mean_loss, lr=lr,
                               clips_per_s=rate, frames_per_s=rate * self.frames_per_clip,
                               data_wait=w.wait / w.seconds, peak_mem_mib=self._peak())
        display.update(self.batch, loss=w.mean_loss, lr=lr, clips_per_s=rate, wait=w.wait / w.seconds,
                       eta_s=(self.total_steps - self.step) * w.seconds / w.steps)

    def _end_epoch(self, epoch: int, total: Window) -> dict:
        counts = self._steps(epoch)
        self._sync_after_epoch(counts)
        self.step = epoch * self.steps_per_epoch + max(counts)
        self.schedule.set_step(self.step)
        # Clips over all ranks (ranks run in parallel, so rank 0's time is the epoch's time).
        clips, seconds = total.clips * self.env.world_size, total.seconds
        self.train_seconds += seconds
        self.train_clips += clips
        rec = dict(epoch=epoch, step=self.step, loss=total.mean_loss,
                   clips_per_s=clips / seconds if seconds else 0.0,
                   frames_per_s=clips * self.frames_per_clip / seconds if seconds else 0.0,
                   data_wait=total.wait / seconds if seconds else 0.0, seconds=seconds,
                   peak_mem_mib=self._peak())
        self.run_dir.log.write("epoch", **rec)
        return rec

    def _steps(self, epoch: int) -> list[int]:
        return steps_per_rank(self.num_train, self.env.world_size, self.r.data.batch_size, epoch,
                              skip_single=self.has_batchnorm)

    def _peak(self) -> float:
        """Peak memory so far: torch's, and on a GPU also the driver's count (which includes DALI's
        decoder buffers, allocated outside torch), sampled at each log window."""
        peak = peak_memory_mib(self.env.device)
        if self.env.device.type == "cuda":
            from synapt_fast.loader.handoff import device_memory_in_use

            self._gpu_peak = max(self._gpu_peak, device_memory_in_use(self.env.device.index) / 2**20)
            peak = max(peak, self._gpu_peak)
        return round(peak, 1)

    def _nonfinite_message(self, epoch: int) -> str:
        where = self.run_dir.last
        keep = f"the last good checkpoint is {where}" if where.exists() else "no checkpoint was written yet"
        return (f"non-finite loss or gradients in epoch {epoch + 1}, before step {self.step} (batch {self.batch}); "
                f"stopped without saving this state; {keep}. Lower optim.lr, set optim.clip_grad_norm, or use "
                f"precision = \"bf16\"/\"fp32\".")

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
            obj = [self.scaler.state_dict()]
            dist.broadcast_object_list(obj, src)
            self.scaler.load_state_dict(obj[0])

    # --- evaluation and the whole run ---------------------------------------------------------
    def evaluate(self):
        from .evaluate import evaluate

        try:
            return evaluate(self.net, self.val_loader.iterate(0), num_classes=self.num_classes,
                            device=self.env.device, autocast_dtype=self.amp_dtype,
                            channels_last=self.memory_format is torch.channels_last_3d)
        except RuntimeError as e:
            if isinstance(e, DataError) or "decod" not in str(e).lower():
                raise
            raise loader_failure("data.val", self.r.data.val, 0, 0, e, rank=self.env.rank,
                                 world_size=self.env.world_size) from e

    def fit(self) -> dict:
        from .metrics import ProgressDisplay

        r, env = self.r, self.env
        if env.main:
            ProgressDisplay(True, 0).print(
                f"[bold]{r.output.name}[/bold]: {r.model.name} {r.model.mode} on {self.dataset} "
                f"({self.num_train} clips, {self.num_classes} classes), {env.world_size} process(es) on "
                f"{env.device.type}, {r.precision}; {self.load_summary.splitlines()[0]}")
        with ProgressDisplay(env.main, self.total_steps) as display:
            while self.epoch < r.optim.epochs:
                e = self.epoch
                rec = self.train_epoch(e, self.batch, display)
                self.epoch, self.batch = e + 1, 0
                line = (f"epoch {e + 1}/{r.optim.epochs}: loss {rec['loss']:.4f}, {rec['clips_per_s']:.1f} clips/s, "
                        f"data wait {rec['data_wait']:.0%}")
                best = False
                if (e + 1) % r.eval.every_epochs == 0 or e + 1 == r.optim.epochs:
                    res = self.last_eval = self.evaluate()
                    self.run_dir.log.write("eval", epoch=e, step=self.step, **res.metrics())
                    best = res.top1 > self.best_top1
                    if best:
                        self.best_top1, self.best_epoch = res.top1, e
                    if best:  # the epoch model_best.pth.tar holds, not the last one evaluated
                        self.run_dir.write_json("confusion.json", confusion_record(e, self.class_names, res.confusion))
                    line += f"; val top-1 {res.top1:.3f} top-5 {res.top5:.3f} (clip {res.clip_top1:.3f})"
                display.print(line)
                self.save(best=best)
                if self._stop_agreed():
                    raise SystemExit(STOP_EXIT_CODE)
        if self.last_eval is None:  # resumed after the last epoch's checkpoint
            self.last_eval = self.evaluate()
        result = self._result(self._rank_weight_spread())
        self.run_dir.write_json("result.json", result, indent=1)
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
        from .machine import machine_info

        r, ev, secs = self.r, self.last_eval, self.train_seconds
        return {
            "run": r.output.name, "model": r.model.name, "mode": r.model.mode, "pretrained_on": self.pretrained_on,
            "dataset": self.dataset, "val_set": self.val_set, "num_classes": self.num_classes,
            "top1": ev.top1, "top5": ev.top5, "clip_top1": ev.clip_top1, "clip_top5": ev.clip_top5,
            "best_top1": self.best_top1, "best_epoch": self.best_epoch + 1,
            "train_clips_per_s": self.train_clips / secs if secs else 0.0,
            "train_frames_per_s": self.train_clips * self.frames_per_clip / secs if secs else 0.0,
            "eval_clips_per_s": ev.clips_per_s, "eval_videos": ev.videos, "eval_views": ev.views,
            "epochs": r.optim.epochs, "steps": self.step, "world_size": self.env.world_size,
            "global_batch": r.data.batch_size * self.env.world_size, "precision": r.precision,
            "device": self.env.device.type, "rank_weight_spread": weight_spread,
            "hyper_parameters": flatten(r), "machine": machine_info(),
        }
