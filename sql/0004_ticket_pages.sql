-- Board pages: each column's cards newest first, read by (status, id) from an index.
-- depends: 0003_push

CREATE INDEX tickets_status_id_idx ON tickets (status, id DESC);
DROP INDEX tickets_status_idx;
