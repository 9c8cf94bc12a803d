"""Payments flow: authorize, capture, void and refund at the card provider, one order at a time.

`rules.py` decides (what a redelivered authorize repeats, what the saga hears,
which voids are asked again), `records.py` maps to the PaymentRecord,
`agents.py` holds the agent and the timer that asks unconfirmed voids again,
and `client.py` is the card provider's HTTP client. No `views.py`: no web view
reads payments (an order's view carries its payment status).

Nothing is re-exported here on purpose: importing ``streams.payments.rules``
must not pull in the HTTP client and its dependencies.
"""
