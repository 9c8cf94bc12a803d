"""What a worker's dead letter is: the headers that say why and where from.

A letter goes to `<topic>.dlq` (`TopicSpec.dlq`, core.topics) with the original
key and value bytes. The workers write these headers (streams.dead_letters);
`momentum dlq` reads them, without building a Faust app.
"""

from __future__ import annotations

import time

HEADER_ERROR = "dlq.error"
HEADER_DETAIL = "dlq.detail"
HEADER_TOPIC = "dlq.source.topic"
HEADER_PARTITION = "dlq.source.partition"
HEADER_OFFSET = "dlq.source.offset"
HEADER_FAILED_AT = "dlq.failed.at"


def dead_letter_headers(
    error: str, detail: str, topic: str, partition: int, offset: int
) -> list[tuple[str, bytes]]:
    return [
        (HEADER_ERROR, error.encode()),
        (HEADER_DETAIL, detail[:2000].encode("utf-8", "replace")),
        (HEADER_TOPIC, topic.encode()),
        (HEADER_PARTITION, str(partition).encode()),
        (HEADER_OFFSET, str(offset).encode()),
        (HEADER_FAILED_AT, str(int(time.time() * 1000)).encode()),
    ]
