"""GrabCut, the offline engine's fallback cut-out when the subject model is missing or finds nothing.

Border-seeded: the frame's edge teaches a background model (a smooth colour surface plus the border's
own colours), then OpenCV's GrabCut separates what stands apart from it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

__all__ = ["segment"]

GRABCUT_ITERATIONS = 3  # 2 passes cost 30 % less but let a radial-gradient case slip to 0.89 IoU
EDGE = 40.0  # Sobel strength on blurred Lab of a clear step (about 10 units of lightness)


def segment(small: np.ndarray) -> np.ndarray:
    """A 0/1 subject mask at the working size: border-seeded GrabCut, then cleaned up.

    Two seedings are cut: a strict one that grows the subject only from colours far from the
    background, and a generous one that starts from everything not plainly background (it keeps
    faces and objects that share colours with the backdrop). The generous cut wins unless its outline
    runs through smooth areas, a sign that it took part of the background.
    """
    h, w = small.shape[:2]
    lab = cv2.cvtColor(cv2.GaussianBlur(small, (0, 0), 1.2), cv2.COLOR_RGB2LAB).astype(np.float32)
    band = _border_band(h, w)
    edges = cv2.dilate(_edge_strength(lab), np.ones((3, 3), np.uint8))  # an outline 1 px off still follows
    distance, spread = _background_distance(lab, band, edges)
    distinct = distance > max(2.0 * spread, 12.0)
    bgr = cv2.cvtColor(small, cv2.COLOR_RGB2BGR)
    like = distance <= max(spread, 6.0)
    generous_seed = distance > max(spread, 10.0)
    if np.count_nonzero(generous_seed ^ distinct) < 0.01 * distinct.size:  # a plain backdrop: one cut will do
        return _grabcut(bgr, generous_seed, band, distinct, like)
    with ThreadPoolExecutor(max_workers=2) as pool:  # OpenCV releases the GIL: both cuts run at once
        strict, generous = pool.map(lambda likely: _grabcut(bgr, likely, band, distinct, like),
                                    (distinct, generous_seed))
    if strict.mean() < 0.03 or _on_edges(generous, edges, band) >= _on_edges(strict, edges, band) - 0.03:
        return generous
    return strict


def _grabcut(bgr: np.ndarray, likely: np.ndarray, band: np.ndarray, distinct: np.ndarray,
             background_like: np.ndarray) -> np.ndarray:
    seeds = np.where(likely, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    seeds[band & ~distinct] = cv2.GC_BGD  # the frame's edge is background unless it clearly is not
    if not np.any(seeds == cv2.GC_PR_FGD):
        _seed_centre(seeds)
    if np.all(seeds % 2 == 1):  # no background left to model: GrabCut cannot start
        return np.ones(seeds.shape, np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)  # GrabCut seeds its colour models with k-means: the same photo, the same cut
    cv2.grabCut(bgr, seeds, None, bgd, fgd, GRABCUT_ITERATIONS, cv2.GC_INIT_WITH_MASK)
    return _clean((seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD), background_like)


def _edge_strength(lab: np.ndarray) -> np.ndarray:
    gx, gy = cv2.Sobel(lab, cv2.CV_32F, 1, 0), cv2.Sobel(lab, cv2.CV_32F, 0, 1)
    return np.sqrt((gx * gx + gy * gy).sum(axis=2))


def _on_edges(mask: np.ndarray, edges: np.ndarray, band: np.ndarray) -> float:
    """The share of the mask's outline (the frame's edge aside) that lies on a clear edge in the photo."""
    outline = (mask - cv2.erode(mask, np.ones((3, 3), np.uint8))).astype(bool) & ~band
    return float((edges[outline] > EDGE).mean()) if outline.any() else 0.0


def _border_band(h: int, w: int) -> np.ndarray:
    width = max(3, round(0.03 * min(h, w)))
    band = np.ones((h, w), bool)
    band[width:-width, width:-width] = False
    return band


def _background_distance(lab: np.ndarray, band: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, float]:
    """Per-pixel colour distance to the background model learnt at the border, and its spread there."""
    h, w = band.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    basis = np.stack([np.ones_like(xs), xs / w, ys / h, (xs / w) ** 2, xs * ys / (w * h), (ys / h) ** 2], -1)
    pixels, rows = lab[band], basis[band]
    centres, inliers = _border_colours(lab, band, edges)
    for _ in range(3):  # refit without the border pixels that the smooth surface cannot explain
        coef, *_ = np.linalg.lstsq(rows[inliers], pixels[inliers], rcond=None)
        residual = np.linalg.norm(pixels - rows @ coef, axis=1)
        inliers &= residual <= max(3.0 * np.median(residual[inliers]), 8.0)
    surface = np.linalg.norm(lab - basis @ coef, axis=2)
    distance = np.minimum(surface, _nearest(lab.reshape(-1, 3), centres).reshape(h, w))
    return distance, float(np.percentile(distance[band][inliers], 95))


def _border_colours(lab: np.ndarray, band: np.ndarray, edges: np.ndarray, k: int = 8
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Cluster the border's colours and keep those of the background, with a mask of their pixels.

    A subject cut by the frame shows a colour that is missing from the top edge, does not run down
    both sides (as a floor or a table does) and meets the background along a clear edge; a colour
    with all three signs is left out of the background.
    """
    pixels = lab[band]
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    cv2.setRNGSeed(0)  # fixed so the same photo always gives the same cut
    sample = pixels[:: max(1, len(pixels) // 6000)]
    _, _, centres = cv2.kmeans(sample, min(k, len(sample)), None, criteria, 2, cv2.KMEANS_PP_CENTERS)
    labels = np.argmin(_squared_distances(pixels, centres), axis=1)
    side = _side_of(band)
    counts = np.zeros((len(centres), 4))
    np.add.at(counts, (labels, side), 1)
    top, _, left, right = (counts / np.maximum(np.bincount(side, minlength=4), 1)).T
    keep = (top >= 0.05) | ((left >= 0.05) & (right >= 0.05)) | (counts.sum(1) >= 0.4 * len(pixels))
    label_map = np.full(band.shape, -1)
    label_map[band] = labels
    rings = [cv2.dilate((label_map == c).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool) & band
             for c in range(len(centres))]
    changed = True
    while changed:  # a colour that melts smoothly into the background is background (a gradient's far end)
        accepted, changed = np.append(keep, False)[label_map], False
        for c in np.flatnonzero(~keep):
            ring = rings[c] & accepted
            if ring.any() and np.median(edges[ring]) < EDGE:
                keep[c] = changed = True
    if not keep.any():  # every colour looked like a subject: better to learn from all of them than none
        keep[:] = True
    return centres[keep], keep[labels]


def _squared_distances(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    # |p - c|^2 = |p|^2 - 2 p.c + |c|^2, as one matrix product rather than a (points x centres x 3) array
    return (points * points).sum(1)[:, None] - 2.0 * points @ centres.T + (centres * centres).sum(1)


def _nearest(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    return np.sqrt(np.maximum(_squared_distances(points, centres).min(axis=1), 0.0))


def _side_of(band: np.ndarray) -> np.ndarray:
    """For each border pixel (in band order) the nearest side of the frame: 0 top, 1 bottom, 2 left, 3 right."""
    h, w = band.shape
    ys, xs = np.nonzero(band)
    return np.argmin(np.stack([ys, h - 1 - ys, xs, w - 1 - xs]), axis=0)


def _seed_centre(seeds: np.ndarray) -> None:
    # nothing stands out from the border: assume the usual framing, a subject in the middle
    h, w = seeds.shape
    seeds[h // 6 : h - h // 10, w // 5 : w - w // 5] = cv2.GC_PR_FGD


def _clean(fg: np.ndarray, background_like: np.ndarray) -> np.ndarray:
    """Keep the main components and fill the holes that are small or do not look like background."""
    mask = cv2.morphologyEx(fg.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count <= 1:
        return mask
    areas = stats[:, cv2.CC_STAT_AREA]
    mask = ((areas >= 0.15 * areas[1:].max()) & (np.arange(count) > 0))[labels].astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(1 - mask, connectivity=4)
    x, y, bw, bh, area = stats.T
    h, w = mask.shape
    inside = (x > 0) & (y > 0) & (x + bw < w) & (y + bh < h)  # a region open to the frame is background
    inside[0] = False  # label 0 is the subject itself
    likeness = np.bincount(labels.ravel(), background_like.ravel(), count) / np.maximum(area, 1)
    fill = inside & ((area < 0.002 * mask.size) | (likeness < 0.5))
    return np.maximum(mask, fill[labels].astype(np.uint8))

