"""Per-minute analytics: sales per sku and settled orders per status, in tumbling windows."""
