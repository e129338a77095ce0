"""A pinhole camera aimed at the actor, randomised per clip, and its projection."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .skeleton import squeeze


@dataclass(frozen=True)
class Camera:
    position: np.ndarray  # (3,) world, metres
    right: np.ndarray     # (3,) unit axes of the camera frame in world coordinates
    up: np.ndarray
    forward: np.ndarray
    focal: float          # pixels
    cx: float
    cy: float

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """World points (..., 3) -> camera coordinates (x right, y up, z forward)."""
        rel = points - self.position
        return np.stack([rel @ self.right, rel @ self.up, rel @ self.forward], axis=-1)

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """World points (...,3) -> pixel x, pixel y (row, downwards) and depth (camera z)."""
        c = self.to_camera(points)
        z = np.maximum(c[..., 2], 1e-3)
        return self.cx + self.focal * c[..., 0] / z, self.cy - self.focal * c[..., 1] / z, z

    def rays(self, height: int, width: int) -> np.ndarray:
        """Unit world-space ray directions through each pixel centre, (H, W, 3)."""
        ys = (np.arange(height) + 0.5 - self.cy) / self.focal
        xs = (np.arange(width) + 0.5 - self.cx) / self.focal
        d = (self.forward[None, None] + xs[None, :, None] * self.right[None, None]
             - ys[:, None, None] * self.up[None, None])
        return d / np.linalg.norm(d, axis=-1, keepdims=True)


def look_at(position: np.ndarray, target: np.ndarray, focal: float, size: int) -> Camera:
    forward = target - position
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, np.array([0.0, 1.0, 0.0]))
    right = right / np.linalg.norm(right)
    up = np.cross(right, forward)
    return Camera(position, right, up, forward, float(focal), size / 2.0, size / 2.0)


def sample_camera(rng: np.random.Generator, size: int, actor_height: float,
                  variation: float = 1.0) -> Camera:
    """Yaw +-70 deg around the actor's front, pitch 0-25 deg down, focal length 0.9-2.2x the
    image size; the distance follows from the focal length and how much of the frame the actor
    should fill (50-78 % of its height), so every clip keeps the actor in view. `variation`
    scales every range towards its centre (0: a frontal camera at 10 deg pitch)."""
    v = variation
    yaw = np.deg2rad(squeeze(rng.uniform(-70, 70), 0.0, v))
    pitch = np.deg2rad(squeeze(rng.uniform(0, 25), 10.0, v))
    focal = squeeze(rng.uniform(0.9, 2.2), 1.5, v) * size
    fill = squeeze(rng.uniform(0.5, 0.78), 0.64, v)
    distance = focal * actor_height / (size * fill)
    target = np.array([squeeze(rng.uniform(-0.08, 0.08), 0.0, v),
                       actor_height * squeeze(rng.uniform(0.54, 0.6), 0.57, v), 0.0])
    offset = np.array([np.sin(yaw) * np.cos(pitch), np.sin(pitch), np.cos(yaw) * np.cos(pitch)])
    return look_at(target + distance * offset, target, focal, size)
