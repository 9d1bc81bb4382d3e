"""Scheduling a shared lab: which waiting runs and holds get which devices, now.

A pure decision. The use case loads the waiting items and the devices, calls `schedule` (or
`plan`, which also says what everything else waits for) with `now`, and books the answer in one
unit of work. Nothing here reads a clock or a database, so the rules below are property-tested
on thousands of random labs (tests/unit/test_scheduling_properties.py).

The rules, and why:

Order. Higher priority first, then first come first served (submitted_at, then id, so that two
passes over the same lab always agree).

All or nothing. An item starts only when every place it asks for can be filled at once. LAVA's
multinode jobs grab devices one at a time as they free up and sit on them until the group is
complete; a stream of small jobs then keeps a big job half-booked for ever, and half-booked
devices do no work. Here an item that cannot start books nothing.

No overtaking. A waiting item is never overtaken, for a device it could use, by an item behind
it in the order. So when an item cannot start, every free device it could use is kept from the
items behind it until it starts. Everything behind it has the same or lower priority and came
later, so "kept from the items behind" is exactly the rule; an item ahead of it in the order
(higher priority, or earlier) was decided first and never waits for it. Without keeping, a
two-device run whose devices free up one at a time would watch each one go to the next
one-device run and never start. The guarantee needs no prediction of when devices free up.
The price: a waiting item keeps every free device it could use, not just as many as it needs,
because which of them it will need depends on devices still busy.

Backfill. Items behind a waiting item may start on the devices it could not use at all.
Together with the rule above: the pass is maximal, no item left waiting could have been filled
from the free devices no item ahead of it could use.

Health checks first. A device's health-check run is ahead of every other item in the order
(docs/health-checks.md): it names only its device, so it overtakes the normal work
waiting for that device and nothing else, and it waits like anyone for the run or hold that
already has the device. A bad device is booked for its health checks only (`for_booking`).

Dormant items keep nothing. An item that could not be filled even if every busy device freed up
(it names a device in maintenance or offline, or too few devices of a kind are in service)
keeps its place but no free device: maintenance may last a week, and the devices it could also
use must not idle that long. When the device comes back it is first again for what it needs.

Impossible items keep nothing. An item that no assignment could ever satisfy from the devices
that are not retired (a named device was retired or deleted, too few devices of a kind are
left) is reported in `Plan.unsatisfiable` for the caller to abort; it does not hold the queue.

Feasibility is a matching. Request parts may overlap ("two of model A" and "one labelled x" may want
the same devices; the same device never fills two places), so whether a demand fits is a
bipartite matching between places and devices, not a count per part: greedy filling both
misses fillings that exist and blames the wrong part. `feasible` explains a failure as the
group of parts that together need more devices than match any of them (Hall's condition).

Device choice. Among the free devices that match a part, prefer the one with the fewest labels
(labels beyond those asked for make a device special: keep it for the runs that ask for it),
then the one seen most recently (likeliest to be alive), then the id. Each place takes its best
free candidate; an augmenting path moves earlier places only when that is the only way to
fill the item.

Speed. A pass touches each bookable device at most once to keep it, caches the matching
devices per request signature, and stops when nothing is left to give. For the pass after a
small change, `LabScheduler` keeps the queue in memory and re-decides only the items the change
could affect; it is held to give the same answer as a full pass (see incremental.py for why it
does). `estimate_starts` plays the queue forward with the same scheduler.
"""

from domain.scheduling.catalog import feasible
from domain.scheduling.estimates import estimate_starts
from domain.scheduling.incremental import LabScheduler
from domain.scheduling.model import (
    MAX_COUNT,
    MAX_PLACES,
    MAX_REQUESTS,
    Assignment,
    Demand,
    DeviceRequest,
    DeviceState,
    DeviceView,
    Feasibility,
    ItemKind,
    PartWait,
    Plan,
    Priority,
    Shortfall,
    Signature,
    WaitingFor,
    WaitingItem,
    for_booking,
    in_queue_order,
)
from domain.scheduling.passes import plan, queue_positions, schedule, timed_out

__all__ = [
    "MAX_COUNT",
    "MAX_PLACES",
    "MAX_REQUESTS",
    "Assignment",
    "Demand",
    "DeviceRequest",
    "DeviceState",
    "DeviceView",
    "Feasibility",
    "ItemKind",
    "LabScheduler",
    "PartWait",
    "Plan",
    "Priority",
    "Shortfall",
    "Signature",
    "WaitingFor",
    "WaitingItem",
    "estimate_starts",
    "feasible",
    "for_booking",
    "in_queue_order",
    "plan",
    "queue_positions",
    "schedule",
    "timed_out",
]
