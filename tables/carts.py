"""Cart tables, keyed by cart id: every cart, and the idle deadlines of open carts."""

from core.app import app
from tables.codec import AvroTable, bytes_table

carts = AvroTable(bytes_table(app, "carts", "Cart per cart id: owner, status, lines."), "CartState")

# Open carts only, with the time (epoch ms) they count as idle: the abandon timer
# scans this small table instead of every cart ever filled.
open_carts = bytes_table(
    app, "open-carts", "Idle deadline (epoch ms) per open cart id.", value_type=int
)
