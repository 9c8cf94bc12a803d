"""Payments table, keyed by order id: what the provider last said."""

from streams.app import app
from tables.codec import AvroTable, bytes_table

payments = AvroTable(bytes_table(app, "payments", "Payment state per order id."), "PaymentRecord")
