"""Payments tables, keyed by order id: what the provider last said, and voids to ask again."""

from core.app import app
from tables.codec import AvroTable, bytes_table

payments = AvroTable(bytes_table(app, "payments", "Payment state per order id."), "PaymentRecord")

# Voids that found no payment while the order's authorization may still land (it
# went unanswered): the epoch ms until which the void is asked again.
unconfirmed_voids = bytes_table(
    app, "unconfirmed-voids", "Deadline (epoch ms) per void asked again.", value_type=int
)
