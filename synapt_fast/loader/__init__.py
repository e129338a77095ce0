"""Video loaders over shard splits: DALI (the product) and a torch DataLoader + PyAV reference.

Both share the sampling and crop math (`sampling`, `transforms`) and yield `Batch`es.
"""

from .batch import Batch
from .sampling import Sampling
from .transforms import Transform

__all__ = ["Batch", "Sampling", "Transform", "make_loader"]


def make_loader(split_dir, sampling: Sampling, transform: Transform, *, train: bool, batch_size: int,
                backend: str = "dali", **kw):
    """A loader for one split. backend: `dali` (default) or `reference` (DataLoader + PyAV).

    Common keywords: rank, world_size, seed, workers (DALI threads or DataLoader processes),
    prefetch, decode (auto | cpu | gpu). DALI only: shuffle_buffer, use_mmap, lanes, pin_memory (page-locked
    host batches for a CUDA trainer).
    """
    if backend == "dali":
        from .dali_loader import DaliVideoLoader

        return DaliVideoLoader(split_dir, sampling, transform, train=train, batch_size=batch_size, **kw)
    if backend == "reference":
        from .reference import ReferenceLoader

        return ReferenceLoader(split_dir, sampling, transform, train=train, batch_size=batch_size, **kw)
    raise ValueError(f"backend must be 'dali' or 'reference', got {backend!r}")
