"""Notifications flow: settled orders, low stock and abandoned carts become messages for people.

`rules.py` decides what to tell whom, `records.py` maps to the public
Notification record, `agents.py` holds one agent per source topic, and
`senders.py` is where notifications go out (a log line by default). No
`views.py`: notifications are read from their public topic, not from a worker.
"""
