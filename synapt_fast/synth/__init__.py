"""Procedural synthetic action videos: the embedded default dataset.

skeleton (bodies, forward kinematics) -> motions (the class grammar) -> camera, scene ->
raster (capsule rasteriser) -> render (one clip) -> sources (SourceItems for the shard writer)
-> build (pre-training set + downstream suite as shards) or files (plain videos).
probe measures how much one still frame reveals of a task's label.

    from synapt_fast.synth import SynthSource, DownstreamSource, downstream_suite
"""

from .sources import DownstreamSource, SynthSource, downstream_suite

__all__ = ["DownstreamSource", "SynthSource", "downstream_suite"]
