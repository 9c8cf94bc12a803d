"""Money as the schemas carry it."""

from __future__ import annotations

from decimal import Decimal

# Every amount in schemas/avro is decimal(12, 2): a cent is its smallest step.
CENT = Decimal("0.01")
