"""The base every process shares: settings, the topic registry, errors, retries, the Faust app.

It imports nothing of the project but `schemas`: the flows (`streams/`), the
tables (`tables/`), the gateway, the sink and the CLI build on it. Importing
this package, or any module here but `core.app` and `core.tuning`, builds no
Faust app and imports no Faust.
"""
