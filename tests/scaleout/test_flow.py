"""Flow control that resumes without dropping what the agents have not read yet
(see :mod:`monitor.scaleout.flow` for the Faust recovery that resumes twice)."""

from __future__ import annotations

from mode.utils.queues import FlowControlQueue

from monitor.scaleout.flow import ClearOnlyWhenSuspended


async def test_resuming_running_flow_keeps_the_buffered_posts() -> None:
    flow = ClearOnlyWhenSuspended()
    flow.resume()
    buffer: FlowControlQueue[str] = FlowControlQueue(flow_control=flow, clear_on_resume=True)
    buffer.put_nowait("posts[1]@352")
    flow.resume()  # recovery resuming again, after the seek
    assert buffer.qsize() == 1


async def test_resuming_after_a_suspension_still_clears() -> None:
    flow = ClearOnlyWhenSuspended()
    flow.resume()
    buffer: FlowControlQueue[str] = FlowControlQueue(flow_control=flow, clear_on_resume=True)
    buffer.put_nowait("read before the rebalance")
    flow.suspend()  # partitions revoked
    flow.resume()
    assert buffer.qsize() == 0 and flow.is_active()
