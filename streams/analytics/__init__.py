"""Per-minute analytics: sales per sku and settled orders per status, in tumbling windows.

`rules.py` decides which settlements count and how (windows, duplicates, crash
safety), `records.py` maps settlements in and figures out, `agents.py` holds
the agent. No `views.py`: the figures are read from their public topics and the
read model, not from a worker.
"""
