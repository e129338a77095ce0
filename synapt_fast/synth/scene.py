"""Scenes: a back wall and a floor with textures, wall clutter, props standing on the floor,
and lighting -- randomised per clip, or built around a class *context* for the high-bias
downstream tasks (a wall colour and a prop that go with the label).
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, field

import numpy as np

from .camera import Camera
from .raster import GBuffer, compose, draw_capsule
from .skeleton import squeeze


@dataclass(frozen=True)
class Prop:
    """A static object on the floor, drawn as a capsule (a ball, a pillar or a log).

    Ends are in a frame anchored at the actor's feet and turned with the camera: x to the
    image's right, y up, z away from the camera. Placing props beside or behind the actor *as
    seen by this clip's camera* keeps them from hiding the actor, and keeps a context's prop
    on the same side of the image in every clip.
    """

    a: tuple[float, float, float]
    b: tuple[float, float, float]
    radius: float
    rgb: tuple[float, float, float]


@dataclass(frozen=True)
class Scene:
    wall_top: np.ndarray      # rgb in [0, 1]
    wall_bottom: np.ndarray
    wall_waves: np.ndarray    # (k, 4): kx, ky, phase, amplitude of the wall's texture
    wall_distance: float      # metres behind the actor
    floor_a: np.ndarray
    floor_b: np.ndarray
    floor_kind: str           # "checker" | "planks" | "plain"
    tile: float               # metres
    clutter: list = field(default_factory=list)  # (x0, x1, y0, y1, rgb) rectangles on the wall
    props: list = field(default_factory=list)
    light: np.ndarray = None  # unit vector towards the light, world frame
    ambient: float = 0.45
    tint: np.ndarray = None   # colour temperature as an rgb gain
    brightness: float = 1.0


def hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v))


def colour_temperature(kelvin: float) -> np.ndarray:
    """Rough rgb gain for a light of `kelvin` (3000 warm .. 9000 cool), 1.0 at 6500 K."""
    t = np.clip((kelvin - 6500.0) / 3500.0, -1.0, 1.0)
    warm, cool = np.array([1.12, 0.97, 0.78]), np.array([0.88, 0.97, 1.15])
    return 1.0 + (warm - 1.0) * max(-t, 0.0) + (cool - 1.0) * max(t, 0.0)


def context_cue(context: int) -> tuple[float, float, Prop]:
    """The fixed cue of one context: wall hue, wall saturation and a prop (shape, colour,
    side). Neighbouring contexts differ in several of these at once."""
    hue = (context * 0.618034) % 1.0
    sat = (0.3, 0.55, 0.8)[context % 3]
    kind = (context // 3) % 3
    side = 1.0 if (context // 9) % 2 == 0 else -1.0
    rgb = tuple(hsv(hue + 0.5, 0.85, 0.9))
    x = side * 0.95
    if kind == 0:    # ball
        prop = Prop((x, 0.28, 0.3), (x, 0.28, 0.3), 0.28, rgb)
    elif kind == 1:  # pillar
        prop = Prop((x, 0.12, 0.4), (x, 1.5, 0.4), 0.12, rgb)
    else:            # log lying on the floor
        prop = Prop((x - 0.35, 0.15, 0.5), (x + 0.35, 0.15, 0.0), 0.15, rgb)
    return hue, sat, prop


def sample_scene(rng: np.random.Generator, context: int | None = None,
                 variation: float = 1.0) -> Scene:
    """A random scene; with `context`, the wall colour and main prop come from that context's
    cue and everything else (textures, clutter, lighting) is still random. `variation` < 1
    thins out random props and clutter, flattens textures and narrows the lighting ranges
    (colours stay random)."""
    v = variation
    if context is None:
        hue, sat = rng.uniform(0, 1), rng.uniform(0.05, 0.7)
        props = []
        for _ in range(rng.integers(0, 3)):
            x = rng.choice([-1, 1]) * rng.uniform(0.8, 1.8)
            z = rng.uniform(-0.3, 1.5)
            r = rng.uniform(0.08, 0.3)
            top = r if rng.uniform() < 0.5 else rng.uniform(0.4, 1.6)
            props.append(Prop((x, r, z), (x, top, z), r,
                              tuple(hsv(rng.uniform(0, 1), rng.uniform(0.2, 0.9), rng.uniform(0.3, 0.95)))))
    else:
        hue, sat, prop = context_cue(context)
        props = [prop]
    props = props[: len(props) - int(round((1 - v) * len(props)))] if context is None else props
    val = rng.uniform(0.45, 0.95) if context is None else 0.6 + 0.1 * (context % 4)
    wall_top = hsv(hue + rng.uniform(-0.02, 0.02), sat, val)
    wall_bottom = hsv(hue + rng.uniform(-0.02, 0.02), sat * rng.uniform(0.85, 1.05), val * rng.uniform(0.7, 0.9))
    k = int(rng.integers(1, 4))
    waves = np.stack([rng.uniform(-6, 6, k), rng.uniform(-6, 6, k), rng.uniform(0, 2 * np.pi, k),
                      v * rng.uniform(0.0, 0.08, k)], axis=1)
    fhue = rng.uniform(0, 1)
    floor_a = hsv(fhue, rng.uniform(0.0, 0.5), rng.uniform(0.25, 0.8))
    floor_b = floor_a * rng.uniform(0.6, 0.9) if rng.uniform() < 0.7 else hsv(fhue + 0.5, 0.3, 0.5)
    clutter = []
    for _ in range(rng.integers(0, 5)):
        w, h = rng.uniform(0.2, 1.2), rng.uniform(0.2, 1.0)
        x, y = rng.uniform(-3, 3), rng.uniform(0.3, 2.2)
        clutter.append((x, x + w, y, y + h, hsv(rng.uniform(0, 1), rng.uniform(0, 0.8), rng.uniform(0.2, 1.0))))
    clutter = clutter[: len(clutter) - int(round((1 - v) * len(clutter)))]
    az, el = squeeze(rng.uniform(-1.2, 1.2), 0.0, v), squeeze(rng.uniform(0.3, 1.2), 0.75, v)
    light = np.array([np.sin(az) * np.cos(el), np.sin(el), np.cos(az) * np.cos(el)])
    return Scene(
        wall_top=wall_top, wall_bottom=wall_bottom, wall_waves=waves,
        wall_distance=float(rng.uniform(2.0, 6.0)), floor_a=floor_a, floor_b=floor_b,
        floor_kind=str(rng.choice(["checker", "planks", "plain"])), tile=float(rng.uniform(0.25, 0.9)),
        clutter=clutter, props=props, light=light, ambient=float(squeeze(rng.uniform(0.3, 0.6), 0.45, v)),
        tint=colour_temperature(squeeze(rng.uniform(3000, 9000), 6500, v)),
        brightness=float(squeeze(rng.uniform(0.7, 1.2), 0.95, v)),
    )


def render_background(scene: Scene, cam: Camera, size: int, shadow_at: tuple[float, float] | None,
                      shadow_radius: float) -> tuple[np.ndarray, np.ndarray]:
    """The static part of a clip: lit rgb uint8 (H, W, 3) and depth (H, W) per pixel, props
    included, with a soft blob shadow on the floor at `shadow_at` (x, z), the actor's feet,
    where the props are anchored too."""
    H = W = size
    rays = cam.rays(H, W)
    pos = cam.position
    dy, dz = rays[..., 1], rays[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        t_floor = np.where(dy < -1e-6, -pos[1] / dy, np.inf)
        t_wall = np.where(dz < -1e-6, (-scene.wall_distance - pos[2]) / dz, np.inf)
    hit_floor = t_floor < t_wall
    t = np.minimum(np.minimum(t_floor, t_wall), 60.0)  # rays that miss both fade into the wall
    p = pos + t[..., None] * rays

    # Wall: vertical gradient, a few sinusoid ripples, rectangles of clutter.
    wy = np.clip(p[..., 1] / 3.0, 0, 1)[..., None]
    rgb = scene.wall_bottom * (1 - wy) + scene.wall_top * wy
    ripple = sum(a * np.sin(kx * p[..., 0] + ky * p[..., 1] + ph) for kx, ky, ph, a in scene.wall_waves)
    rgb = rgb * (1 + ripple)[..., None]
    for x0, x1, y0, y1, c in scene.clutter:
        m = (~hit_floor) & (p[..., 0] > x0) & (p[..., 0] < x1) & (p[..., 1] > y0) & (p[..., 1] < y1)
        rgb[m] = c

    # Floor: checker, planks or plain, darker with distance; a blob shadow under the actor.
    fx, fz = p[..., 0] / scene.tile, p[..., 2] / scene.tile
    if scene.floor_kind == "checker":
        pick = (np.floor(fx) + np.floor(fz)) % 2
    elif scene.floor_kind == "planks":
        pick = np.floor(fx * 2.5) % 2
    else:
        pick = np.zeros_like(fx)
    floor = scene.floor_a * (1 - pick[..., None]) + scene.floor_b * pick[..., None]
    floor = floor * np.clip(1.1 - 0.04 * t, 0.6, 1.0)[..., None]
    if shadow_at is not None:
        r2 = ((p[..., 0] - shadow_at[0]) ** 2 + (p[..., 2] - shadow_at[1]) ** 2) / shadow_radius ** 2
        floor = floor * (1 - 0.45 * np.exp(-2.5 * r2))[..., None]
    rgb = np.where(hit_floor[..., None], floor, rgb)
    depth = (t * (rays @ cam.forward)).astype(np.float32)

    gain = scene.tint * scene.brightness
    bg = np.clip(rgb * gain * 255.0, 0, 255).astype(np.uint8)
    if scene.props:
        buf = GBuffer(depth[None])
        light_cam = cam.to_camera(cam.position + scene.light)
        palette = np.zeros((len(scene.props) + 1, 3))
        # The props' frame: the camera's right and forward axes laid flat on the floor.
        right = np.array([cam.right[0], 0.0, cam.right[2]])
        right /= np.linalg.norm(right)
        away = np.array([-right[2], 0.0, right[0]])
        if away @ cam.forward < 0:
            away = -away
        anchor = np.array([shadow_at[0], 0.0, shadow_at[1]]) if shadow_at is not None else np.zeros(3)
        to_world = np.stack([right, np.array([0.0, 1.0, 0.0]), away])  # rows: x, y, z axes
        for i, prop in enumerate(scene.props, start=1):
            ends = (anchor + np.array([prop.a, prop.b]) @ to_world)[None]  # (1, 2, 3)
            x, y, z = cam.project(ends)
            draw_capsule(buf, np.stack([x[:, 0], y[:, 0]], 1), np.stack([x[:, 1], y[:, 1]], 1),
                         z[:, 0], z[:, 1], prop.radius, cam.focal, i, light_cam, scene.ambient)
            palette[i] = np.clip(np.asarray(prop.rgb) * gain * 255.0, 0, 255)
        bg = compose(buf, bg, palette)[0]
        depth = buf.depth[0]
    return bg, depth
