"""Optimal one-to-one assignment (Hungarian method) for matching detections to tracks."""

from __future__ import annotations

from collections.abc import Sequence

INF = float("inf")


def assign(cost: Sequence[Sequence[float]], max_cost: float) -> list[tuple[int, int]]:
    """Row/column pairs of least total cost; a pair costing ``max_cost`` or more is never made.

    Leaving a row and a column unmatched is as good as pairing them at ``max_cost``, so clipping
    every entry there and dropping the clipped pairs is exactly optimal for "match or not".
    """
    rows = len(cost)
    cols = len(cost[0]) if rows else 0
    if any(len(row) != cols for row in cost):
        raise ValueError(f"assign: cost rows have different lengths ({[len(r) for r in cost]})")
    pairs: list[tuple[int, int]] = []
    for group_rows, group_cols in _groups(cost, max_cost):
        sub = [[min(cost[i][j], max_cost) for j in group_cols] for i in group_rows]
        for r, c in _hungarian(sub):
            i, j = group_rows[r], group_cols[c]
            if cost[i][j] < max_cost:
                pairs.append((i, j))
    return sorted(pairs)


def _groups(cost: Sequence[Sequence[float]], max_cost: float
            ) -> list[tuple[list[int], list[int]]]:
    """Connected components of the allowed pairs (union-find over rows and rows+columns)."""
    rows = len(cost)
    parent = list(range(rows + (len(cost[0]) if rows else 0)))

    def root(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    linked: set[int] = set()
    for i, row in enumerate(cost):
        for j, value in enumerate(row):
            if value < max_cost:
                linked.update((i, rows + j))
                parent[root(i)] = root(rows + j)
    groups: dict[int, tuple[list[int], list[int]]] = {}
    for k in sorted(linked):
        group = groups.setdefault(root(k), ([], []))
        (group[0] if k < rows else group[1]).append(k if k < rows else k - rows)
    return list(groups.values())


def _hungarian(cost: list[list[float]]) -> list[tuple[int, int]]:
    """Minimum-cost assignment of a finite rectangular matrix (shortest augmenting paths with
    potentials, O(n²m)); every row of the smaller side is matched."""
    if len(cost) > len(cost[0]):
        return [(r, c) for c, r in _hungarian([list(col) for col in zip(*cost, strict=True)])]
    n, m = len(cost), len(cost[0])
    u = [0.0] * (n + 1)
    v = [0.0] * (m + 1)
    owner = [0] * (m + 1)  # owner[j]: the row (1-based) holding column j; 0 = free
    way = [0] * (m + 1)
    for i in range(1, n + 1):
        owner[0] = i
        j0 = 0
        minv = [INF] * (m + 1)
        used = [False] * (m + 1)
        while True:
            used[j0] = True
            i0 = owner[j0]
            row = cost[i0 - 1]
            delta, j1 = INF, 0
            for j in range(1, m + 1):
                if not used[j]:
                    reduced = row[j - 1] - u[i0] - v[j]
                    if reduced < minv[j]:
                        minv[j], way[j] = reduced, j0
                    if minv[j] < delta:
                        delta, j1 = minv[j], j
            for j in range(m + 1):
                if used[j]:
                    u[owner[j]] += delta
                    v[j] -= delta
                else:
                    minv[j] -= delta
            j0 = j1
            if owner[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            owner[j0] = owner[j1]
            j0 = j1
    return [(owner[j] - 1, j - 1) for j in range(1, m + 1) if owner[j]]
