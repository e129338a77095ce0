"""A 3D kinematic skeleton: 19 joints, randomised body proportions, forward kinematics.

World frame: metres, +y up, the actor faces +z at zero yaw, so the actor's left is +x.
A pose is a dict of joint angles, each an array over frames (see `neutral_pose`); forward
kinematics turns it into joint positions (T, 19, 3) with the feet resting on the floor (y = 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

JOINTS = (
    "pelvis", "spine", "neck", "head", "nose",
    "l_shoulder", "l_elbow", "l_hand", "r_shoulder", "r_elbow", "r_hand",
    "l_hip", "l_knee", "l_ankle", "l_toe", "r_hip", "r_knee", "r_ankle", "r_toe",
)
J = {name: i for i, name in enumerate(JOINTS)}

# Angle channels of a pose. Per-side channels exist as "l_<name>" and "r_<name>".
BODY_CHANNELS = ("root_yaw", "trunk_pitch", "trunk_roll", "head_pitch", "lift", "shift_x")
SIDE_CHANNELS = ("sh_flex", "sh_abd", "sh_horiz", "elbow", "hip_flex", "hip_abd", "knee")
SIDES = {"l": 1.0, "r": -1.0}  # sign of the side's x offset in the body frame


@dataclass(frozen=True)
class Body:
    """Segment lengths and limb radii in metres (one actor)."""

    height: float
    thigh: float
    shin: float
    ankle: float      # ankle height above the sole
    foot: float
    torso: float      # pelvis to neck base
    neck: float       # neck base to head centre
    head_r: float
    shoulder_w: float  # half-width
    hip_w: float       # half-width
    upper_arm: float
    forearm: float     # elbow to hand centre
    r_torso: float
    r_upper_arm: float
    r_forearm: float
    r_thigh: float
    r_shin: float
    r_hand: float
    r_foot: float
    r_neck: float


def squeeze(x, centre: float, variation: float):
    """Pull a random draw towards the centre of its range: `variation` 1 keeps the full
    range, 0 collapses it. Draws are made the same way at any variation, so a clip keeps its
    identity (actor, timing, colours) when only the spread changes."""
    return centre + variation * (x - centre)


def sample_body(rng: np.random.Generator, variation: float = 1.0) -> Body:
    """Random proportions: height 1.45-1.95 m, each segment +-8 %, build (girth) 0.8-1.3
    (ranges scaled by `variation`)."""
    h = squeeze(rng.uniform(1.45, 1.95), 1.7, variation)

    def seg(ratio: float) -> float:
        return float(h * ratio * squeeze(rng.uniform(0.92, 1.08), 1.0, variation))

    build = squeeze(rng.uniform(0.8, 1.3), 1.05, variation)

    def girth(ratio: float) -> float:
        return float(h * ratio * build * squeeze(rng.uniform(0.92, 1.08), 1.0, variation))

    return Body(
        height=float(h), thigh=seg(0.245), shin=seg(0.25), ankle=seg(0.04), foot=seg(0.09),
        torso=seg(0.285), neck=seg(0.105), head_r=seg(0.066),
        shoulder_w=seg(0.115), hip_w=seg(0.058), upper_arm=seg(0.175), forearm=seg(0.19),
        # Limbs a little thicker than anatomy: at 64-112 px they must stay several pixels wide.
        r_torso=girth(0.078), r_upper_arm=girth(0.036), r_forearm=girth(0.031),
        r_thigh=girth(0.05), r_shin=girth(0.04), r_hand=girth(0.034), r_foot=girth(0.028),
        r_neck=girth(0.03),
    )


def neutral_pose(num_frames: int) -> dict[str, np.ndarray]:
    """Relaxed standing: arms slightly out, elbows and knees slightly bent."""
    pose = {name: np.zeros(num_frames, np.float64) for name in BODY_CHANNELS}
    for side in SIDES:
        for name in SIDE_CHANNELS:
            pose[f"{side}_{name}"] = np.zeros(num_frames, np.float64)
        pose[f"{side}_sh_abd"] += 0.12
        pose[f"{side}_elbow"] += 0.15
        pose[f"{side}_knee"] += 0.04
    return pose


# Rotation matrices stacked over frames: (T,) angles -> (T, 3, 3).
def _rot(axis: int, a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    m = np.zeros(a.shape + (3, 3))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]  # x: y->z, y: z->x, z: x->y
    m[..., axis, axis] = 1.0
    m[..., i, i] = c
    m[..., j, j] = c
    m[..., i, j] = -s
    m[..., j, i] = s
    return m


def rx(a: np.ndarray) -> np.ndarray:
    return _rot(0, a)


def ry(a: np.ndarray) -> np.ndarray:
    return _rot(1, a)


def rz(a: np.ndarray) -> np.ndarray:
    return _rot(2, a)


def _apply(R: np.ndarray, v) -> np.ndarray:
    """Rotate one body-frame vector by per-frame rotations: (T,3,3) x (3,) -> (T,3)."""
    return R @ np.asarray(v, np.float64)


def forward_kinematics(body: Body, pose: dict[str, np.ndarray]) -> np.ndarray:
    """Joint positions (T, 19, 3) in metres; the lowest foot point touches y = 0 each frame
    (plus `lift`, the airborne height of a jump), the pelvis sits above x = shift_x, z = 0."""
    T = len(pose["root_yaw"])
    out = np.zeros((T, len(JOINTS), 3))
    R_yaw = ry(pose["root_yaw"])
    R_trunk = R_yaw @ rx(pose["trunk_pitch"]) @ rz(pose["trunk_roll"])
    pelvis = np.zeros((T, 3))
    out[:, J["pelvis"]] = pelvis
    out[:, J["spine"]] = _apply(R_trunk, (0, body.torso * 0.5, 0))
    neck = _apply(R_trunk, (0, body.torso, 0))
    out[:, J["neck"]] = neck
    R_head = R_trunk @ rx(pose["head_pitch"])
    head = neck + _apply(R_head, (0, body.neck, 0))
    out[:, J["head"]] = head
    out[:, J["nose"]] = head + _apply(R_head, (0, -0.15 * body.head_r, 0.95 * body.head_r))
    for side, s in SIDES.items():
        p = lambda name: pose[f"{side}_{name}"]  # noqa: E731 - a local shorthand
        shoulder = neck + _apply(R_trunk, (s * body.shoulder_w, -0.03 * body.height, 0))
        R_arm = R_trunk @ ry(s * p("sh_horiz")) @ rz(s * p("sh_abd")) @ rx(-p("sh_flex"))
        elbow = shoulder + _apply(R_arm, (0, -body.upper_arm, 0))
        hand = elbow + _apply(R_arm @ rx(-p("elbow")), (0, -body.forearm, 0))
        hip = _apply(R_yaw, (s * body.hip_w, 0, 0))
        R_leg = R_yaw @ rz(s * p("hip_abd")) @ rx(-p("hip_flex"))
        knee = hip + _apply(R_leg, (0, -body.thigh, 0))
        R_shin = R_leg @ rx(p("knee"))
        ankle = knee + _apply(R_shin, (0, -body.shin, 0))
        # The foot stays roughly level: undo part of the shin's pitch.
        toe = ankle + _apply(R_shin @ rx(-p("knee") * 0.7), (0, -body.ankle, body.foot))
        for name, value in (("shoulder", shoulder), ("elbow", elbow), ("hand", hand),
                            ("hip", hip), ("knee", knee), ("ankle", ankle), ("toe", toe)):
            out[:, J[f"{side}_{name}"]] = value
    # Ground contact: the lowest sole point rests on the floor, then jumps lift the body.
    sole = np.minimum(out[:, [J["l_ankle"], J["r_ankle"]], 1] - body.ankle,
                      out[:, [J["l_toe"], J["r_toe"]], 1] - 0.3 * body.r_foot).min(axis=1)
    out[..., 1] += (-sole + pose["lift"])[:, None]
    out[..., 0] += pose["shift_x"][:, None]
    return out


# Capsules drawn for a skeleton: (joint a, joint b, radius field, part) where part picks the
# colour (skin, shirt, sleeve, trousers, shoes, nose).
CAPSULES = (
    ("pelvis", "neck", "r_torso", "shirt"),
    ("neck", "head", "r_neck", "skin"),
    ("head", "head", "head_r", "skin"),
    ("nose", "nose", None, "nose"),
    ("l_shoulder", "l_elbow", "r_upper_arm", "shirt"),
    ("l_elbow", "l_hand", "r_forearm", "sleeve"),
    ("l_hand", "l_hand", "r_hand", "skin"),
    ("r_shoulder", "r_elbow", "r_upper_arm", "shirt"),
    ("r_elbow", "r_hand", "r_forearm", "sleeve"),
    ("r_hand", "r_hand", "r_hand", "skin"),
    ("l_hip", "l_knee", "r_thigh", "trousers"),
    ("l_knee", "l_ankle", "r_shin", "trousers"),
    ("l_ankle", "l_toe", "r_foot", "shoes"),
    ("r_hip", "r_knee", "r_thigh", "trousers"),
    ("r_knee", "r_ankle", "r_shin", "trousers"),
    ("r_ankle", "r_toe", "r_foot", "shoes"),
    ("l_shoulder", "r_shoulder", "r_upper_arm", "shirt"),
    ("l_hip", "r_hip", "r_thigh", "trousers"),
)
