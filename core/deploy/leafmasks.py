"""Trees of at most 32 leaves scored by leaf bitmasks (QuickScorer: Lucchese et al., SIGIR
2015), for the lean path's native walk (core/deploy/treewalk.py).

Why: the node-by-node walk takes one dependent, unpredictable branch per level of every tree
(~45 ns per row-tree on the serving benchmark's model, most of a 100-row request's scoring).
Here each tree's leaves are numbered left to right, and each split holds a mask that clears
the leaves of its left subtree. A split whose test fails for a row (`x > threshold`, or a
missing value sent right) rules its left subtree out; the leaf the walk reaches is then the
lowest leaf no failed split cleared. With every split grouped by feature and sorted by
threshold, a row's failed tests on a feature are a prefix of that feature's list: a short,
predictable loop of AND operations instead of branches. The leaf found per tree is the
walk's, and leaf values are added in the same tree order, so the sums are the same bits
(tests/core/test_leafmasks.py). 100 rows of the benchmark's 100-tree model: ~2x faster than
the walk (docs/serving/session15.md).

A numeric feature that many splits test makes that prefix long (the benchmark's model: 3,000
splits, ~1,300 failed per row, most on 15 numeric features). For such features the AND of
every tree's masks over the first 8, 16, 24... splits is kept (`prefix_masks`): a row finds
its prefix's length by bisection, takes its whole blocks in one pass over the trees (which
vectorizes), and ANDs only the last few splits one by one. With one output column the leaf
values are summed in a register rather than through `out`. Same leaves, same additions in
the same order, so still the same bits; the kernel ~1.5x faster on varied rows and ~3x on
rows it has seen before (docs/serving/session17.md).

HistGradientBoosting's default is 31 leaves; a tree with more (or a NaN threshold, which no
order of thresholds can place) leaves the whole forest with the walk."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_LEAVES = 32  # one uint32 mask per tree
PREFIX_STEP = 8  # failed splits per prefix mask (`prefix_masks`)
PREFIX_BYTES = 8 << 20  # at most this much of prefix masks per model
_ALL = (1 << MAX_LEAVES) - 1
# index of a single set bit b: TABLE[(b * DE_BRUIJN mod 2**32) >> 27] (a de Bruijn sequence)
DE_BRUIJN = 0x077CB531
TABLE = np.argsort([(((1 << i) * DE_BRUIJN) & _ALL) >> 27 for i in range(32)]).astype(np.intp)


def score(X, fstart, fthr, fpack, nstart, npack, lstart, lval, full, table, cstart, cmask,  # type: ignore[no-untyped-def]
          step, col, out):
    """For each row: every tree's mask set to all its leaves, the failed splits' masks ANDed
    in feature by feature (`fpack`/`npack` hold tree << 32 | mask; a feature with prefix
    masks takes its whole blocks of `step` failed splits from `cmask` in one pass over the
    trees), then each tree's lowest remaining leaf's values added to its output columns,
    tree by tree."""
    n_trees = lstart.shape[0]
    v = np.empty(n_trees, np.uint32)
    low32 = np.uint64(0xFFFFFFFF)
    shift = np.uint64(32)
    one_column = lval.shape[1] == 1
    for t in range(n_trees):
        if col[t] != 0:
            one_column = False
    for r in range(X.shape[0]):
        for t in range(n_trees):
            v[t] = full[t]
        for f in range(X.shape[1]):
            x = X[r, f]
            if x != x:  # missing: the splits that send it right
                for i in range(nstart[f], nstart[f + 1]):
                    p = npack[i]
                    v[p >> shift] &= np.uint32(p & low32)
                continue
            i = fstart[f]
            end = fstart[f + 1]
            if cstart[f] >= 0:  # failed splits counted by bisection: whole blocks at once
                hi = end
                while i < hi:
                    mid = (i + hi) >> 1
                    if fthr[mid] < x:
                        i = mid + 1
                    else:
                        hi = mid
                end = i
                i = fstart[f]
                blocks = (end - i) // step
                if blocks > 0:
                    row = cstart[f] + blocks - 1
                    for t in range(n_trees):
                        v[t] &= cmask[row, t]
                    i += blocks * step
                while i < end:
                    p = fpack[i]
                    v[p >> shift] &= np.uint32(p & low32)
                    i += 1
            else:
                while i < end and fthr[i] < x:
                    p = fpack[i]
                    v[p >> shift] &= np.uint32(p & low32)
                    i += 1
        if one_column:  # one running sum in a register: the same additions in tree order
            total = out[r, 0]
            for t in range(n_trees):
                b = v[t]
                lowest = b & (~b + np.uint32(1))
                total += lval[lstart[t] + table[np.uint32(lowest * np.uint32(DE_BRUIJN))
                                                >> np.uint32(27)], 0]
            out[r, 0] = total
            continue
        for t in range(n_trees):
            b = v[t]
            lowest = b & (~b + np.uint32(1))
            leaf = table[np.uint32(lowest * np.uint32(DE_BRUIJN)) >> np.uint32(27)]
            node = lstart[t] + leaf
            for w in range(lval.shape[1]):
                out[r, col[t] + w] += lval[node, w]


class _TooMany(Exception):
    pass


def _left_spans(tree: dict[str, np.ndarray]) -> tuple[list[int], list[tuple[int, int, int]]]:
    """(leaf nodes left to right, (split, first, end) leaf ranks of each split's left
    subtree), for the nodes reachable from the root; `_TooMany` past MAX_LEAVES leaves (a
    tree of that many leaves is at most MAX_LEAVES deep, so the recursion is bounded)."""
    leaf, left, right = tree["leaf"], tree["left"], tree["right"]
    leaves: list[int] = []
    spans: list[tuple[int, int, int]] = []

    def visit(node: int, depth: int) -> None:
        if depth > MAX_LEAVES:
            raise _TooMany
        if leaf[node]:
            leaves.append(node)
            if len(leaves) > MAX_LEAVES:
                raise _TooMany
            return
        first = len(leaves)
        visit(int(left[node]), depth + 1)
        spans.append((node, first, len(leaves)))
        visit(int(right[node]), depth + 1)

    visit(0, 0)
    return leaves, spans


@dataclass(frozen=True)
class LeafMasks:
    """The arrays `score` takes after X: splits by feature (sorted by threshold) and the
    splits that send a missing value right, each tree's leaf values in leaf order, and the
    prefix masks (`prefix_masks`)."""

    fstart: np.ndarray
    fthr: np.ndarray
    fpack: np.ndarray
    nstart: np.ndarray
    npack: np.ndarray
    lstart: np.ndarray
    lval: np.ndarray
    full: np.ndarray
    cstart: np.ndarray
    cmask: np.ndarray
    step: int

    def args(self) -> tuple[Any, ...]:
        return (self.fstart, self.fthr, self.fpack, self.nstart, self.npack, self.lstart,
                self.lval, self.full, TABLE, self.cstart, self.cmask, self.step)


def build(trees: list[dict[str, np.ndarray]], n_features: int) -> LeafMasks | None:
    """Masks for well-formed trees (`treewalk._check` passed); None when a tree has more
    than MAX_LEAVES leaves or a split's threshold is NaN."""
    feats, thrs, packs, missing, lstart, lval, full = [], [], [], [], [], [], []
    leaves_so_far = 0
    for t, tree in enumerate(trees):
        try:
            leaves, spans = _left_spans(tree)
        except _TooMany:
            return None
        for node, first, end in spans:
            mask = _ALL ^ ((1 << end) - (1 << first))  # clears the left subtree's leaves
            thr = float(tree["thr"][node])
            if thr != thr:
                return None
            pack, feat = (t << 32) | mask, int(tree["feat"][node])
            feats.append(feat)
            thrs.append(thr)
            packs.append(pack)
            if not tree["nan_left"][node]:
                missing.append((feat, pack))
        lstart.append(leaves_so_far)
        leaves_so_far += len(leaves)
        lval.append(np.asarray(tree["val"]).reshape(len(tree["leaf"]), -1)[leaves])
        full.append((1 << len(leaves)) - 1)
    by_feat = np.asarray(feats, dtype=np.intp)
    order = np.lexsort((np.asarray(thrs, dtype=np.float64), by_feat))
    bounds = np.arange(n_features + 1)
    missing.sort(key=lambda m: m[0])
    nfeat = np.asarray([f for f, _ in missing], dtype=np.intp)
    fstart = np.searchsorted(by_feat[order], bounds).astype(np.intp)
    fpack = np.asarray(packs, dtype=np.uint64)[order]
    cstart, cmask, step = prefix_masks(fstart, fpack, len(trees))
    return LeafMasks(
        fstart=fstart,
        fthr=np.asarray(thrs, dtype=np.float64)[order],
        fpack=fpack,
        nstart=np.searchsorted(nfeat, bounds).astype(np.intp),
        npack=np.asarray([p for _, p in missing], dtype=np.uint64),
        lstart=np.asarray(lstart, dtype=np.intp),
        lval=np.ascontiguousarray(np.concatenate(lval), dtype=np.float64),
        full=np.asarray(full, dtype=np.uint32),
        cstart=cstart, cmask=cmask, step=step)


def prefix_masks(fstart: np.ndarray, fpack: np.ndarray, n_trees: int
                 ) -> tuple[np.ndarray, np.ndarray, int]:
    """(first row of each feature's prefix masks or -1, the masks, the step they were made
    with). Row `cstart[f] + b - 1` holds, for every tree, the AND of the first `b * step`
    splits of feature f (by threshold): a row's failed splits on f are a prefix of that
    list, so its whole blocks take one pass over the trees and only the rest go one by one.
    Made for features with at least a quarter as many splits as there are trees and four
    steps' worth (where the scan they replace is longer than a pass over the trees); the
    step, PREFIX_STEP at first, doubles until the masks fit in PREFIX_BYTES."""
    counts = np.diff(fstart)
    step = PREFIX_STEP
    chosen = np.flatnonzero(counts >= max(n_trees // 4, 4 * step, 1))
    while int((counts[chosen] // step).sum()) * n_trees * 4 > PREFIX_BYTES:
        step *= 2
    cstart = np.full(len(counts), -1, dtype=np.intp)
    rows: list[np.ndarray] = []
    at = 0
    for f in chosen.tolist():
        blocks = int(counts[f]) // step
        if not blocks:
            continue
        pack = fpack[fstart[f]:fstart[f + 1]]
        trees = (pack >> np.uint64(32)).astype(np.intp)
        masks = (pack & np.uint64(_ALL)).astype(np.uint32)
        acc = np.full(n_trees, _ALL, dtype=np.uint32)
        for b in range(blocks):  # memory as the result's, whatever the feature's splits
            np.bitwise_and.at(acc, trees[b * step:(b + 1) * step],
                              masks[b * step:(b + 1) * step])
            rows.append(acc.copy())
        cstart[f] = at
        at += blocks
    cmask = np.ascontiguousarray(np.stack(rows) if rows else
                                 np.zeros((0, n_trees), dtype=np.uint32))
    return cstart, cmask, step


def probe() -> tuple[Any, ...]:
    """The smallest valid arguments (one row, one single-leaf tree): compiles `score`."""
    one = np.zeros(1, dtype=np.intp)
    return (np.zeros((1, 1)), np.zeros(2, dtype=np.intp), np.zeros(0), np.zeros(0, np.uint64),
            np.zeros(2, dtype=np.intp), np.zeros(0, np.uint64), one, np.zeros((1, 1)),
            np.ones(1, dtype=np.uint32), TABLE, np.full(1, -1, dtype=np.intp),
            np.zeros((0, 1), dtype=np.uint32), PREFIX_STEP, one, np.zeros((1, 1)))
