-- Board pages: each column's cards newest first, read by (status, id) from an index.
-- depends: 0004_delivery_order

CREATE INDEX tickets_status_id_idx ON tickets (status, id DESC);
DROP INDEX tickets_status_idx;
