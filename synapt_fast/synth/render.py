"""One clip, end to end: draw the actor, motion, camera and scene from the clip's own random
stream, then rasterise every frame. `render_clip` is a plain top-level function of plain
arguments, so a `functools.partial` of it pickles into worker processes."""

from __future__ import annotations

import hashlib

import numpy as np

from .camera import sample_camera
from .motions import class_pose
from .raster import GBuffer, compose, draw_capsule
from .scene import hsv, render_background, sample_scene
from .skeleton import CAPSULES, J, forward_kinematics, sample_body

PARTS = {"skin": 1, "shirt": 2, "sleeve": 3, "trousers": 4, "shoes": 5, "nose": 6}


def name_key(name: str) -> int:
    """A stable 64-bit integer for a class name: clip streams follow the class *name*, so a
    class renders the same clips whichever subset of classes it is part of."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")


def clip_rng(seed: int, class_name: str, stream: int, index: int) -> np.random.Generator:
    """The independent random stream of one clip, from (seed, class, stream, index) only --
    never from the order clips are rendered in, so any worker gives the same bytes."""
    return np.random.default_rng([seed, name_key(class_name), stream, index])


def sample_outfit(rng: np.random.Generator) -> np.ndarray:
    """Part colours (rgb in [0,1]) indexed by PARTS; row 0 is the background."""
    tone = rng.uniform(0, 1)  # light .. dark skin
    skin = np.array([0.96, 0.80, 0.69]) * (1 - tone) + np.array([0.36, 0.23, 0.16]) * tone
    shirt = hsv(rng.uniform(0, 1), rng.uniform(0.1, 0.9), rng.uniform(0.25, 0.95))
    trousers = hsv(rng.uniform(0, 1), rng.uniform(0.05, 0.7), rng.uniform(0.15, 0.7))
    shoes = hsv(rng.uniform(0, 1), rng.uniform(0, 0.5), rng.uniform(0.05, 0.6))
    sleeve = shirt if rng.uniform() < 0.5 else skin
    palette = np.zeros((len(PARTS) + 1, 3))
    for name, value in (("skin", skin), ("shirt", shirt), ("sleeve", sleeve),
                        ("trousers", trousers), ("shoes", shoes), ("nose", skin * 0.75)):
        palette[PARTS[name]] = value
    return palette


def render_clip(class_name: str, seed: int, stream: int, index: int, frames: int, size: int,
                context: int | None = None, variation: float = 1.0) -> np.ndarray:
    """uint8 frames (frames, size, size, 3) of one clip of `class_name`.

    `stream` separates splits and tasks (train/val, pre-training/downstream); `context`, when
    given, builds the scene around that context's cue (high-bias downstream tasks).
    `variation` in [0, 1] scales the nuisance ranges (body, camera, facing, clutter, lighting)
    towards their centres: 1 is the full randomisation, lower values give easier data for
    quick demos. Motion timing and colours stay random at any value.
    """
    return render_clip_with_mask(class_name, seed, stream, index, frames, size, context, variation)[0]


def render_clip_with_mask(class_name: str, seed: int, stream: int, index: int, frames: int,
                          size: int, context: int | None = None,
                          variation: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """`render_clip` plus the actor's visibility mask (frames, size, size) bool."""
    rng = clip_rng(seed, class_name, stream, index)
    if not 0.0 <= variation <= 1.0:
        raise ValueError(f"variation must be in [0, 1], got {variation}")
    v = variation
    body = sample_body(rng, v)
    pose = class_pose(class_name, frames, rng)
    pose["root_yaw"] += v * rng.uniform(-0.35, 0.35)  # the actor's own facing, besides the camera's
    joints = forward_kinematics(body, pose)
    joints[..., 0] += v * rng.uniform(-0.15, 0.15)
    joints[..., 2] += v * rng.uniform(-0.2, 0.2)
    # A few millimetres of independent jitter per joint and frame: no two clips are identical.
    joints += rng.normal(0, 0.004, joints.shape)
    cam = sample_camera(rng, size, body.height, v)
    scene = sample_scene(rng, context, v)
    palette = sample_outfit(rng)

    feet = joints[:, [J["l_ankle"], J["r_ankle"]]].reshape(-1, 3).mean(axis=0)
    background, depth = render_background(scene, cam, size, (feet[0], feet[2]), 0.35 * body.height / 1.7)
    x, y, z = cam.project(joints)  # each (T, 19)
    xy = np.stack([x, y], axis=-1)
    buf = GBuffer(np.broadcast_to(depth, (frames, size, size)))
    light_cam = cam.to_camera(cam.position + scene.light)
    for ja, jb, radius_field, part in CAPSULES:
        a, b = J[ja], J[jb]
        radius = getattr(body, radius_field) if radius_field else 0.3 * body.head_r
        draw_capsule(buf, xy[:, a], xy[:, b], z[:, a], z[:, b], radius, cam.focal,
                     PARTS[part], light_cam, scene.ambient)
    gain = scene.tint * scene.brightness
    return compose(buf, background, np.clip(palette * gain * 255.0, 0, 255)), buf.part > 0
