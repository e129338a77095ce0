"""synapt_fast: the SynAPT benchmark made fast.

Data flow, one module (or package) per stage:
sources -> transcode -> sharding (writer, manifest, verify) -> loader -> models -> train -> report/bench.

This file stays import-light: the bootstrap imports the package before any dependency is installed.
"""

__version__ = "0.1.0"
