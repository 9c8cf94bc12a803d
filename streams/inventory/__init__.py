"""Inventory flow: the catalog and each sku's stock, on the sku's partition.

`rules.py` decides (upserts and restocks by their owner, reservations for the
order saga, low stock), `records.py` maps to the Avro records and the web JSON,
`agents.py` holds the agent, `views.py` serves a sku's stock and product.
"""
