"""Order tables, keyed by order id: the saga's state, and the deadlines of open orders."""

from core.app import app
from tables.codec import AvroTable, bytes_table

orders = AvroTable(bytes_table(app, "orders", "Saga state per order id."), "OrderState")

# Open orders only, with their expiry time in epoch millis: the expiry timer scans
# this small table instead of every order ever placed.
open_orders = bytes_table(
    app, "open-orders", "Expiry deadline (epoch ms) per open order id.", value_type=int
)
