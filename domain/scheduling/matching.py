"""Filling the places of one demand from a set of devices: a bipartite matching between the
places of its request parts and the devices that match them.

Greedy filling is wrong as soon as parts overlap: with parts "one of model A" and "one labelled x"
and devices a1 (model A, x) and a2 (model A), taking a1 for the first part leaves nothing for
the second. So each place first takes its best free candidate, and only when none is left it
looks for an augmenting path that moves earlier places to other candidates (Kuhn's method,
breadth first so the paths are short). That finds a complete filling whenever one exists and
keeps each place on its preferred device unless moving it is the only way.

Only the first `requested` candidates of each part (in any fixed order) are ever needed: if a
complete filling uses a device further down a part's list, one of that part's first
`requested` candidates is unused (the filling has only `requested` places) and can take its
place. So callers pass short candidate lists, which keeps a pass over thousands of devices cheap.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from domain.scheduling.model import Demand


def _places(demand: Demand) -> list[int]:
    return [part for part, request in enumerate(demand.requests) for _ in range(request.count)]


def _fill(
    places: list[int], candidates: Sequence[Sequence[str]], stop_at_gap: bool
) -> list[str | None] | None:
    got: list[str | None] = [None] * len(places)
    holder: dict[str, int] = {}
    for place, part in enumerate(places):
        for device in candidates[part]:
            if device not in holder:
                got[place], holder[device] = device, place
                break
        else:
            if not _augment(place, places, candidates, got, holder) and stop_at_gap:
                return None
    return got


def _augment(
    start: int,
    places: list[int],
    candidates: Sequence[Sequence[str]],
    got: list[str | None],
    holder: dict[str, int],
) -> bool:
    reached_from: dict[str, int] = {}
    visited = {start}
    queue = deque([start])
    while queue:
        place = queue.popleft()
        for device in candidates[places[place]]:
            if device in reached_from:
                continue
            reached_from[device] = place
            other = holder.get(device)
            if other is None:
                while True:  # shift every place on the path to the device that reached it
                    place = reached_from[device]
                    device, got[place] = got[place], device
                    holder[got[place]] = place
                    if place == start:
                        return True
            if other not in visited:
                visited.add(other)
                queue.append(other)
    return False


def complete_filling(
    demand: Demand, candidates: Sequence[Sequence[str]]
) -> dict[str, str | None] | None:
    """Devices for every place (named devices first, then each part's places), or None when
    no complete filling exists. `candidates[i]`: devices for part i, best first, none of
    them named by the demand; the named devices are the caller's to check."""
    got = _fill(_places(demand), candidates, stop_at_gap=True)
    if got is None:
        return None
    filling: dict[str, str | None] = dict.fromkeys(demand.device_ids)
    places = _places(demand)
    for place, device in enumerate(got):
        assert device is not None
        filling[device] = demand.requests[places[place]].role
    return filling


def unfilled_places(demand: Demand, candidates: Sequence[Sequence[str]]) -> list[int]:
    """How many places of each part stay empty in a largest filling."""
    places = _places(demand)
    got = _fill(places, candidates, stop_at_gap=False)
    assert got is not None
    missing = [0] * len(demand.requests)
    for place, device in enumerate(got):
        if device is None:
            missing[places[place]] += 1
    return missing


def short_groups(
    demand: Demand, candidates: Sequence[Sequence[str]]
) -> list[tuple[tuple[int, ...], int, int]]:
    """Groups of parts that together need more devices than match any of them (Hall's
    condition broken), as (parts, needed, matching); empty when a complete filling exists.
    Found from a largest filling: the parts reachable by alternating paths from an empty
    place have every candidate taken by one of their own places."""
    places = _places(demand)
    got = _fill(places, candidates, stop_at_gap=False)
    assert got is not None
    holder = {device: place for place, device in enumerate(got) if device is not None}
    groups: list[set[int]] = []
    for empty in (p for p, device in enumerate(got) if device is None):
        parts, seen, queue = set(), {empty}, deque([empty])
        while queue:
            place = queue.popleft()
            parts.add(places[place])
            for device in candidates[places[place]]:
                other = holder[device]
                if other not in seen:
                    seen.add(other)
                    queue.append(other)
        for group in [g for g in groups if g & parts]:
            groups.remove(group)
            parts |= group
        groups.append(parts)
    found = []
    for parts in sorted(groups, key=min):
        matching = {device for part in parts for device in candidates[part]}
        needed = sum(demand.requests[part].count for part in parts)
        found.append((tuple(sorted(parts)), needed, len(matching)))
    return found
