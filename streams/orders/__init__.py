"""Orders flow: the order saga, on the order id's partition.

`rules.py` decides each step of an order (reserve, pay, confirm, compensate,
expire, cancel), `records.py` maps to the Avro records and the web JSON,
`agents.py` holds the saga agent and the expiry timer, `views.py` serves an
order's state.
"""
