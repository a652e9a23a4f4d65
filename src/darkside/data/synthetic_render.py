"""Procedural facades and their day / sunset / night rendering by homography.

World frame: the facades lie in the plane ``Z = 0`` (metres), ``X`` along the street, ``Y`` up,
``Z`` towards the street, where the cameras stand (``Z > 0``). Cameras use the OpenCV convention
(x right, y down, z forward); a pose is world->camera, ``x_c = R X_w + t``; pixel centres sit at
integer coordinates. Because the scene is a plane, a view is the homography
``H = K [r1 r2 t]`` from plane points ``(X, Y, 1)`` to pixels; every texture layer is warped with
that same homography, and the ground-truth edges are the same world segments projected with
``K, R, t``, so images, edge maps and poses agree exactly.

A scene is built once in texture space (``ppm`` texture pixels per metre): albedo, day shading
(ledge shadows), glass mask, reflection gradient, window ids, sky mask, lamp light field and
emitters. The three lighting conditions are composed from those layers per view; night is a
different image formation (lit windows, lamps that do not exist by day, casts, glare, sensor
noise), not a gain applied to day. Two more conditions stand in for RobotCar Seasons' weather:
``overcast`` (the day formation under a weak sun and a grey sky) and ``night-rain`` (the night
formation on wet surfaces, with rain streaks in front of the camera). ``fog`` stands in for Foggy
Cityscapes (DaCo's clear -> foggy task), made the way that set was made: the day image attenuated by
the distance along each ray towards an airlight colour (Koschmieder's law, t = exp(-3.912 d / V) for a
visibility V), the sky all airlight.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import cv2
import numpy as np

from darkside.geometry import camera_center

#: The Tokyo-like conditions every view family is rendered in (the contact sheet, the calibration)
CONDITIONS: tuple[str, ...] = ("day", "sunset", "night")
#: Everything :func:`render` draws: the Tokyo-like conditions plus RobotCar Seasons' weather (its dusk is
#: ``sunset``)
RENDER_CONDITIONS: tuple[str, ...] = (*CONDITIONS, "overcast", "night-rain", "fog")
#: Conditions with lit windows (a per-view lit pattern is drawn for them)
LIT_CONDITIONS: frozenset[str] = frozenset({"sunset", "night", "night-rain"})

#: Style families. Similar scenes must exist (retrieval must not saturate), so a family fixes the
#: look (materials, window shapes, roof) and a scene only draws its layout within the family.
_LOOK = ("wall", "floors", "floor_h", "win_w", "win_h", "frame", "frame_rgb", "ledges", "roof", "shutters", "arch",
         "mullion")
FAMILIES: dict[str, dict] = {name: dict(zip(_LOOK, look, strict=True)) for name, look in {
    "classic": (((0.78, 0.72, 0.60), (0.62, 0.60, 0.56)), (4, 6), (3.3, 3.8), (0.35, 0.5), (0.5, 0.62), (0.12, 0.2),
                (0.9, 0.88, 0.82), "every", "cornice", False, False, True),
    "brick": (((0.58, 0.30, 0.22), (0.48, 0.26, 0.20)), (3, 5), (3.0, 3.4), (0.3, 0.42), (0.45, 0.58), (0.1, 0.16),
              (0.92, 0.92, 0.9), "some", "gable", False, False, True),
    "modern": (((0.55, 0.58, 0.62), (0.35, 0.37, 0.40)), (6, 9), (3.2, 3.6), (0.7, 0.9), (0.55, 0.7), (0.04, 0.08),
               (0.2, 0.21, 0.23), "none", "flat", False, False, True),
    "haussmann": (((0.86, 0.80, 0.66), (0.80, 0.74, 0.62)), (5, 6), (3.2, 3.6), (0.38, 0.48), (0.62, 0.72),
                  (0.08, 0.12), (0.95, 0.93, 0.88), "balcony", "mansard", False, False, True),
    "plaster": (((0.90, 0.78, 0.45), (0.80, 0.55, 0.55)), (3, 4), (3.0, 3.4), (0.3, 0.4), (0.5, 0.6), (0.08, 0.12),
                (0.95, 0.95, 0.92), "some", "gable", True, False, False),
    "industrial": (((0.42, 0.42, 0.42), (0.30, 0.31, 0.33)), (3, 5), (4.0, 4.8), (0.6, 0.8), (0.55, 0.7), (0.06, 0.1),
                   (0.15, 0.16, 0.17), "some", "flat", False, False, True),
    "gothic": (((0.66, 0.60, 0.50), (0.52, 0.50, 0.46)), (3, 4), (4.2, 5.2), (0.3, 0.4), (0.6, 0.75), (0.12, 0.18),
               (0.75, 0.70, 0.62), "some", "gable", False, True, True),
}.items()}


#: hues of the blade signs (a scene has one to three): distinct at night, where they glow
BLADE_PALETTE: tuple[tuple[float, float, float], ...] = (
    (0.9, 0.1, 0.1), (0.1, 0.8, 0.2), (0.1, 0.3, 0.95), (0.95, 0.85, 0.1), (0.9, 0.2, 0.8), (0.1, 0.85, 0.9),
    (0.95, 0.5, 0.1), (0.9, 0.9, 0.9))


@dataclass
class SceneSpec:
    """Vector description of a scene in world metres, filled by the facade generators."""

    x_range: tuple[float, float]
    y_range: tuple[float, float]
    fills: list[tuple[np.ndarray, tuple[float, float, float]]] = field(default_factory=list)
    solids: list[np.ndarray] = field(default_factory=list)  # building bodies: everything else is sky
    windows: list[np.ndarray] = field(default_factory=list)  # glass polygons; index = window id
    shadows: list[tuple[np.ndarray, float]] = field(default_factory=list)  # day shading factor
    lamps: list[tuple[float, float, str]] = field(default_factory=list)  # (x, y, street | wall)
    signs: list[tuple[np.ndarray, tuple[float, float, float]]] = field(default_factory=list)  # glow at night
    boards: list[tuple[np.ndarray, tuple[float, float, float]]] = field(default_factory=list)  # lit, own colours
    edges: list[np.ndarray] = field(default_factory=list)  # polylines (closed when first == last)
    facades: list[tuple[float, float, float, float]] = field(default_factory=list)  # x0, y0, x1, y1


def rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """Closed rectangle outline (5 points) in world metres."""
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]], dtype=np.float64)


def _jitter(rgb: tuple[float, float, float], rng: np.random.Generator, s: float) -> tuple[float, float, float]:
    return tuple(float(np.clip(c * (1 + rng.normal(0, s)), 0.02, 1.0)) for c in rgb)  # type: ignore[return-value]


def add_building(spec: SceneSpec, rng: np.random.Generator, x0: float, width: float, family: str,
                 detail: bool = True, boards: int = 0) -> tuple[float, float, float, float]:
    """Draw one building facade on ``[x0, x0 + width]``; return its rectangle (x0, 0, x1, top).

    ``detail=False`` draws a simpler neighbour (no signs or lamps). The window grid, sizes,
    colours and ornaments are drawn from ``rng`` inside the family's ranges, which is what makes
    each landmark identifiable while the family keeps scenes alike. ``boards`` billboards
    (:func:`add_board`) go on the upper floors last; ``boards=0`` draws nothing from ``rng`` for them.
    """
    f = FAMILIES[family]
    x1 = x0 + width
    lo, hi = np.array(f["wall"][0]), np.array(f["wall"][1])
    wall = _jitter(tuple(lo + (hi - lo) * rng.random()), rng, 0.06)
    floors = int(rng.integers(f["floors"][0], f["floors"][1] + 1))
    fh = float(rng.uniform(*f["floor_h"]))
    ground_h = fh * float(rng.uniform(1.0, 1.25))
    top = ground_h + fh * (floors - 1)
    body = rect(x0, 0.0, x1, top)
    spec.fills.append((body, wall))
    spec.solids.append(body)
    spec.edges.append(body)
    spec.facades.append((x0, 0.0, x1, top))
    first = {k: len(getattr(spec, k)) for k in _COVERABLE}  # what this building adds from here on
    # roof
    roof_rgb = _jitter((0.32, 0.30, 0.30) if family != "brick" else (0.35, 0.22, 0.18), rng, 0.1)
    if f["roof"] == "gable":
        peak = top + width * float(rng.uniform(0.15, 0.3))
        cx = x0 + width * float(rng.uniform(0.4, 0.6))
        poly = np.array([[x0, top], [x1, top], [cx, peak], [x0, top]])
        spec.fills.append((poly, roof_rgb))
        spec.solids.append(poly)
        spec.edges.append(poly)
    elif f["roof"] == "mansard":
        mh = fh * 0.9
        inset = min(1.2, width * 0.08)
        poly = np.array([[x0, top], [x1, top], [x1 - inset, top + mh], [x0 + inset, top + mh], [x0, top]])
        spec.fills.append((poly, roof_rgb))
        spec.solids.append(poly)
        spec.edges.append(poly)
    elif f["roof"] == "cornice":
        c = rect(x0 - 0.3, top - 0.5, x1 + 0.3, top + 0.3)
        spec.fills.append((c, _jitter(tuple(np.array(wall) * 1.08), rng, 0.02)))
        spec.solids.append(c)
        spec.edges.append(c)
        spec.shadows.append((rect(x0, top - 1.2, x1, top - 0.5), 0.55))
    else:  # flat: a parapet line
        spec.edges.append(np.array([[x0, top - 0.4], [x1, top - 0.4]]))
        spec.fills.append((rect(x0, top - 0.4, x1, top), _jitter(tuple(np.array(wall) * 0.85), rng, 0.02)))
    # window grid
    ncols = max(2, round(width / float(rng.uniform(2.4, 3.4))))
    bay = width / ncols
    ww = bay * float(rng.uniform(*f["win_w"])) * (1.6 if family == "modern" else 1.0)
    ww = min(ww, bay * 0.92)
    wh = fh * float(rng.uniform(*f["win_h"]))
    frame = float(rng.uniform(*f["frame"]))
    frame_rgb = _jitter(f["frame_rgb"], rng, 0.04)
    door_col = int(rng.integers(0, ncols))
    shop = detail and family in ("classic", "haussmann", "modern", "plaster") and rng.random() < 0.6
    for r in range(floors):
        ybase = 0.0 if r == 0 else ground_h + fh * (r - 1)
        h_floor = ground_h if r == 0 else fh
        if (f["ledges"] == "every" or (f["ledges"] == "some" and r in (1, floors - 1)) or \
                (f["ledges"] == "balcony" and r in (2, floors - 1))) and r > 0:
            ledge = rect(x0, ybase - 0.12, x1, ybase + 0.22)
            spec.fills.append((ledge, _jitter(tuple(np.minimum(np.array(wall) * 1.12, 1)), rng, 0.02)))
            spec.edges.append(ledge)
            spec.shadows.append((rect(x0, ybase - 0.6, x1, ybase - 0.12), 0.6))
            if f["ledges"] == "balcony":  # a wrought-iron hand rail along the balcony
                rail = rect(x0 + 0.2, ybase + 0.9, x1 - 0.2, ybase + 1.02)
                spec.fills.append((rail, (0.12, 0.12, 0.13)))
                spec.edges.append(rail)
        for c in range(ncols):
            cx = x0 + bay * (c + 0.5)
            if r == 0 and c == door_col:
                dw, dh = min(bay * 0.5, 1.6), min(h_floor * 0.8, 2.8)
                door = rect(cx - dw / 2, 0.0, cx + dw / 2, dh)
                spec.fills.append((door, _jitter((0.25, 0.17, 0.12), rng, 0.2)))
                spec.edges.append(door)
                spec.shadows.append((rect(cx - dw / 2, dh - 0.35, cx + dw / 2, dh), 0.6))
                if detail:
                    spec.lamps.append((cx + dw / 2 + 0.4, dh + 0.3, "wall"))
                continue
            if r == 0 and shop:
                sw = bay * 0.85
                gx0, gx1, gy0, gy1 = cx - sw / 2, cx + sw / 2, 0.3, min(h_floor - 0.8, 2.6)
            else:
                gx0, gx1 = cx - ww / 2, cx + ww / 2
                gy0 = ybase + (h_floor - wh) * (0.45 if r else 0.35)
                gy1 = gy0 + (wh if r else min(wh, h_floor * 0.6))
            fr = rect(gx0 - frame, gy0 - frame, gx1 + frame, gy1 + frame)
            spec.fills.append((fr, frame_rgb))
            spec.edges.append(fr)
            if f["shutters"] and not (r == 0 and shop):
                sh_rgb = _jitter((0.25, 0.45, 0.3) if rng.random() < 0.5 else (0.5, 0.3, 0.2), rng, 0.05)
                for sx in (gx0 - frame - (gx1 - gx0) / 2, gx1 + frame):
                    s = rect(sx, gy0, sx + (gx1 - gx0) / 2, gy1)
                    spec.fills.append((s, sh_rgb))
                    spec.edges.append(s)
            if f["arch"] and r > 0:
                glass = np.array([[gx0, gy0], [gx1, gy0], [gx1, gy1], [(gx0 + gx1) / 2, gy1 + (gx1 - gx0) * 0.6],
                                  [gx0, gy1], [gx0, gy0]])
            else:
                glass = rect(gx0, gy0, gx1, gy1)
            spec.windows.append(glass)
            spec.fills.append((glass, (0.1, 0.12, 0.15)))  # glass albedo is replaced by the lighting
            spec.shadows.append((rect(gx0, gy1 - (gy1 - gy0) * 0.22, gx1, gy1), 0.7))
            if f["mullion"] and (gx1 - gx0) > 0.8:
                m = max(0.05, frame * 0.5)
                xm = (gx0 + gx1) / 2
                mul = rect(xm - m / 2, gy0, xm + m / 2, gy1)
                spec.fills.append((mul, frame_rgb))
                if family in ("industrial", "classic"):
                    ym = gy0 + (gy1 - gy0) * 0.62
                    spec.fills.append((rect(gx0, ym - m / 2, gx1, ym + m / 2), frame_rgb))
        if r == 0 and detail and rng.random() < 0.7:  # a sign above the ground floor
            sw = float(rng.uniform(2.0, min(6.0, width * 0.4)))
            sx = x0 + float(rng.uniform(0.5, max(0.6, width - sw - 0.5)))
            sy = min(ground_h - 0.9, 2.9)
            sign = rect(sx, sy, sx + sw, sy + 0.7)
            sign_rgb = _jitter(((0.8, 0.15, 0.1), (0.1, 0.3, 0.7), (0.1, 0.55, 0.25), (0.9, 0.75, 0.1))[
                int(rng.integers(0, 4))], rng, 0.05)
            spec.fills.append((sign, sign_rgb))
            spec.signs.append((sign, sign_rgb))
            spec.edges.append(sign)
    # blade signs: tall, narrow, lit panels on the upper floors. What identifies a street at night is its
    # light sources; by day the same panels are coloured boards, so they are structure in both domains
    if detail:
        for _ in range(int(rng.integers(1, 4))):
            bw = float(rng.uniform(0.6, 1.0))
            bh = float(rng.uniform(2.5, min(6.0, max(2.6, top - ground_h))))
            bx = x0 + float(rng.uniform(0.2, max(0.3, width - bw - 0.2)))
            by = float(rng.uniform(ground_h, max(ground_h + 0.1, top - bh)))
            blade = rect(bx, by, bx + bw, by + bh)
            blade_rgb = _jitter(BLADE_PALETTE[int(rng.integers(0, len(BLADE_PALETTE)))], rng, 0.05)
            spec.fills.append((blade, blade_rgb))
            spec.signs.append((blade, blade_rgb))
            spec.edges.append(blade)
    # ornaments: a few small rosettes / plaques between windows
    if detail:
        for _ in range(int(rng.integers(0, 4))):
            ox = x0 + float(rng.uniform(0.5, width - 1.0))
            oy = float(rng.uniform(ground_h, max(ground_h + 0.5, top - 1.0)))
            orn = rect(ox, oy, ox + 0.5, oy + 0.5)
            spec.fills.append((orn, _jitter(tuple(np.array(wall) * 0.7), rng, 0.05)))
            spec.edges.append(orn)
    for _ in range(boards):
        add_board(spec, rng, (x0, ground_h, x1, top), fh, first)
    return (x0, 0.0, x1, top)


#: SceneSpec lists whose items a board hides (each item a polygon or a (polygon, value) pair); a later board
#: hides an earlier one's blocks too, by day and at night alike
_COVERABLE = ("fills", "windows", "shadows", "signs", "boards", "edges")


def _polygon(item: np.ndarray | tuple[np.ndarray, object]) -> np.ndarray:
    return item[0] if isinstance(item, tuple) else item


def add_board(spec: SceneSpec, rng: np.random.Generator, upper: tuple[float, float, float, float], floor_h: float,
              first: dict[str, int]) -> tuple[float, float, float, float]:
    """A backlit billboard on a facade's upper floors ``upper = (x0, y0, x1, top)``; return its rectangle.

    Two to four columns and one or two rows of blocks in strong colours, in a layout of the board's own.
    What tells one real street from the next at a glance (an advert, a mural, a shop's light box) is big,
    seen from every side, and still there at night in its own colours; window grids alone are shared by a
    whole style family. Every detail of the building (items of the ``_COVERABLE`` lists from index
    ``first[name]`` on) that the board touches is removed, except the ones spanning the facade (ledges,
    rails, cornices), which the board is painted over.
    """
    x0, y0, x1, top = upper
    width = x1 - x0
    bw = width * float(rng.uniform(0.3, 0.5))
    bh = float(np.clip(floor_h * rng.uniform(1.3, 2.2), 2.5, max(2.6, top - y0 - 0.6)))
    bx = x0 + float(rng.uniform(0.4, max(0.5, width - bw - 0.4)))
    by = float(rng.uniform(y0 + 0.3, max(y0 + 0.4, top - bh - 0.3)))
    box = np.array([bx - 0.15, by - 0.15, bx + bw + 0.15, by + bh + 0.15])
    for name in _COVERABLE:
        items = getattr(spec, name)
        kept = []
        for item in items[first[name]:]:
            poly = _polygon(item)
            lo, hi = poly.min(0), poly.max(0)
            touches = hi[0] > box[0] and lo[0] < box[2] and hi[1] > box[1] and lo[1] < box[3]
            if not touches or hi[0] - lo[0] > 0.6 * width:
                kept.append(item)
        items[first[name]:] = kept
    spec.fills.append((rect(*box), (0.1, 0.1, 0.1)))  # the frame
    spec.edges.append(rect(*box))
    n_cols, n_rows = int(rng.integers(2, 5)), int(rng.integers(1, 3))
    xs = bx + bw * np.sort(np.concatenate([[0.0, 1.0], rng.uniform(0.15, 0.85, n_cols - 1)]))
    ys = by + bh * np.sort(np.concatenate([[0.0, 1.0], rng.uniform(0.25, 0.75, n_rows - 1)]))
    for i in range(n_cols):
        for j in range(n_rows):
            rgb = _jitter(BLADE_PALETTE[int(rng.integers(0, len(BLADE_PALETTE)))], rng, 0.05)
            block = rect(xs[i], ys[j], xs[i + 1], ys[j + 1])
            spec.fills.append((block, rgb))
            spec.boards.append((block, rgb))
            spec.edges.append(block)
    return float(box[0]), float(box[1]), float(box[2]), float(box[3])


def add_street_lamps(spec: SceneSpec, rng: np.random.Generator, x0: float, x1: float) -> None:
    """Lamp poles along the pavement: unlit (dark poles) by day, sodium sources at night."""
    x = x0 + float(rng.uniform(2.0, 9.0))
    while x < x1:
        pole = rect(x - 0.09, 0.0, x + 0.09, 4.6)
        head = rect(x - 0.35, 4.6, x + 0.35, 4.95)
        spec.fills.append((pole, (0.18, 0.18, 0.19)))
        spec.fills.append((head, (0.28, 0.28, 0.27)))
        spec.lamps.append((x, 4.75, "street"))
        x += float(rng.uniform(9.0, 15.0))


def _board_count(rng: np.random.Generator, most: int) -> int:
    """1..most boards (none drawn from ``rng`` when ``most`` is 0)."""
    return int(rng.integers(1, most + 1)) if most > 0 else 0


def landmark_scene(rng: np.random.Generator, family: str, neighbour_families: tuple[str, ...],
                   margin: float = 25.0, boards: int = 0, neighbour_boards: float = 0.0) -> SceneSpec:
    """One landmark facade centred at X = 0 with flanking neighbours, sky, pavement and lamps.

    The landmark carries 1..``boards`` billboards, each neighbour one with probability ``neighbour_boards``.
    """
    width = float(rng.uniform(15.0, 25.0))
    spec = SceneSpec(x_range=(-width / 2 - margin, width / 2 + margin), y_range=(-6.0, 32.0))
    _pavement(spec, rng)
    main = add_building(spec, rng, -width / 2, width, family, boards=_board_count(rng, boards))
    _neighbours(spec, rng, -width / 2, width / 2, neighbour_families, gaps=True, boards=neighbour_boards)
    add_street_lamps(spec, rng, spec.x_range[0], spec.x_range[1])
    spec.facades = [main] + [f for f in spec.facades if f != main]
    return spec


def street_scene(rng: np.random.Generator, families: tuple[str, ...], n_facades: int,
                 margin: float = 25.0, boards: int = 0, neighbour_boards: float = 0.0) -> SceneSpec:
    """A street of ``n_facades`` adjacent landmark facades starting at X = 0 (localization split);
    billboards as in :func:`landmark_scene`."""
    widths = rng.uniform(15.0, 25.0, size=n_facades)
    total = float(widths.sum())
    spec = SceneSpec(x_range=(-margin, total + margin), y_range=(-6.0, 32.0))
    _pavement(spec, rng)
    x = 0.0
    mains = []
    for w in widths:
        family = families[int(rng.integers(0, len(families)))]
        mains.append(add_building(spec, rng, x, float(w), family, boards=_board_count(rng, boards)))
        x += float(w)
    _neighbours(spec, rng, 0.0, total, families, gaps=False, boards=neighbour_boards)
    add_street_lamps(spec, rng, spec.x_range[0], spec.x_range[1])
    spec.facades = mains
    return spec


def _neighbours(spec: SceneSpec, rng: np.random.Generator, x_left: float, x_right: float, families: tuple[str, ...],
                gaps: bool, boards: float = 0.0) -> None:
    """Plain buildings (no detail) out to the scene's edges: leftwards from ``x_left``, then rightwards from
    ``x_right``; with ``gaps`` some are separated by a small alley; each has a billboard with probability
    ``boards`` (nothing drawn from ``rng`` for it when 0)."""
    for side, x in ((-1, x_left), (1, x_right)):
        while (x > spec.x_range[0]) if side < 0 else (x < spec.x_range[1]):
            w = float(rng.uniform(8.0, 18.0))
            family = families[int(rng.integers(0, len(families)))]
            n = int(rng.random() < boards) if boards > 0 else 0
            add_building(spec, rng, x - w if side < 0 else x, w, family, detail=False, boards=n)
            x += side * (w + (float(rng.uniform(1.5, 4.0)) if gaps and rng.random() < 0.3 else 0.0))


def _pavement(spec: SceneSpec, rng: np.random.Generator) -> None:
    x0, x1 = spec.x_range
    grey = _jitter((0.5, 0.5, 0.49), rng, 0.05)
    spec.fills.append((rect(x0 - 1, spec.y_range[0] - 1, x1 + 1, 0.0), grey))
    spec.fills.append((rect(x0 - 1, -0.35, x1 + 1, 0.0), tuple(min(1.0, c * 1.2) for c in grey)))
    spec.solids.append(rect(x0 - 1, spec.y_range[0] - 1, x1 + 1, 0.0))
    spec.edges.append(np.array([[x0, 0.0], [x1, 0.0]]))
    spec.edges.append(np.array([[x0, -0.35], [x1, -0.35]]))


@functools.lru_cache(maxsize=1)
def _grain_tile() -> np.ndarray:
    # one fixed noise tile (seeded constant) shared by all scenes; each scene takes its own crop
    g = np.random.default_rng(12345).standard_normal((1024, 2048), dtype=np.float32)
    return cv2.GaussianBlur(g, (0, 0), 0.8, borderType=cv2.BORDER_REFLECT)


def _grain(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Material grain for an h x w texture: a crop of the shared tile (tiled when too large)."""
    tile = _grain_tile()
    big = tile if h <= tile.shape[0] and w <= tile.shape[1] else \
        np.tile(tile, (-(-h // tile.shape[0]), -(-w // tile.shape[1])))
    y0 = int(rng.integers(0, max(1, big.shape[0] - h)))
    x0 = int(rng.integers(0, max(1, big.shape[1] - w)))
    return big[y0:y0 + h, x0:x0 + w]


@dataclass
class SceneLayers:
    """Texture-space layers of one scene, built once and warped for every view."""

    spec: SceneSpec
    ppm: float
    albedo: np.ndarray  # H x W x 3
    shade_glass_wgrad_sky: np.ndarray  # H x W x 4
    glow_emit: np.ndarray  # H x W x 4: lamp light on surfaces, emitter RGB
    window_id: np.ndarray  # H x W float32: window index + 1, 0 elsewhere (warped nearest)
    lit_base: np.ndarray  # bool per window: lit at night in the scene's "typical" evening
    window_gain: np.ndarray  # per-window lit brightness / tint index
    world_from_tex: np.ndarray  # 3 x 3: (u, v, 1) texture pixel -> (X, Y, 1) world plane


def _to_tex(pts: np.ndarray, x0: float, y1: float, ppm: float) -> np.ndarray:
    """World metres -> texture pixel coordinates (pixel centres at integers), fixed point 1/8 px."""
    u = (pts[:, 0] - x0) * ppm - 0.5
    v = (y1 - pts[:, 1]) * ppm - 0.5
    return np.round(np.stack([u, v], 1) * 8).astype(np.int32)


def build_layers(spec: SceneSpec, rng: np.random.Generator, ppm: float = 8.0, lit_fraction: float = 0.5) -> SceneLayers:
    """Rasterise ``spec`` into texture layers (one pass of cv2.fillPoly per primitive)."""
    x0, x1 = spec.x_range
    y0, y1 = spec.y_range
    w, h = int(np.ceil((x1 - x0) * ppm)), int(np.ceil((y1 - y0) * ppm))

    def tp_all(polys: list[np.ndarray]) -> list[np.ndarray]:
        # one vectorised conversion for a whole list (per-polygon numpy calls dominate otherwise)
        if not polys:
            return []
        flat = _to_tex(np.concatenate(polys), x0, y1, ppm)
        return np.split(flat, np.cumsum([len(p) for p in polys])[:-1])

    albedo = np.zeros((h, w, 3), np.float32)
    for q, (_, rgb) in zip(tp_all([p for p, _ in spec.fills]), spec.fills, strict=True):
        cv2.fillPoly(albedo, [q], rgb, lineType=cv2.LINE_8, shift=3)
    # fixed material grain: gives walls texture that is the same in every view
    albedo *= (1.0 + 0.07 * _grain(rng, h, w))[..., None]
    solid = np.zeros((h, w), np.float32)
    cv2.fillPoly(solid, tp_all(spec.solids), 1.0, shift=3)
    shade = np.ones((h, w), np.float32)
    for q, (_, s) in zip(tp_all([p for p, _ in spec.shadows]), spec.shadows, strict=True):
        cv2.fillPoly(shade, [q], s, shift=3)
    glass = np.zeros((h, w), np.float32)
    wgrad = np.zeros((h, w), np.float32)
    wid = np.zeros((h, w), np.float32)
    rows = np.arange(h, dtype=np.float32)[:, None]
    for i, q in enumerate(tp_all(spec.windows)):
        # rasterise each pane in its own small bounding box (a full-size mask per window is slow)
        xa, ya = np.maximum((q.min(0) >> 3) - 1, 0)
        xb, yb = np.minimum((q.max(0) >> 3) + 2, [w, h])
        if xa >= xb or ya >= yb:
            continue
        sub = np.zeros((yb - ya, xb - xa), np.uint8)
        cv2.fillPoly(sub, [q - np.array([xa, ya], np.int32) * 8], 1, shift=3)
        sub = sub.astype(bool)
        glass[ya:yb, xa:xb][sub] = 1.0
        wid[ya:yb, xa:xb][sub] = i + 1
        # reflection gradient: top of the pane reflects the zenith, bottom the horizon; the
        # per-window offset imitates panes tilted slightly differently
        g = (rows[ya:yb] - ya) / max(1, yb - ya) * 0.8 + float(rng.uniform(-0.15, 0.25))
        wgrad[ya:yb, xa:xb][sub] = np.broadcast_to(g, sub.shape)[sub]
    sky = 1.0 - np.clip(solid, 0, 1)
    # lamp light: a pool of light on the wall around the head and on the pavement below
    glow = np.zeros((h, w), np.float32)
    emit = np.zeros((h, w, 3), np.float32)
    for lx, ly, kind in spec.lamps:
        strength, sigma = (1.0, 2.6) if kind == "street" else (0.6, 1.4)
        u, v = (lx - x0) * ppm, (y1 - ly) * ppm
        r = int(3 * sigma * ppm)
        ua, ub = max(0, int(u) - r), min(w, int(u) + r + 1)
        va, vb = max(0, int(v) - r), min(h, int(v) + int(ly * ppm) + r + 1)
        if ua >= ub or va >= vb:
            continue
        uu = (np.arange(ua, ub, dtype=np.float32) - u) / ppm
        vv = (np.arange(va, vb, dtype=np.float32) - v) / ppm
        d2 = uu[None, :] ** 2 + vv[:, None] ** 2
        pool = np.exp(-d2 / (2 * sigma**2))
        # the foot of the lamp: an elongated pool on the pavement (Y < 0), as lamps light the ground
        yw = y1 - (np.arange(va, vb, dtype=np.float32)) / ppm
        foot = np.exp(-(uu[None, :] ** 2) / (2 * (1.5 * sigma) ** 2) - ((yw[:, None] + 1.5) ** 2) / (2 * 1.2**2))
        glow[va:vb, ua:ub] += strength * (pool + (0.8 * foot if kind == "street" else 0.0))
        col = (1.0, 0.62, 0.25) if kind == "street" else (1.0, 0.85, 0.6)
        cv2.circle(emit, (round(u), round(v)), max(1, int(0.3 * ppm)), col, -1, lineType=cv2.LINE_8)
    for q, (_, rgb) in zip(tp_all([p for p, _ in spec.signs]), spec.signs, strict=True):
        cv2.fillPoly(emit, [q], tuple(0.3 + 0.7 * c for c in rgb), shift=3)
    # a backlit board keeps its colours at night (a sign's white core is what makes it glare)
    for q, (_, rgb) in zip(tp_all([p for p, _ in spec.boards]), spec.boards, strict=True):
        cv2.fillPoly(emit, [q], tuple(0.4 * c for c in rgb), shift=3)
    n = len(spec.windows)
    lit_base = rng.random(n) < lit_fraction
    window_gain = rng.uniform(0.65, 1.0, n)
    a = np.array([[1 / ppm, 0, x0 + 0.5 / ppm], [0, -1 / ppm, y1 - 0.5 / ppm], [0, 0, 1]], np.float64)
    return SceneLayers(spec=spec, ppm=ppm, albedo=np.clip(albedo, 0, 1),
                       shade_glass_wgrad_sky=np.dstack([shade, glass, np.clip(wgrad, 0, 1), sky]),
                       glow_emit=np.dstack([glow, emit]), window_id=wid, lit_base=lit_base,
                       window_gain=window_gain.astype(np.float32), world_from_tex=a)


# --- cameras --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Camera:
    """Pinhole camera: intrinsics ``K``, world->camera ``R, t``, image size in pixels."""

    K: np.ndarray
    R: np.ndarray
    t: np.ndarray
    width: int
    height: int

    @property
    def center(self) -> np.ndarray:
        """Camera centre in world metres (``-R^T t``)."""
        return camera_center(self.R, self.t)

    def plane_homography(self) -> np.ndarray:
        """Homography from world-plane points (X, Y, 1) on Z = 0 to pixels."""
        return self.K @ np.column_stack([self.R[:, 0], self.R[:, 1], self.t])

    def project(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixels of world points (N x 3) and their depths z_c."""
        pc = pts @ self.R.T + self.t
        z = pc[:, 2]
        return (pc[:, :2] @ self.K[:2, :2].T) / z[:, None] + self.K[:2, 2] * 1.0, z


def intrinsics(width: int, height: int, hfov_long_deg: float) -> np.ndarray:
    """K with square pixels; the field of view is that of the longer side."""
    f = max(width, height) / 2 / np.tan(np.radians(hfov_long_deg) / 2)
    return np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1]], np.float64)


def look_at(center: np.ndarray, target: np.ndarray, roll_deg: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """World->camera (R, t) of a camera at ``center`` looking at ``target`` with world Y up."""
    z = target - center
    z = z / np.linalg.norm(z)
    x = np.cross(z, np.array([0.0, 1.0, 0.0]))
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    r = np.stack([x, y, z])
    c, s = np.cos(np.radians(roll_deg)), np.sin(np.radians(roll_deg))
    r = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ r
    return r, -r @ center


# --- rendering ------------------------------------------------------------------------------------

SKY = {  # (zenith, horizon) colours
    "day": ((0.36, 0.56, 0.90), (0.78, 0.86, 0.96)),
    "sunset": ((0.30, 0.22, 0.48), (1.00, 0.58, 0.30)),
    "night": ((0.015, 0.02, 0.06), (0.07, 0.065, 0.11)),
    "overcast": ((0.60, 0.62, 0.66), (0.80, 0.81, 0.83)),  # a grey cloud deck, barely brighter at the horizon
    "night-rain": ((0.015, 0.02, 0.06), (0.07, 0.065, 0.11)),  # the night sky: rain does not light it
}


#: Per-view day variation: sun strength (low = overcast: weaker shading, more skylight), colour
#: temperature (+-fraction per channel) and exposure.
DAY_SUN: tuple[float, float] = (0.45, 1.0)
DAY_TINT: float = 0.12
DAY_EXPOSURE: tuple[float, float] = (0.8, 1.15)
#: Night ambient light (moon, sky glow, the city's scattered light) on the walls, RGB. Low and blue,
#: but not so low that facades vanish: night must keep some structure or nothing can bridge the gap.
NIGHT_AMBIENT: tuple[float, float, float] = (0.4, 0.44, 0.62)
#: Overcast: the sun through clouds (a small share of the light, so ledges cast almost no shadow), the
#: diffuse skylight that makes up the rest (RGB, slightly blue), colour temperature and exposure.
OVERCAST_SUN: tuple[float, float] = (0.08, 0.2)
OVERCAST_SKYLIGHT: tuple[float, float, float] = (0.70, 0.72, 0.78)
OVERCAST_TINT: float = 0.05
OVERCAST_EXPOSURE: tuple[float, float] = (0.85, 1.1)
#: Night rain. Wet materials absorb more (their diffuse albedo drops); wet surfaces mirror the light sources
#: as streaks below them; the drops in the air scatter light into a veil (lower contrast) and into wide halos
#: around the sources (stronger glare); the camera's auto exposure then meters the scene no brighter than
#: WET_METER of what it was before the rain's light was added.
WET_ALBEDO: float = 0.72
WET_REFLECTION: float = 0.9
WET_REFLECTION_LENGTH: float = 0.18  # of the image height
WET_VEIL: float = 0.3
WET_HALO: float = 0.6
WET_METER: float = 0.97
#: Rain streaks: per 1000 pixels, length (of the image height), slant from vertical (degrees), brightness
#: without and per unit of nearby light (a drop is seen by the light it scatters)
RAIN_DENSITY: float = 2.0
RAIN_LENGTH: tuple[float, float] = (0.05, 0.14)
RAIN_SLANT_DEG: tuple[float, float] = (8.0, 22.0)
RAIN_AMBIENT: float = 0.12
RAIN_SCATTER: float = 1.1
#: Fog: the meteorological visibility V (metres, uniform per view; the facades stand 16-30 m from a 'near'
#: camera, so a fifth to two thirds of a facade's light gets through; Foggy Cityscapes' 600 m fog on its
#: deeper street scenes is of the same order) and the airlight colour, a little blue, times a per-view level
FOG_VISIBILITY_M: tuple[float, float] = (50.0, 110.0)
FOG_AIRLIGHT: tuple[float, float, float] = (0.80, 0.82, 0.85)
FOG_LEVEL: tuple[float, float] = (0.85, 1.05)


def _supersample(ss: int) -> np.ndarray:
    # output pixel i covers super-sampled pixels ss*i .. ss*i + ss - 1, whose centre is ss*i + (ss-1)/2
    return np.array([[ss, 0, (ss - 1) / 2], [0, ss, (ss - 1) / 2], [0, 0, 1]], np.float64)


@functools.lru_cache(maxsize=16)
def _pixel_grid(w: int, h: int) -> np.ndarray:
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.stack([xs, ys, np.ones_like(xs)], -1).reshape(-1, 3)


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(img, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)


def render(layers: SceneLayers, cam: Camera, condition: str, rng: np.random.Generator, ss: int = 2,
           lit: np.ndarray | None = None) -> np.ndarray:
    """Render ``cam``'s view under ``condition`` (one of :data:`RENDER_CONDITIONS`); uint8 H x W x 3.

    ``rng`` draws only the per-view randomness (exposure, sensor noise, lit-window flips when
    ``lit`` is None, rain streaks), so two renderings of one view with different generators differ
    the way two night photographs of one place do. ``night-rain`` draws exactly what ``night`` draws,
    then its streaks: with equal generators the two differ by the rain alone.
    """
    if condition not in RENDER_CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}")
    fog = condition == "fog"
    condition = "day" if fog else condition  # fog is the day formation seen through the fog
    w, h = cam.width * ss, cam.height * ss
    s = _supersample(ss)
    m = s @ cam.plane_homography() @ layers.world_from_tex
    flags, border = cv2.INTER_LINEAR, cv2.BORDER_REPLICATE  # replicate: streets go on beyond the texture
    alb = cv2.warpPerspective(layers.albedo, m, (w, h), flags=flags, borderMode=border)
    sgws = cv2.warpPerspective(layers.shade_glass_wgrad_sky, m, (w, h), flags=flags, borderMode=border)
    shade, glass, wgrad, sky = (sgws[..., i] for i in range(4))
    # rays: elevation for the sky gradient; rays that never reach the plane see sky
    rays = _pixel_grid(w, h) @ (np.linalg.inv(s @ cam.K).T @ cam.R).astype(np.float32)  # world directions
    rays /= np.linalg.norm(rays, axis=1, keepdims=True)
    elev = rays[:, 1].reshape(h, w).astype(np.float32)
    hits = (rays[:, 2].reshape(h, w) < -1e-3).astype(np.float32)
    sky = np.maximum(sky, 1 - hits)
    zen, hor = (np.array(c, np.float32) for c in SKY[condition])
    tt = np.clip(elev / 0.6, 0, 1)[..., None] ** 0.7
    sky_rgb = hor * (1 - tt) + zen * tt

    if condition == "day":
        # day photographs differ too (sun or overcast, white balance): real SfM day pairs carry
        # that variation, and without it day-only fine-tuning forgets the invariance to it
        sun = float(rng.uniform(*DAY_SUN))
        tint = (1.0 + rng.uniform(-DAY_TINT, DAY_TINT, 3)).astype(np.float32)
        light = np.array([1.0, 0.97, 0.9], np.float32) * tint * sun * shade[..., None] \
            + np.array([0.18, 0.2, 0.25], np.float32) * (1.6 - sun)
        wall = alb * light * 0.95
        g = wgrad[..., None]
        refl = (np.array([0.82, 0.88, 0.97], np.float32) * (1 - g) + np.array([0.55, 0.68, 0.92], np.float32) * g)
        win = refl * (0.85 + 0.15 * shade[..., None])
        img = wall * (1 - glass[..., None]) + win * glass[..., None]
        img = img * (1 - sky[..., None]) + sky_rgb * sky[..., None]
    elif condition == "overcast":
        # the day formation with the sun behind clouds: nearly all light is diffuse, so the shading layer
        # (ledge and lintel shadows) barely shows, and the glass mirrors a grey sky with no gradient to speak of
        sun = float(rng.uniform(*OVERCAST_SUN))
        tint = (1.0 + rng.uniform(-OVERCAST_TINT, OVERCAST_TINT, 3)).astype(np.float32)
        light = (np.array([0.95, 0.95, 0.93], np.float32) * sun * shade[..., None]
                 + np.array(OVERCAST_SKYLIGHT, np.float32)) * tint
        wall = alb * light * 0.95
        g = wgrad[..., None]
        refl = np.array([0.66, 0.68, 0.71], np.float32) * (1 - g) + np.array([0.56, 0.58, 0.62], np.float32) * g
        win = refl * (0.92 + 0.08 * shade[..., None])
        img = wall * (1 - glass[..., None]) + win * glass[..., None]
        img = img * (1 - sky[..., None]) + sky_rgb * sky[..., None]
    else:
        wid = cv2.warpPerspective(layers.window_id, m, (w, h), flags=cv2.INTER_NEAREST,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=0).astype(np.int64)
        ge = cv2.warpPerspective(layers.glow_emit, m, (w, h), flags=flags, borderMode=cv2.BORDER_CONSTANT,
                                 borderValue=0)
        glow, emit = ge[..., 0:1], ge[..., 1:4]
        if lit is None:
            lit = lit_draw(layers, rng)
        gain = np.concatenate([[0.0], layers.window_gain * lit]).astype(np.float32)
        if condition == "sunset":
            gain[1:] *= 0.5 * (layers.window_gain > 0.85)  # only a few windows are on yet
        lit_px = gain[wid][..., None] * glass[..., None]
        warm = np.array([1.0, 0.8, 0.45], np.float32)
        if condition == "sunset":
            light = np.array([1.0, 0.6, 0.35], np.float32) * 0.6 * (0.4 + 0.6 * shade[..., None]) \
                + np.array([0.2, 0.15, 0.25], np.float32)
            wall = alb * light + alb * glow * np.array([1.0, 0.6, 0.25], np.float32) * 0.15
            g = wgrad[..., None]
            refl = np.array([1.0, 0.62, 0.38], np.float32) * (1 - g) + np.array([0.55, 0.38, 0.6], np.float32) * g
            win = refl * 0.75 * (1 - np.clip(lit_px, 0, 1)) + warm * lit_px
            img = wall * (1 - glass[..., None]) + win * glass[..., None] + emit * 0.35
        else:
            amb = np.array(NIGHT_AMBIENT, np.float32) * float(rng.uniform(0.8, 1.2))
            sodium = np.array([1.0, 0.58, 0.22], np.float32) * float(rng.uniform(0.9, 1.25))
            spill = _blur(lit_px * warm, 1.5 * ss)
            wall = alb * (amb + glow * sodium * 1.1 + spill * 0.8)
            if condition == "night-rain":
                wall = wall * WET_ALBEDO
            win = np.array([0.03, 0.04, 0.07], np.float32) + glow * sodium * 0.15
            win = win * (1 - np.clip(lit_px, 0, 1)) + warm * lit_px * (0.85 + 0.3 * (1 - wgrad[..., None]))
            img = wall * (1 - glass[..., None]) + win * glass[..., None] + emit * 1.6
        img = img * (1 - sky[..., None]) + sky_rgb * sky[..., None]
        if condition == "night-rain":
            img = _wet(img)
    if fog:
        img = _fog(img, cam, rays, sky, rng)
    img = cv2.resize(img.astype(np.float32), (cam.width, cam.height), interpolation=cv2.INTER_AREA)
    img = _post(img, condition, rng)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def _fog(img: np.ndarray, cam: Camera, rays: np.ndarray, sky: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Koschmieder's law on the super-sampled image: each pixel keeps exp(-3.912 d / V) of its light, d the
    distance along its ray to the facade plane (Z = 0), and gains the airlight for the rest; the sky (rays that
    never reach the plane, and the texture's sky above the roofs) is at infinity: all airlight."""
    visibility = float(rng.uniform(*FOG_VISIBILITY_M))
    airlight = np.array(FOG_AIRLIGHT, np.float32) * float(rng.uniform(*FOG_LEVEL))
    h, w = img.shape[:2]
    down = np.maximum(-rays[:, 2].reshape(h, w), 1e-6)  # rays towards the plane have a negative Z component
    keep = np.exp(-3.912 * (float(cam.center[2]) / down) / visibility) * (1 - np.clip(sky, 0, 1))
    keep = keep.astype(np.float32)[..., None]
    return img * keep + airlight * (1 - keep)


def lit_draw(layers: SceneLayers, rng: np.random.Generator, flip_prob: float = 0.08) -> np.ndarray:
    """Which windows are lit in one night view: the scene's pattern with a few per-view flips."""
    flips = rng.random(layers.lit_base.size) < flip_prob
    return layers.lit_base ^ flips


def _wet(img: np.ndarray) -> np.ndarray:
    """Wet surfaces at night (super-sampled, before the camera): each light source mirrored as a fading
    streak below it, wide halos around the sources, and the veil of light scattered by the rain, which lowers
    the contrast; metered so that the shot is not brighter than the scene under the rain's light."""
    h, w = img.shape[:2]
    n = max(3, int(WET_REFLECTION_LENGTH * h))
    decay = np.exp(-np.arange(n, dtype=np.float32) / (n / 3))
    # filter2D correlates: with the anchor on the kernel's last row, row y sums the rows y - j above it with
    # weight decay[j], so a source's light runs downwards from it
    kernel = (decay / decay.sum())[::-1].reshape(-1, 1).copy()
    bright = np.maximum(img - 0.5, 0)
    refl = cv2.filter2D(bright, -1, kernel, anchor=(0, n - 1), borderType=cv2.BORDER_CONSTANT)
    refl = cv2.GaussianBlur(refl, (0, 0), sigmaX=max(1.0, 0.004 * w), sigmaY=0.1, borderType=cv2.BORDER_REFLECT)
    halo = _blur(bright, 0.02 * max(h, w))
    veil = _blur(img, 0.05 * max(h, w))
    wet = img * (1 - WET_VEIL) + veil * WET_VEIL + WET_REFLECTION * refl + WET_HALO * halo
    # metered on what the sensor keeps (saturated pixels count as white), as an auto exposure does
    level = float(np.minimum(img, 1).mean())
    return wet * min(1.0, WET_METER * level / max(1e-6, float(np.minimum(wet, 1).mean())))


def rain_streaks(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """An h x w float32 layer (0..1) of thin rain streaks, all slanted alike (one wind per shot).

    A streak is a drop's path during the exposure; the layer is its coverage, which :func:`_post` turns
    into light in proportion to the light around it.
    """
    n = max(1, round(RAIN_DENSITY * h * w / 1000))
    slant = np.radians(float(rng.uniform(*RAIN_SLANT_DEG))) * (1.0 if rng.random() < 0.5 else -1.0)
    x = rng.uniform(-0.1 * w, 1.1 * w, n)
    y = rng.uniform(-0.1 * h, h, n)
    length = rng.uniform(*RAIN_LENGTH, n) * h
    ang = slant + np.radians(rng.normal(0.0, 2.0, n))
    value = rng.uniform(0.35, 1.0, n)
    ends = np.stack([x, y, x + length * np.sin(ang), y + length * np.cos(ang)], 1)
    layer = np.zeros((h, w), np.uint8)
    for (x0, y0, x1, y1), v in zip(np.round(ends * 16).astype(np.int64), value, strict=True):
        cv2.line(layer, (int(x0), int(y0)), (int(x1), int(y1)), int(round(255 * v)), 1, cv2.LINE_AA, shift=4)
    return layer.astype(np.float32) / 255.0


def _post(img: np.ndarray, condition: str, rng: np.random.Generator) -> np.ndarray:
    """Image-space camera effects: glare around bright sources, sensor noise, blur (night), rain streaks."""
    if condition == "day":
        img = img * float(rng.uniform(*DAY_EXPOSURE))
        return img + rng.normal(0.0, 0.006, img.shape).astype(np.float32)
    if condition == "overcast":
        img = img * float(rng.uniform(*OVERCAST_EXPOSURE))
        return img + rng.normal(0.0, 0.006, img.shape).astype(np.float32)
    if condition == "sunset":
        bright = np.maximum(img - 0.75, 0)
        img = img + 0.5 * _blur(bright, 1.5)
        sd = np.sqrt(0.0004 * np.clip(img, 0, 1) + 0.00005)
        return img + rng.normal(0.0, 1.0, img.shape).astype(np.float32) * sd
    bright = np.maximum(img - 0.55, 0)
    img = img + float(rng.uniform(0.7, 1.2)) * (_blur(bright, 1.2) + 0.6 * _blur(bright, 3.0))
    # photon noise grows with the signal, read noise floors it: night is a noisy, high-gain shot
    gain = float(rng.uniform(0.8, 1.3))
    sd = np.sqrt(gain * (0.0015 * np.clip(img, 0, 1) + 0.0002))
    img = img + rng.normal(0.0, 1.0, img.shape).astype(np.float32) * sd
    if condition == "night-rain":
        # drawn after everything night draws (see render); a drop shows by the light it scatters
        streaks = rain_streaks(img.shape[0], img.shape[1], rng)
        light = _blur(np.clip(img, 0, 1).mean(2), 0.03 * max(img.shape[:2]))
        img = img + (streaks * (RAIN_AMBIENT + RAIN_SCATTER * light))[..., None]
    return _blur(img, 0.55)


def edge_segments(spec: SceneSpec) -> np.ndarray:
    """All structural edges of a scene as world segments, S x 2 x 3 (on the plane Z = 0)."""
    segs = [np.stack([pl[:-1], pl[1:]], 1) for pl in spec.edges if len(pl) > 1]
    flat = np.concatenate(segs) if segs else np.zeros((0, 2, 2))
    return np.concatenate([flat, np.zeros((*flat.shape[:2], 1))], 2)


def edge_map(segments: np.ndarray, cam: Camera, near: float = 0.05) -> np.ndarray:
    """Binary (0/255) map of world ``segments`` (from :func:`edge_segments`) seen by ``cam``.

    Segments are clipped to ``z_c > near`` before projection so that the parts of a facade
    behind a strongly oblique camera do not wrap around through infinity.
    """
    out = np.zeros((cam.height, cam.width), np.uint8)
    pc = segments @ cam.R.T + cam.t  # S x 2 x 3
    a, b = pc[:, 0], pc[:, 1]
    za, zb = a[:, 2:3], b[:, 2:3]
    keep = ((za > near) | (zb > near))[:, 0]
    a, b, za, zb = a[keep], b[keep], za[keep], zb[keep]
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(za <= near, a + (b - a) * (near - za) / (zb - za), a)
        b = np.where(zb <= near, b + (a - b) * (near - zb) / (za - zb), b)
    ua, ub = a @ cam.K.T, b @ cam.K.T
    seg = np.stack([ua[:, :2] / ua[:, 2:3], ub[:, :2] / ub[:, 2:3]], 1)
    # fixed-point coordinates must fit in int32; far-off segments cannot touch the image anyway
    seg = seg[np.all(np.abs(seg) < 64 * max(cam.width, cam.height), axis=(1, 2))]
    if len(seg):
        pts = list(np.round(seg * 16).astype(np.int32))
        cv2.polylines(out, pts, False, 255, thickness=1, lineType=cv2.LINE_8, shift=4)
    return out


def facade_visibility(facade: tuple[float, float, float, float], cam: Camera, grid: int = 24) -> np.ndarray:
    """Which of ``grid x grid/2`` sample points of a facade rectangle a camera sees (bool vector)."""
    x0, y0, x1, y1 = facade
    gx = (np.arange(grid) + 0.5) / grid
    gy = (np.arange(grid // 2) + 0.5) / (grid // 2)
    xx, yy = np.meshgrid(x0 + (x1 - x0) * gx, y0 + (y1 - y0) * gy)
    pts = np.column_stack([xx.ravel(), yy.ravel(), np.zeros(xx.size)])
    uv, z = cam.project(pts)
    return (z > 0.1) & (uv[:, 0] >= -0.5) & (uv[:, 0] <= cam.width - 0.5) & \
        (uv[:, 1] >= -0.5) & (uv[:, 1] <= cam.height - 0.5)


def facade_bbox(facade: tuple[float, float, float, float], cam: Camera) -> tuple[float, float, float, float]:
    """Bounding box (x1, y1, x2, y2) of the facade rectangle's projection, clipped to the image."""
    x0, y0, x1, y1 = facade
    ts = np.linspace(0, 1, 33)
    border = np.concatenate([
        np.column_stack([x0 + (x1 - x0) * ts, np.full_like(ts, y0)]),
        np.column_stack([np.full_like(ts, x1), y0 + (y1 - y0) * ts]),
        np.column_stack([x1 - (x1 - x0) * ts, np.full_like(ts, y1)]),
        np.column_stack([np.full_like(ts, x0), y1 - (y1 - y0) * ts]),
    ])
    uv, z = cam.project(np.column_stack([border, np.zeros(len(border))]))
    uv = uv[z > 0.1]
    lo = np.clip(uv.min(0), 0, [cam.width - 1, cam.height - 1])
    hi = np.clip(uv.max(0), 0, [cam.width - 1, cam.height - 1])
    return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])
