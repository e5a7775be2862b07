-- 0002_cluster_id_order: cluster ids in byte order.
--
-- ListClusters pages by id in byte order (WHERE id COLLATE "C" > $1
-- ORDER BY id COLLATE "C"), as bbolt's keys are ordered, so that a page
-- token from either store means the same. The primary key's index is in
-- the database's collation, which need not be C; this index serves the
-- pages whatever it is.
CREATE INDEX clusters_id_order ON clusters (id COLLATE "C");
