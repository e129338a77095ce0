"""Capsule rasteriser: shaded round limbs drawn into a depth-tested G-buffer.

Every primitive is a capsule (a segment with a radius; a sphere when both ends coincide). Its
signed distance field is evaluated on the pixels of the capsule's bounding box over *all* frames
at once -- one vectorised numpy pass per capsule instead of a Python loop per frame -- and a
pixel is written where it is inside the capsule and nearer than what the depth buffer holds, so
limbs overlap in the right order whatever their drawing order. The buffers keep a part id and a
Lambert shade per pixel; colours are looked up once at the end (`compose`).
"""

from __future__ import annotations

import numpy as np


class GBuffer:
    """Per-pixel depth (camera z), shade in [0, 1] and part id for T frames of H x W."""

    def __init__(self, depth: np.ndarray):
        self.depth = depth.astype(np.float32, copy=True)  # (T, H, W)
        self.shade = np.ones_like(self.depth)
        self.part = np.zeros(self.depth.shape, np.uint8)
        # Rows/columns touched so far: composing only visits this box.
        self.box = [self.depth.shape[1], self.depth.shape[2], 0, 0]


def draw_capsule(buf: GBuffer, a_xy: np.ndarray, b_xy: np.ndarray, a_z: np.ndarray,
                 b_z: np.ndarray, radius: float, focal: float, part: int,
                 light: np.ndarray, ambient: float) -> None:
    """Draw one capsule on every frame.

    a_xy, b_xy: (T, 2) pixel positions of the ends; a_z, b_z: (T,) their depths; `radius` in
    metres (projected per end); `light`: unit vector towards the light, camera coordinates.
    """
    T, H, W = buf.depth.shape
    ra = (focal * radius / a_z).astype(np.float32)
    rb = (focal * radius / b_z).astype(np.float32)
    rmax = float(max(ra.max(), rb.max())) + 1.0
    xs_all = np.concatenate([a_xy[:, 0], b_xy[:, 0]])
    ys_all = np.concatenate([a_xy[:, 1], b_xy[:, 1]])
    x0 = max(int(np.floor(xs_all.min() - rmax)), 0)
    x1 = min(int(np.ceil(xs_all.max() + rmax)) + 1, W)
    y0 = max(int(np.floor(ys_all.min() - rmax)), 0)
    y1 = min(int(np.ceil(ys_all.max() + rmax)) + 1, H)
    if x0 >= x1 or y0 >= y1:
        return
    f32 = np.float32
    px = (np.arange(x0, x1, dtype=f32) + f32(0.5))[None, None, :]
    py = (np.arange(y0, y1, dtype=f32) + f32(0.5))[None, :, None]

    def col(v):  # (T,) -> (T, 1, 1) float32
        return np.asarray(v, f32)[:, None, None]

    ax, ay = col(a_xy[:, 0]), col(a_xy[:, 1])
    abx, aby = col(b_xy[:, 0] - a_xy[:, 0]), col(b_xy[:, 1] - a_xy[:, 1])
    inv_len2 = 1.0 / (abx * abx + aby * aby + f32(1e-6))
    dx0 = px - ax
    dy0 = py - ay
    t = np.clip((dx0 * abx + dy0 * aby) * inv_len2, 0.0, 1.0)
    dx = dx0 - t * abx
    dy = dy0 - t * aby
    r = col(ra) + t * col(rb - ra)
    d2 = dx * dx + dy * dy
    r2 = r * r
    inside = d2 < r2
    if not inside.any():
        return
    nz = np.sqrt(np.maximum(1.0 - d2 / r2, 0.0))
    depth = col(a_z) + t * col(b_z - a_z) - f32(radius) * nz
    region = (slice(None), slice(y0, y1), slice(x0, x1))
    write = inside & (depth < buf.depth[region])
    # Lambert term with the surface normal (dx/r, -dy/r, -nz): the visible side faces -z.
    inv_r = 1.0 / r
    lam = (dx * inv_r) * f32(light[0]) - (dy * inv_r) * f32(light[1]) - nz * f32(light[2])
    shade = f32(ambient) + f32(1.0 - ambient) * np.maximum(lam, 0.0)
    np.copyto(buf.depth[region], depth, where=write)
    np.copyto(buf.shade[region], shade, where=write)
    np.copyto(buf.part[region], np.uint8(part), where=write)
    b = buf.box
    b[0], b[1], b[2], b[3] = min(b[0], y0), min(b[1], x0), max(b[2], y1), max(b[3], x1)


SHADE_LEVELS = 128  # shading is quantised so colours come from one table lookup


def compose(buf: GBuffer, background: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """uint8 frames (T, H, W, 3): `background` (H, W, 3) uint8 where no part was drawn, else
    palette[part] * shade. palette is (num_parts, 3) in [0, 255]; row 0 is unused."""
    T, H, W = buf.depth.shape
    frames = np.empty((T, H, W, 3), np.uint8)
    frames[:] = background
    y0, x0, y1, x1 = buf.box
    if y0 >= y1 or x0 >= x1:
        return frames
    # One table holds every (part, shade level) colour followed by the background pixels of
    # the touched box; each output pixel is then a single gather from it (numpy's `take` is
    # several times faster than masked copies or fancy indexing here).
    h, w = y1 - y0, x1 - x0
    levels = np.linspace(0.0, 1.0, SHADE_LEVELS)
    shaded = np.clip(palette[:, None, :] * levels[None, :, None], 0, 255).astype(np.uint8)
    table = np.concatenate([shaded.reshape(-1, 3), background[y0:y1, x0:x1].reshape(-1, 3)])
    part = buf.part[:, y0:y1, x0:x1]
    code = part.astype(np.int32) * SHADE_LEVELS
    code += (buf.shade[:, y0:y1, x0:x1] * (SHADE_LEVELS - 1) + 0.5).astype(np.int32)
    bg_code = (len(shaded.reshape(-1, 3)) + np.arange(h * w, dtype=np.int32)).reshape(h, w)
    code = np.where(part > 0, code, bg_code)
    frames[:, y0:y1, x0:x1] = np.take(table, code, axis=0)
    return frames
