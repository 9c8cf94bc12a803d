"""Rejections flow: client commands an agent refused, kept per requester for the API.

`rules.py` holds the reasons and the bounded log, `records.py` maps to the Avro
records and the web JSON, `agents.py` holds `send_rejection` (which the other
flows' agents call) and the agent that keeps the log, `views.py` serves it.
"""
