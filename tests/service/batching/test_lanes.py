"""Fair shares of a model's queue between transports: the share rule on its own (examples and
properties), then through the batcher with a stand-in model whose runs are held open."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.batching.lanes import ACTIVE_SECONDS, LaneShares
from service.errors import OverloadedError
from tests.service.batching.test_batcher import Model, Observer, batcher, run


def fill(shares: LaneShares, lane: str, now: float) -> int:
    """Queue requests of ``lane`` until it is refused; how many went in."""
    taken = 0
    while shares.room_for(lane, now):
        shares.add(lane)
        taken += 1
    return taken


def test_a_lane_alone_may_fill_the_whole_queue() -> None:
    shares = LaneShares(8)
    assert fill(shares, "rest", now=0.0) == 8
    assert not shares.room_for("rest", 0.0)


def test_an_active_lane_keeps_its_share_from_a_flood() -> None:
    shares = LaneShares(8)
    assert shares.room_for("grpc", 0.0)  # gRPC asked a moment ago (and is now active)
    assert fill(shares, "rest", now=0.1) == 4  # REST may not take gRPC's half
    assert fill(shares, "grpc", now=0.2) == 4
    assert shares.waiting == 8


def test_a_lane_borrows_what_an_active_lane_leaves_unused_but_not_its_reserve() -> None:
    shares = LaneShares(8)
    shares.room_for("grpc", 0.0)
    shares.add("grpc")  # gRPC holds 1 of its 4
    assert fill(shares, "rest", now=0.1) == 4  # 3 stay free for gRPC's share
    assert fill(shares, "grpc", now=0.2) == 3


def test_an_idle_lane_stops_reserving_room() -> None:
    shares = LaneShares(8)
    shares.room_for("grpc", 0.0)
    later = ACTIVE_SECONDS + 0.01
    assert fill(shares, "rest", now=later) == 8


def test_a_lane_with_requests_queued_stays_active() -> None:
    shares = LaneShares(8)
    shares.room_for("grpc", 0.0)
    shares.add("grpc")
    assert fill(shares, "rest", now=ACTIVE_SECONDS * 10) == 4  # grpc still holds 1 + reserve 3
    shares.remove("grpc")
    assert shares.of("grpc") == 0


def test_three_lanes_share_in_thirds() -> None:
    shares = LaneShares(9)
    shares.room_for("a", 0.0)
    shares.room_for("b", 0.0)
    assert fill(shares, "c", now=0.1) == 3
    assert fill(shares, "a", now=0.1) == 3
    assert fill(shares, "b", now=0.1) == 3


@given(
    capacity=st.integers(1, 64),
    steps=st.lists(
        st.tuples(st.sampled_from(["ask", "leave"]), st.sampled_from(["rest", "grpc", "x"])),
        max_size=300,
    ),
)
def test_shares_never_overfill_and_an_active_lane_can_reach_its_share(
    capacity: int, steps: list[tuple[str, str]]
) -> None:
    shares = LaneShares(capacity)
    for action, lane in steps:  # all within one active window: every lane asked is active
        if action == "ask":
            if shares.room_for(lane, 0.0):
                shares.add(lane)
        elif shares.of(lane):
            shares.remove(lane)
        assert 0 <= shares.waiting <= capacity
    active = {lane for _, lane in steps}
    for lane in active:
        share = max(1, capacity // len(active))
        if shares.of(lane) < share and shares.waiting < capacity:
            # below its share, a lane is refused only when the whole queue is full, and the
            # others' borrowing never takes the room it is owed
            assert shares.room_for(lane, 0.0)


def test_through_the_batcher_a_flood_of_one_lane_leaves_the_other_its_share() -> None:
    async def scenario() -> None:
        model, observer = Model(seconds=0.3), Observer()
        queue = batcher(model, observer, max_batch_size=8, max_queue_size=8)
        running = asyncio.ensure_future(queue.submit("first", 1, lane="rest"))  # holds the slot
        await asyncio.sleep(0.01)
        queue.check_room("grpc")  # room, and gRPC is now an active lane
        rest = []
        for n in range(4):
            queue.check_room("rest")
            rest.append(asyncio.ensure_future(queue.submit(f"r{n}", 1, lane="rest")))
            await asyncio.sleep(0)
        with pytest.raises(OverloadedError, match="4 rest requests queued, its fair share"):
            queue.check_room("rest")
        assert observer.rejections == 1
        grpc = [asyncio.ensure_future(queue.submit(f"g{n}", 1, lane="grpc")) for n in range(4)]
        await asyncio.sleep(0)
        assert queue.waiting == 8
        with pytest.raises(OverloadedError, match="8 requests queued"):
            await queue.submit("one too many", 1, lane="grpc")
        results = await asyncio.gather(running, *rest, *grpc)
        assert results == ["FIRST", *(f"R{n}" for n in range(4)), *(f"G{n}" for n in range(4))]

    run(scenario)
