"""Procedural synthetic action videos: the embedded default dataset.

skeleton (bodies and forward kinematics) -> motions (the class grammar) -> camera, scene ->
raster (capsule rasteriser) -> render (one clip) -> sources (SourceItems for the shard writer)
and files (plain video files).
"""
