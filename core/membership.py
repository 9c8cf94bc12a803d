"""A restarted worker joins its group without waiting for its killed process to time out.

A worker killed without a goodbye (SIGKILL, OOM, a lost machine) stays a member
of its consumer group until its session times out. Its restarted process joins
meanwhile, and the broker holds that join until the dead member's session ends
(measured on Tansu with a 10 s session: 18 s from the restart to the first
assignment, against 5 s once the dead member is gone), and every other
worker's partitions wait with it.

So each worker writes its member id to a file beside its data directory every
time it is assigned partitions, and a starting worker that finds one sends the
LeaveGroup its previous process never sent, before it joins. The broker then
forgets the dead member at once. Leaving for a member the broker no longer
knows (the previous process stopped cleanly and left itself) is answered with
an error and changes nothing. The file belongs to one worker, as its data
directory does: two processes sharing it would make each other rejoin.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from aiokafka.client import AIOKafkaClient, CoordinationType
from aiokafka.errors import for_code
from aiokafka.protocol.group import LeaveGroupRequest

log = logging.getLogger(__name__)

# The leave is worth a few seconds of a start, not more: without it the join just waits.
LEAVE_TIMEOUT_SECONDS = 5.0


def member_file(data_dir: Path) -> Path:
    """Where the worker whose tables live in `data_dir` keeps its member id: beside the
    directory, not in it, so the launcher's wipe of a crashed worker's tables keeps it."""
    return data_dir.with_name(data_dir.name + ".member-id")


def record_member(path: Path, member_id: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(member_id)
    tmp.replace(path)


def recorded_member(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None


async def leave_group(group_id: str, member_id: str, **client_config: Any) -> str:
    """Send `member_id`'s LeaveGroup to the group's coordinator; the broker's answer
    ("ok" or its error's name)."""
    client = AIOKafkaClient(**client_config)
    try:
        await client.bootstrap()
        coordinator = await client.coordinator_lookup(CoordinationType.GROUP, group_id)
        response = await client.send(coordinator, LeaveGroupRequest(group_id, member_id))
    finally:
        await client.close()
    answer = "ok" if response.error_code == 0 else for_code(response.error_code).__name__
    log.info("Left group %s for the previous process's member %s: %s", group_id, member_id, answer)
    return answer
