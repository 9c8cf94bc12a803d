"""The windows of the analytics tables: sizes and expiries, without Faust.

tables.analytics builds its tumbling tables with these, and the analytics rules
(streams.analytics.rules) pick a settlement's window with the same figures, so
the two cannot disagree.
"""

from __future__ import annotations

from datetime import timedelta

WINDOW = timedelta(minutes=1)
# Windows stay in the tables (and can still be updated) this long, then expire.
WINDOW_EXPIRES = timedelta(hours=1)
# Counted (order, status) pairs live in windows of this size (expiring like the
# figures) and are looked up in the settlement's window and the one before, so a
# duplicate is caught even when it carries a later settled_at (a saga replay):
# any duplicate settled less than DEDUP_WINDOW after the original.
DEDUP_WINDOW = timedelta(hours=1)
# Long enough that the previous window is still there for any settlement that is
# not too late (see LATE_AFTER in streams.analytics.rules).
DEDUP_EXPIRES = 2 * DEDUP_WINDOW
