-- Momentum read model: the tables the Kafka Connect JDBC sinks (connectors/*.json) upsert into.
--
-- Postgres runs this once, when it initialises an empty data volume. The sinks
-- keep auto.create on, but Connect would create decimals as bare numeric and
-- timestamp-millis as timestamp without time zone; created here, the columns
-- carry the Avro types exactly, as the embedded sink (sinks/ddl.py) creates them:
--   decimal(12,2) -> numeric(12,2), timestamp-millis -> timestamptz,
--   string and enum -> text, int -> integer, long -> bigint, ["null", T] -> nullable T.
-- Stock counts are Avro longs, so bigint: two restocks of 2^31 - 1 units fit.
-- A database created before they were (integer columns) needs, once:
--   ALTER TABLE "inventory" ALTER COLUMN "on_hand" TYPE bigint,
--     ALTER COLUMN "reserved" TYPE bigint, ALTER COLUMN "available" TYPE bigint;
-- The primary key is the record key (pk.mode record_key, pk.fields).
-- tests/unit/test_compose.py checks these tables against the Avro schemas.

CREATE TABLE IF NOT EXISTS "inventory" (
    "sku" text NOT NULL,
    "on_hand" bigint NOT NULL,
    "reserved" bigint NOT NULL,
    "available" bigint NOT NULL,
    "updated_at" timestamptz NOT NULL,
    PRIMARY KEY ("sku")
);

CREATE TABLE IF NOT EXISTS "orders" (
    "order_id" text NOT NULL,
    "customer_id" text NOT NULL,
    "status" text NOT NULL,
    "reason" text,
    "total" numeric(12,2) NOT NULL,
    "currency" text,
    "line_count" integer NOT NULL,
    "created_at" timestamptz NOT NULL,
    "updated_at" timestamptz NOT NULL,
    PRIMARY KEY ("order_id")
);

CREATE TABLE IF NOT EXISTS "order_lines" (
    "line_id" text NOT NULL,
    "order_id" text NOT NULL,
    "sku" text NOT NULL,
    "quantity" integer NOT NULL,
    "unit_price" numeric(12,2) NOT NULL,
    "currency" text NOT NULL,
    PRIMARY KEY ("line_id")
);

CREATE TABLE IF NOT EXISTS "payments" (
    "order_id" text NOT NULL,
    "status" text NOT NULL,
    "payment_id" text,
    "amount" numeric(12,2) NOT NULL,
    "currency" text NOT NULL,
    "updated_at" timestamptz NOT NULL,
    PRIMARY KEY ("order_id")
);

CREATE TABLE IF NOT EXISTS "sales_per_minute" (
    "window_id" text NOT NULL,
    "sku" text NOT NULL,
    "window_start" timestamptz NOT NULL,
    "window_end" timestamptz NOT NULL,
    "units" integer NOT NULL,
    "revenue" numeric(12,2) NOT NULL,
    "currency" text NOT NULL,
    PRIMARY KEY ("window_id")
);

-- Analysts join lines to their order, look orders up by customer and a sku's sales by time.
CREATE INDEX IF NOT EXISTS "order_lines_order_id" ON "order_lines" ("order_id");
CREATE INDEX IF NOT EXISTS "orders_customer_id" ON "orders" ("customer_id");
CREATE INDEX IF NOT EXISTS "sales_per_minute_sku" ON "sales_per_minute" ("sku", "window_start");
