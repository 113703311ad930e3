"""Figures for the touch-up brush (services.touchup), in the bench's lines.

    python -m bench.touchup_figures [--quick] [--cases [--size WxH]] [--sheet PATH]

The set is bench.real_photos' composites (every case; --quick: a third of its quick set) plus its cluttered
ones, where a figure stands in front of a motorbike in its garage; the true subject is known. For each, the subject
model's layers are made (services.masks.from_photo), then two scripted strokes drawn from the truth, as a
person would paint them: one Remove stroke, a line along the largest stray region (the model says subject,
the truth background), through its middle and thinner than it; one Keep stroke, a short line inside the
largest missed part (the truth says subject, the model background). A region too thin to paint inside
(under MIN_RADIUS pixels from its middle to its edge) gets no stroke. Subject-kept IoU is that of alpha from
half up against the true mask, before and after the touch-up.

Two cuts are measured on the same strokes: the product's (services.touchup.refine: regions the strokes
drop, then GrabCut around the strokes, seeded with them and the model's mask) and the alternative kept here
for comparison (the same regions, then a watershed on the photo's gradient from markers: each stroke grows
to the photo's edges). The time is one touch-up of a 2 MP photo (1632 x 1224), wall and process CPU.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import traceback

import cv2
import numpy as np
from PIL import Image

from bench import real_photos
from bench.harness import Line, load_average
from bench.photos import TWO_MP
from services import masks, touchup

MEAN_AIM, WORST_AIM = 0.97, 0.93
SECONDS_AIM = 1.0  # one touch-up of a 2 MP photo, wall, on an idle 2-CPU machine
SIZE, QUICK_SIZE = (640, 480), (480, 360)
MIN_RADIUS = 3.0  # at SIZE: a region whose middle is nearer its edge than this is too thin to paint in
BRUSH = 0.03  # the widest scripted brush, a share of the long side
# the watershed's reach around a stroke (a share of the long side): its best on the set (0.12 measured 0.958
# mean, 0.2 0.947, 0.4 0.777: far from the strokes its markers are too few to hold the outline)
WATERSHED_REACH = 0.08
# name prefixes of every line, in print order
FIGURES = ("touchup_iou_mean_", "touchup_iou_worst_", "touchup_seconds_")


def scripted_strokes(model: np.ndarray, truth: np.ndarray) -> list[touchup.Stroke]:
    """One Remove stroke along the largest stray region and one Keep stroke inside the largest missed part,
    each only when there is such a region thick enough to paint in."""
    strokes = []
    long_side = max(truth.shape)
    for keep, wrong in ((False, model & ~truth), (True, truth & ~model)):
        line = _line_in(_largest(wrong), short=keep, widest=BRUSH * long_side)
        if line is not None:
            strokes.append(touchup.Stroke(keep, *line))
    return strokes


def _largest(region: np.ndarray) -> np.ndarray:
    count, labels, stats, _ = cv2.connectedComponentsWithStats(region.astype(np.uint8), connectivity=8)
    if count <= 1:
        return np.zeros_like(region, bool)
    return labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))


def _line_in(region: np.ndarray, short: bool, widest: float
             ) -> tuple[float, tuple[tuple[float, float], ...]] | None:
    """(width, points) of a stroke inside `region`: from its most inward point along its long axis, both
    ways, as far as the brush stays inside (for `short`, at most a sixth of the region's length)."""
    if not region.any():
        return None
    distance = cv2.distanceTransform(np.pad(region, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    radius = float(distance.max())
    if radius < MIN_RADIUS * max(region.shape) / max(SIZE):
        return None
    cy, cx = np.unravel_index(int(np.argmax(distance)), distance.shape)
    ys, xs = np.nonzero(region)
    coords = np.stack([xs - xs.mean(), ys - ys.mean()]).astype(np.float64)
    _, vectors = np.linalg.eigh(coords @ coords.T)
    axis = vectors[:, -1]  # the long axis
    width = min(radius, widest)  # a brush as wide as the region's half thickness: it paints part of it
    inner = distance >= width / 2 + 1  # where the brush's centre may go without leaving the region
    extent = float(np.ptp(coords.T @ axis))
    limit = extent / 6 if short else extent
    ends = []
    for sign in (1.0, -1.0):
        step, last = 0.0, (float(cx), float(cy))
        while step < limit / 2 if short else step < limit:
            x, y = cx + sign * (step + 1) * axis[0], cy + sign * (step + 1) * axis[1]
            xi, yi = round(x), round(y)
            if not (0 <= yi < region.shape[0] and 0 <= xi < region.shape[1]) or not inner[yi, xi]:
                break
            step += 1
            last = (float(x), float(y))
        ends.append(last)
    points = (ends[1], (float(cx), float(cy)), ends[0])
    return width, points


def cases(quick: bool) -> list[tuple[str, str, str, bool]]:
    """Every composite and the cluttered ones; for `quick` a third of the quick set and the cluttered ones."""
    return (real_photos.cases(True)[::3] if quick else real_photos.cases(False)) + real_photos.cluttered_cases()


def scores(quick: bool = False, cuts: dict | None = None, size: tuple[int, int] | None = None) -> dict:
    """{case name: {"before": IoU, "strokes": n, cut name: IoU, ...}} over the set, at `size` (by default
    SIZE, or QUICK_SIZE for `quick`)."""
    cuts = cuts if cuts is not None else CUTS
    size = size or (QUICK_SIZE if quick else SIZE)
    out = {}
    for seed, case in enumerate(cases(quick)):
        photo, truth = real_photos.composite(case, size, seed)
        image = Image.fromarray(photo)
        layers = masks.from_photo(image)
        model = layers.alpha >= 128
        strokes = scripted_strokes(model, truth)
        row = {"before": _iou(model, truth), "strokes": len(strokes)}
        for name, cut in cuts.items():
            row[name] = _iou(cut(image, layers, strokes).alpha >= 128, truth) if strokes else row["before"]
        out[real_photos.case_name(case)] = row
    return out


def _iou(predicted: np.ndarray, truth: np.ndarray) -> float:
    union = np.count_nonzero(predicted | truth)
    return np.count_nonzero(predicted & truth) / union if union else 1.0


# ---------------------------------------------------------------- the alternative cut, for comparison


def watershed_cut(small: np.ndarray, hard: np.ndarray, painted: np.ndarray) -> np.ndarray:
    """Regions the strokes drop, then a watershed on the photo's gradient near the strokes: markers are the
    strokes, the mask's inside and outside away from them; each stroke's region grows to the photo's edges."""
    mask = touchup._regions(hard, painted)
    near_remove, near_keep, outline, _ = touchup._zones(mask, painted, WATERSHED_REACH)
    inside = mask.astype(bool)
    unsure = (near_remove & inside) | (near_keep & ~inside) | outline
    if not unsure.any():
        return mask
    markers = np.where(inside, 2, 1).astype(np.int32)  # 2 subject, 1 background, 0 to be flooded
    markers[unsure] = 0
    markers[painted == touchup.KEEP] = 2
    markers[painted == touchup.REMOVE] = 1
    blurred = cv2.GaussianBlur(small, (0, 0), 1.0)
    cv2.watershed(cv2.cvtColor(blurred, cv2.COLOR_RGB2BGR), markers)
    out = (markers == 2).astype(np.uint8)
    ridge = markers == -1  # the watershed's own lines: inside if most neighbours are
    if ridge.any():
        near = cv2.blur(out.astype(np.float32), (3, 3))
        out[ridge] = near[ridge] >= 0.5
    return out


def watershed_refine(photo: Image.Image, layers: masks.Layers, strokes) -> masks.Layers:
    return touchup._touch_up(photo, layers, strokes, watershed_cut)


CUTS = {"grabcut": touchup.refine, "watershed": watershed_refine}


# ---------------------------------------------------------------- the lines


def seconds(repeats: int) -> tuple[float, float, int]:
    """(median wall, median process CPU, strokes) of one touch-up of a 2 MP cluttered composite (the space
    suit in front of the motorbike: a Remove and a Keep stroke), its layers made once beforehand."""
    case = real_photos.cluttered_cases()[1]
    photo, truth = real_photos.composite(case, TWO_MP, 0)
    image = Image.fromarray(photo)
    layers = masks.from_photo(image)
    strokes = scripted_strokes(layers.alpha >= 128, truth)
    touchup.refine(image, layers, strokes)  # warm-up
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        touchup.refine(image, layers, strokes)
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - wall)
    return statistics.median(walls), statistics.median(cpus), len(strokes)


def lines(quick: bool = False, table: dict | None = None) -> list[Line]:
    """Every figure: the quick set and fewer repeats with `quick` (then the figures are not verdicts);
    `table` is `scores(quick)` when the caller has it already."""
    made = []
    try:
        table = table or scores(quick)
        before = [row["before"] for row in table.values()]
        after = {name: [row[name] for row in table.values()] for name in CUTS}
        worst_case = min(table, key=lambda name: table[name]["grabcut"])
        painted = sum(1 for row in table.values() if row["strokes"])
        detail = (f"{len(table)} composites ({painted} touched up), {'quick set ' if quick else ''}"
                  f"{(QUICK_SIZE if quick else SIZE)[0]}x{(QUICK_SIZE if quick else SIZE)[1]}; before "
                  f"{np.mean(before):.3f}; the watershed alternative {np.mean(after['watershed']):.3f}")
        made.append(Line("touchup_iou_mean_after", float(np.mean(after["grabcut"])), ">=", MEAN_AIM, digits=3,
                         detail=detail))
        made.append(Line("touchup_iou_worst_after", float(np.min(after["grabcut"])), ">=", WORST_AIM, digits=3,
                         detail=f"{worst_case}; before: worst {np.min(before):.3f}; the watershed alternative: "
                                f"worst {np.min(after['watershed']):.3f}"))
    except Exception as exc:  # noqa: BLE001 - one broken figure must not hide the others
        traceback.print_exc(file=sys.stderr)
        for prefix in FIGURES[:2]:
            made.append(Line(prefix + "after", status="error", detail=f"{type(exc).__name__}: {str(exc)[:300]}"))
    try:
        wall, cpu, count = seconds(2 if quick else 7)
        made.append(Line(f"touchup_seconds_{TWO_MP[0]}x{TWO_MP[1]}", wall, "<=", SECONDS_AIM, unit="s",
                         detail=f"median wall of {2 if quick else 7}, {count} strokes; process CPU {cpu:.2f} s; "
                                f"load average {load_average()}"))
    except Exception as exc:  # noqa: BLE001
        traceback.print_exc(file=sys.stderr)
        made.append(Line(FIGURES[2] + f"{TWO_MP[0]}x{TWO_MP[1]}", status="error",
                         detail=f"{type(exc).__name__}: {str(exc)[:300]}"))
    return made


def write_sheet(path: str, quick: bool) -> None:
    """Before/after of the cluttered cases and the worst ones: photo, model's cut-out, strokes, touched up."""
    size = QUICK_SIZE if quick else SIZE
    rows = []
    for seed, case in enumerate(cases(quick)):
        if case not in real_photos.cluttered_cases():
            continue
        photo, truth = real_photos.composite(case, size, seed)
        image = Image.fromarray(photo)
        layers = masks.from_photo(image)
        strokes = scripted_strokes(layers.alpha >= 128, truth)
        after = touchup.refine(image, layers, strokes)
        painted = photo.copy()
        marks = touchup._paint(touchup.checked(strokes, image.size), image.size, 1.0)
        painted[marks == touchup.KEEP] = (40, 220, 60)
        painted[marks == touchup.REMOVE] = (230, 40, 40)
        board = (((np.indices(photo.shape[:2]) // 12).sum(0) % 2) * 40 + 195)[..., None].astype(np.float32)

        def on_board(made: masks.Layers) -> np.ndarray:
            a = made.alpha[..., None] / 255.0
            return (made.subject * a + board * (1 - a)).astype(np.uint8)

        rows.append(np.concatenate([painted, on_board(layers), on_board(after)], 1))
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    Image.fromarray(np.concatenate(rows, 0)).save(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.touchup_figures", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the quick set, fewer repeats: not verdicts")
    parser.add_argument("--cases", action="store_true", help="print IoU before and after per case, both cuts")
    parser.add_argument("--sheet", help="write a before/after PNG of the cluttered cases here")
    parser.add_argument("--size", help="with --cases: the composites' size, WxH (default 640x480)")
    args = parser.parse_args(argv)
    print(f"# touch-up figures {'quick' if args.quick else 'full'}; load average {load_average()}", flush=True)
    table = None
    if args.cases:
        size = tuple(int(side) for side in args.size.lower().split("x")) if args.size else None
        table = scores(args.quick, size=size)
        print(f"# {'case':<48} strokes before {' '.join(f'{name:>9}' for name in CUTS)}")
        for name, row in table.items():
            print(f"# {name:<48} {row['strokes']:>7} {row['before']:.3f}  "
                  + " ".join(f"{row[cut]:>9.3f}" for cut in CUTS), flush=True)
        for label in ("before", *CUTS):
            values = [row[label] for row in table.values()]
            print(f"# {label}: mean {np.mean(values):.3f}, worst {np.min(values):.3f}")
    if args.sheet:
        write_sheet(args.sheet, args.quick)
        print(f"# before/after sheet: {args.sheet}")
    made = lines(args.quick, table if not args.size else None)
    for line in made:
        print(line, flush=True)
    return 1 if any(line.verdict == "MISS" for line in made) and not args.quick else 0


if __name__ == "__main__":
    raise SystemExit(main())
