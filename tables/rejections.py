"""Rejections table, keyed by requester: the latest commands of theirs an agent refused."""

from core.app import app
from tables.codec import AvroTable, bytes_table

rejections = AvroTable(
    bytes_table(app, "rejections", "Latest refused commands per requester (bounded)."),
    "RejectionLog",
)
