"""The Postgres read model: the embedded stand-in for Kafka Connect's JDBC sink.

`connectors/*.json` are Kafka Connect JDBC sink configs, deployed unchanged on
the production stack. `python -m sinks` reads the same files and does what the
Confluent JDBC sink does with them: consume each connector's topics, decode
Avro keys and values with the schema registry, upsert by the record key (delete
on a tombstone), create and evolve tables from the writer schema (see
`sinks.ddl` for the type mapping), and send what cannot be decoded or written
to the connector's dead-letter topic with Connect's context headers.

Modules: `config` (connector JSON), `ddl` (Avro to tables and SQL), `batch`
(pure batch handling), `decode` (wire format and writer schemas), `writer`
(Postgres), `service` (consumer tasks), `api` (/health, /status, /metrics),
`bench` (executemany vs COPY).
"""
