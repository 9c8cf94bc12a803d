"""Payments tables, keyed by order id: what the provider last said, and voids to ask again."""

from core.app import app
from tables.codec import AvroTable, bytes_table

payments = AvroTable(bytes_table(app, "payments", "Payment state per order id."), "PaymentRecord")

# Voids that found no payment while the order's authorization may still land (it
# went unanswered): until when the void is asked again, and the correlation id and
# trace it was asked under, which the void asked again carries.
void_rechecks = AvroTable(
    bytes_table(app, "void-rechecks", "Voids asked again, per order id."), "VoidRecheck"
)
