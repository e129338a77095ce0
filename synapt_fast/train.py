"""`torchrun -m synapt_fast.train --recipe R [key=value ...] [--resume]`: the trainer's entry point.

Kept at the top of the package because the command above is what users and launch scripts type;
the trainer itself lives in `synapt_fast/engine/`.
"""

import sys

from synapt_fast.engine.main import main

if __name__ == "__main__":
    sys.exit(main())
