"""Inventory tables, keyed by sku: stock with its open reservations, and the catalog."""

from core.app import app
from tables.codec import AvroTable, bytes_table

inventory = AvroTable(
    bytes_table(app, "inventory", "Stock per sku: on hand, open reservations, applied offsets."),
    "StockState",
)
catalog = AvroTable(
    bytes_table(app, "catalog", "Product per sku: name, price, currency, seller."), "Product"
)
