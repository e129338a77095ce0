"""`torchrun -m synapt_fast.train --recipe R [key=value ...] [--resume]`: arguments, signals, exit codes.

    torchrun --nproc_per_node 8 -m synapt_fast.train --recipe recipes/<name>.toml [key=value ...] [--resume]
    python -m synapt_fast.train --recipe recipes/<name>.toml          # one process, same code

Exit codes: 0 done, 2 a recipe or usage error (the message names the key or file), 3 non-finite
loss, 4 a checkpoint, run file or shard the run cannot write or read (named), 143 stopped by SIGTERM
after saving a checkpoint (continue with `--resume`).
"""

from __future__ import annotations

import argparse
import signal
import sys

import torch.distributed as dist

from .distributed import set_cpu_threads, setup_distributed
from .checkpoint import CheckpointError
from .guard import NonFiniteLoss
from .recipe import RecipeError, load_recipe
from .trainer import STOP_EXIT_CODE, DataError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m synapt_fast.train",
                                description="Train, fine-tune or linear-probe a model from a recipe.")
    p.add_argument("--recipe", required=True, help="recipe TOML file")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's last checkpoint")
    p.add_argument("overrides", nargs="*", help="section.key=value overrides, checked like the file")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from .build import build_trainer

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
    from synapt_fast.format.manifest import ManifestError  # a missing split: one line naming it
    from synapt_fast.models.weights import CheckpointError as InitError  # an unreadable or wrong model.init

    try:
        trainer = build_trainer(recipe, env, resume=args.resume)
        trainer.fit()
        return 0
    except (RecipeError, InitError, ManifestError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (CheckpointError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 4
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
        if trainer is not None:
            trainer.run_dir.log.close()
        if dist.is_initialized():
            try:
                dist.destroy_process_group()
            except Exception:
                pass
