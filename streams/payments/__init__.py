"""Payments flow: the card provider client, and the rules and agent that use it.

Nothing is re-exported here on purpose: importing ``streams.payments.rules``
must not pull in the HTTP client and its dependencies.
"""
