"""Zones: polygons in frame pixels; an object is in a zone when its bottom-centre is.

The bottom-centre is where a person or a vehicle touches the ground, so a zone drawn on the
floor behaves as people expect even when the top of a tall box crosses its edge.
"""

from __future__ import annotations

from dataclasses import dataclass

from .geometry import Box, bottom_centre

Point = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Zone:
    name: str
    polygon: tuple[Point, ...]

    def contains_point(self, x: float, y: float) -> bool:
        """Even-odd ray casting (points on the boundary may go either way)."""
        inside = False
        points = self.polygon
        j = len(points) - 1
        for i, (xi, yi) in enumerate(points):
            xj, yj = points[j]
            if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
                inside = not inside
            j = i
        return inside

    def contains(self, box: Box) -> bool:
        return self.contains_point(*bottom_centre(box))

    def scaled(self, sx: float, sy: float) -> Zone:
        """For a stream whose frames differ from the configured resolution."""
        return Zone(self.name, tuple((x * sx, y * sy) for x, y in self.polygon))
