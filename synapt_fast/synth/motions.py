"""The motion grammar: action classes built from an upper-body and a lower-body primitive
played at a tempo.

A class name is `<upper>-<lower>-<tempo>`, e.g. `wave_left-squat-fast`. Primitives are joint-angle
trajectories over normalised clip time u in [0, 1); each clip draws its own speed, phase and
amplitude jitter, so a class is a family of motions, not one animation.

Pre-training classes combine the `UPPER` and `LOWER` primitives; downstream classes contain at
least one primitive from `NOVEL_UPPER` / `NOVEL_LOWER`, which pre-training never shows, so the two
label sets are disjoint by construction (and downstream motions are genuinely new).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Pose = dict[str, np.ndarray]


@dataclass(frozen=True)
class Rhythm:
    """One clip's timing: `cycles` over the clip, starting at `phase` (fraction of a cycle)."""

    u: np.ndarray  # normalised time per frame
    cycles: float
    phase: float
    amp: float

    def angle(self, offset: float = 0.0) -> np.ndarray:
        return 2 * np.pi * (self.cycles * self.u + self.phase + offset)

    def osc(self, offset: float = 0.0) -> np.ndarray:
        """Sine in [-1, 1]."""
        return np.sin(self.angle(offset))

    def bump(self, offset: float = 0.0) -> np.ndarray:
        """Raised cosine in [0, 1]: rest -> peak -> rest once per cycle."""
        return 0.5 - 0.5 * np.cos(self.angle(offset))


Primitive = Callable[[Pose, Rhythm], None]


def _both(pose: Pose, name: str, value) -> None:
    pose[f"l_{name}"] += value
    pose[f"r_{name}"] += value


# ---- upper-body primitives -------------------------------------------------------------

def idle(pose: Pose, r: Rhythm) -> None:
    """No arm action."""


def _wave(side: str) -> Primitive:
    def wave(pose: Pose, r: Rhythm) -> None:
        pose[f"{side}_sh_abd"] += 2.45 + 0.4 * r.amp * r.osc()
        pose[f"{side}_elbow"] += 0.35
    return wave


def wave_both(pose: Pose, r: Rhythm) -> None:
    _both(pose, "sh_abd", 2.45 + 0.4 * r.amp * r.osc())
    _both(pose, "elbow", 0.3)


def clap(pose: Pose, r: Rhythm) -> None:
    _both(pose, "sh_flex", 1.35)
    _both(pose, "sh_horiz", 0.15 + 0.5 * r.amp * r.osc())
    _both(pose, "elbow", 0.45)
    _both(pose, "sh_abd", -0.12)


def _punch(side: str, offset: float = 0.0) -> Primitive:
    def punch(pose: Pose, r: Rhythm) -> None:
        jab = r.bump(offset) ** 2 * r.amp
        pose[f"{side}_sh_flex"] += 0.9 + 0.65 * jab
        pose[f"{side}_elbow"] += 2.0 * (1 - jab) + 0.05
        pose[f"{side}_sh_horiz"] -= 0.25
        pose[f"{side}_sh_abd"] -= 0.1
    return punch


def punch_alternate(pose: Pose, r: Rhythm) -> None:
    _punch("l")(pose, r)
    _punch("r", 0.5)(pose, r)


def reach_up(pose: Pose, r: Rhythm) -> None:
    _both(pose, "sh_flex", 2.8 * r.amp * r.bump())


def reach_forward(pose: Pose, r: Rhythm) -> None:
    _both(pose, "sh_flex", 1.5 * r.amp * r.bump())
    _both(pose, "elbow", -0.1)


def arm_circles(pose: Pose, r: Rhythm) -> None:
    _both(pose, "sh_abd", 1.4 + 0.35 * r.amp * r.osc())
    _both(pose, "sh_flex", 0.45 * r.amp * r.osc(0.25))
    _both(pose, "elbow", -0.1)


def flap(pose: Pose, r: Rhythm) -> None:
    _both(pose, "sh_abd", 1.45 * r.amp * r.bump())


# Downstream-only upper-body primitives.
def throw_right(pose: Pose, r: Rhythm) -> None:
    b = r.bump()
    pose["r_sh_flex"] += 2.6 - 1.6 * b * r.amp
    pose["r_elbow"] += 1.4 * (1 - b)
    pose["trunk_roll"] += 0.1 * b


def salute_right(pose: Pose, r: Rhythm) -> None:
    b = r.bump()
    pose["r_sh_abd"] += 1.3 * b
    pose["r_sh_flex"] += 0.5 * b
    pose["r_elbow"] += 2.3 * b


def drink_right(pose: Pose, r: Rhythm) -> None:
    b = r.bump()
    pose["r_sh_flex"] += 0.7 * b * r.amp
    pose["r_elbow"] += 2.2 * b
    pose["r_sh_horiz"] -= 0.3 * b
    pose["head_pitch"] -= 0.25 * b


# ---- lower-body primitives -------------------------------------------------------------

def stand(pose: Pose, r: Rhythm) -> None:
    """No leg action."""


def squat(pose: Pose, r: Rhythm) -> None:
    b = r.bump() * r.amp
    _both(pose, "hip_flex", 1.7 * b)
    _both(pose, "knee", 2.2 * b)
    pose["trunk_pitch"] += 0.35 * b


def jump(pose: Pose, r: Rhythm) -> None:
    s = r.osc()
    air = np.maximum(s, 0.0)
    crouch = np.maximum(-s, 0.0)
    pose["lift"] += 0.32 * r.amp * air
    _both(pose, "hip_flex", 0.5 * crouch + 0.2 * air)
    _both(pose, "knee", 0.9 * crouch + 0.3 * air)
    _both(pose, "sh_abd", 0.3 * air)


def march(pose: Pose, r: Rhythm) -> None:
    s = r.osc()
    for side, lift in (("l", np.maximum(s, 0)), ("r", np.maximum(-s, 0))):
        pose[f"{side}_hip_flex"] += 1.1 * r.amp * lift
        pose[f"{side}_knee"] += 1.6 * r.amp * lift
    pose["l_sh_flex"] -= 0.35 * s  # arms swing against the legs
    pose["r_sh_flex"] += 0.35 * s


def _kick(side: str) -> Primitive:
    def kick(pose: Pose, r: Rhythm) -> None:
        b = r.bump()
        pose[f"{side}_hip_flex"] += 1.5 * r.amp * b ** 1.5
        pose[f"{side}_knee"] += 1.6 * np.sin(np.pi * b) * (1 - b) + 0.1
        pose["trunk_pitch"] -= 0.15 * b
        pose["l_sh_abd"] += 0.35 * b
        pose["r_sh_abd"] += 0.35 * b
    return kick


def turn(pose: Pose, r: Rhythm) -> None:
    pose["root_yaw"] += np.pi * 0.9 * r.amp * r.bump()


def bow(pose: Pose, r: Rhythm) -> None:
    b = r.bump() * r.amp
    pose["trunk_pitch"] += 1.1 * b
    pose["head_pitch"] += 0.3 * b
    _both(pose, "hip_flex", 0.15 * b)


def sit_stand(pose: Pose, r: Rhythm) -> None:
    # Slower than a squat, knees to a right angle, trunk upright, hands to the thighs.
    b = np.clip(1.4 * r.bump() - 0.2, 0.0, 1.0)
    _both(pose, "hip_flex", 1.55 * b)
    _both(pose, "knee", 1.55 * b)
    _both(pose, "sh_flex", 0.5 * b)
    pose["trunk_pitch"] += 0.1 * b


def sway(pose: Pose, r: Rhythm) -> None:
    s = r.osc() * r.amp
    pose["trunk_roll"] += 0.35 * s
    pose["shift_x"] += 0.12 * s
    _both(pose, "hip_abd", 0.12)


# Downstream-only lower-body primitives.
def hop_left(pose: Pose, r: Rhythm) -> None:
    s = r.osc()
    pose["lift"] += 0.15 * r.amp * np.maximum(s, 0)
    pose["r_hip_flex"] += 0.5
    pose["r_knee"] += 1.9
    pose["l_knee"] += 0.5 * np.maximum(-s, 0)


def lunge(pose: Pose, r: Rhythm) -> None:
    b = r.bump() * r.amp
    pose["r_hip_flex"] += 1.2 * b
    pose["r_knee"] += 1.3 * b
    pose["l_hip_flex"] -= 0.45 * b
    pose["l_knee"] += 0.7 * b


UPPER: dict[str, Primitive] = {
    "idle": idle,
    "wave_left": _wave("l"),
    "wave_right": _wave("r"),
    "wave_both": wave_both,
    "clap": clap,
    "punch_left": _punch("l"),
    "punch_right": _punch("r"),
    "punch_alternate": punch_alternate,
    "reach_up": reach_up,
    "reach_forward": reach_forward,
    "arm_circles": arm_circles,
    "flap": flap,
}
LOWER: dict[str, Primitive] = {
    "stand": stand,
    "squat": squat,
    "jump": jump,
    "march": march,
    "kick_left": _kick("l"),
    "kick_right": _kick("r"),
    "turn": turn,
    "bow": bow,
    "sit_stand": sit_stand,
    "sway": sway,
}
NOVEL_UPPER: dict[str, Primitive] = {
    "throw_right": throw_right, "salute_right": salute_right, "drink_right": drink_right,
}
NOVEL_LOWER: dict[str, Primitive] = {"hop_left": hop_left, "lunge": lunge}
TEMPOS = {"slow": 1.0, "fast": 2.0}  # cycles per clip, before each clip's +-15 % jitter


def _stable_order(names: list[str]) -> list[str]:
    """A fixed, well-mixed order (sha256 of the name) so that the first N classes of a list
    cover many primitives and stay the same whatever N is -- nested subsets, as the paper's
    30/90/150-class sets."""
    return sorted(names, key=lambda n: hashlib.sha256(n.encode()).hexdigest())


def _combine(uppers, lowers) -> list[str]:
    return [f"{u}-{lo}-{t}" for u in uppers for lo in lowers for t in TEMPOS
            if not (u == "idle" and lo == "stand")]  # standing still is not an action


def pretrain_class_names() -> list[str]:
    """All 238 pre-training classes, in their fixed order."""
    return _stable_order(_combine(UPPER, LOWER))


def downstream_class_names() -> list[str]:
    """All 120 downstream classes (each uses a primitive pre-training never shows)."""
    all_upper = {**UPPER, **NOVEL_UPPER}
    all_lower = {**LOWER, **NOVEL_LOWER}
    names = [n for n in _combine(all_upper, all_lower)
             if n.split("-")[0] in NOVEL_UPPER or n.split("-")[1] in NOVEL_LOWER]
    return _stable_order(names)


def parse_class(name: str) -> tuple[Primitive, Primitive, float]:
    upper, lower, tempo = name.split("-")
    return {**UPPER, **NOVEL_UPPER}[upper], {**LOWER, **NOVEL_LOWER}[lower], TEMPOS[tempo]


def class_pose(name: str, num_frames: int, rng: np.random.Generator) -> Pose:
    """Joint-angle trajectories for one clip of class `name`, with this clip's speed, phase,
    amplitude and a little smooth joint noise drawn from `rng`."""
    from .skeleton import neutral_pose

    upper, lower, cycles = parse_class(name)
    u = np.arange(num_frames) / num_frames
    pose = neutral_pose(num_frames)
    # Upper and lower body keep separate phases so a class is not one fixed choreography.
    speed = cycles * rng.uniform(0.85, 1.15)
    upper(pose, Rhythm(u, speed, rng.uniform(0, 1), rng.uniform(0.85, 1.1)))
    lower(pose, Rhythm(u, speed, rng.uniform(0, 1), rng.uniform(0.85, 1.1)))
    # Smooth noise: a random low-frequency sinusoid per channel, a few degrees.
    for key in pose:
        if key in ("lift", "shift_x"):
            continue
        f, ph = rng.uniform(0.3, 1.5), rng.uniform(0, 2 * np.pi)
        pose[key] = pose[key] + 0.04 * np.sin(2 * np.pi * f * u + ph)
    return pose
