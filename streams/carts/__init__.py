"""Carts flow: customers fill a cart line by line, check it out as an order, or leave it idle.

`rules.py` decides, `records.py` maps to the Avro records and the web JSON,
`agents.py` holds the cart agent and the idle-cart timer, `views.py` serves a
cart's state.
"""
