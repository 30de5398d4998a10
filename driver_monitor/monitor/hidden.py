"""Which face regions and action units count as hidden (pure): what the driver state may not use.

A region-attention model says how much of each face region is visible. A region below
``engine.min_region_visibility`` is hidden, and an AU all of whose regions are hidden is a guess:
shown greyed, left out of the driver state. A hidden region shows again only once clearly above
the threshold (:data:`REGION_HYSTERESIS`), so sunglasses that let the eyes show through do not
make the eyes flicker between seen and hidden.
"""
from __future__ import annotations

from typing import Collection, Mapping, Sequence

#: a hidden region shows again only once its visibility is this much above engine.min_region_visibility,
#: so a region hovering at the threshold (sunglasses that let the eyes show through) does not flicker
REGION_HYSTERESIS = 0.05


def hidden_regions(visibility: Mapping[str, float], threshold: float, was_hidden: Collection[str] = (),
                   margin: float = REGION_HYSTERESIS) -> frozenset[str]:
    """The regions below ``threshold``; one hidden on the last reading stays hidden until above
    ``threshold + margin``."""
    return frozenset(r for r, v in visibility.items() if v < (threshold + margin if r in was_hidden else threshold))


def hidden_aus(au_names: Sequence[str], au_regions: Mapping[str, Sequence[str]], visibility: Mapping[str, float],
               threshold: float, hidden: Collection[str] | None = None) -> tuple[str, ...]:
    """The AUs none of whose regions is visible (visibility below ``threshold``, or in ``hidden``
    when given: :func:`hidden_regions`); an AU read from several regions (AU6: eyes and either
    cheek) stays visible while any of them is. An AU without regions is never hidden."""
    gone = set(hidden) if hidden is not None else {r for r, v in visibility.items() if v < threshold}
    out = []
    for au in au_names:
        regions = [r for r in au_regions.get(au, ()) if r in visibility]
        if regions and all(r in gone for r in regions):
            out.append(au)
    return tuple(out)
