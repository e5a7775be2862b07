package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server/internal/store"
)

// Cluster ids are compared by their bytes (COLLATE "C"), as bbolt's keys
// are, whatever the database's collation: pages follow that order.

// clusterColumns reads a cluster with its grants, in their order.
const clusterColumns = `c.id, c.seq, c.tenant, c.display_name, c.labels, c.create_at,
	c.last_seen_at, c.worker_version, c.kubernetes_version, c.last_job_id, c.last_job_at, c.last_scan_id,
	COALESCE((SELECT jsonb_agg(jsonb_build_object('tenant', g.tenant, 'namespaces', g.namespaces) ORDER BY g.position)
		FROM cluster_grants g WHERE g.cluster_id = c.id), '[]'::jsonb)`

// grantJSON is a row of cluster_grants as clusterColumns aggregates it.
type grantJSON struct {
	Tenant     string   `json:"tenant"`
	Namespaces []string `json:"namespaces"`
}

// scanCluster reads a row of clusterColumns.
func scanCluster(row pgx.Row) (*storagev1.ClusterRecord, error) {
	var (
		c                     storagev1.ClusterRecord
		seq                   int64
		createAt, seen, jobAt pgtype.Timestamptz
		jobID, scanID         pgtype.UUID
		grants                []grantJSON
	)
	err := row.Scan(&c.Id, &seq, &c.Tenant, &c.DisplayName, &c.Labels, &createAt,
		&seen, &c.WorkerVersion, &c.KubernetesVersion, &jobID, &jobAt, &scanID, &grants)
	if err != nil {
		return nil, err
	}
	c.Seq, c.CreateMs, c.LastSeenMs = uint64(seq), timeMs(createAt), timeMs(seen)
	c.LastJobId, c.LastJobMs, c.LastScanId = uuidBytes(jobID), timeMs(jobAt), uuidBytes(scanID)
	if len(c.Labels) == 0 {
		c.Labels = nil
	}
	for _, g := range grants {
		c.NamespaceGrants = append(c.NamespaceGrants, &fleetscanv1.NamespaceGrant{Tenant: g.Tenant, Namespaces: g.Namespaces})
	}
	return &c, nil
}

// labelsOf is c's labels as the column holds them: an object, never null.
func labelsOf(c *storagev1.ClusterRecord) map[string]string {
	if c.Labels == nil {
		return map[string]string{}
	}
	return c.Labels
}

// putGrantsTx replaces the grants of cluster id with c's.
func putGrantsTx(ctx context.Context, tx pgx.Tx, id string, c *storagev1.ClusterRecord) error {
	if _, err := tx.Exec(ctx, `DELETE FROM cluster_grants WHERE cluster_id = $1`, id); err != nil {
		return fmt.Errorf("cluster %q: grants: %w", id, err)
	}
	for i, g := range c.NamespaceGrants {
		_, err := tx.Exec(ctx, `INSERT INTO cluster_grants (cluster_id, position, tenant, namespaces) VALUES ($1, $2, $3, $4)`,
			id, i, g.Tenant, g.Namespaces)
		if err != nil {
			return fmt.Errorf("cluster %q: grant to %q: %w", id, g.Tenant, err)
		}
	}
	return nil
}

// CreateCluster stores a new cluster, assigning its create time and seq,
// and with it the worker token stored under tokenHash, if any, in the same
// transaction.
func (db *DB) CreateCluster(ctx context.Context, c *storagev1.ClusterRecord, tokenHash []byte, token *storagev1.TokenRecord) error {
	now := db.nowMs()
	var seq int64
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO clusters (id, tenant, display_name, labels, create_at, last_seen_at, worker_version, kubernetes_version)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING seq`,
			c.Id, c.Tenant, c.DisplayName, labelsOf(c), msTime(now), msTime(c.LastSeenMs), c.WorkerVersion, c.KubernetesVersion).Scan(&seq)
		if isUnique(err, "clusters_pkey") {
			return fmt.Errorf("cluster %q: %w", c.Id, store.ErrAlreadyExists)
		}
		if err != nil {
			return fmt.Errorf("cluster %q: %w", c.Id, err)
		}
		if err := putGrantsTx(ctx, tx, c.Id, c); err != nil {
			return err
		}
		if token == nil {
			return nil
		}
		created := token.CreateMs
		if created == 0 {
			created = now
		}
		if err := putTokenTx(ctx, tx, tokenHash, token, created); err != nil {
			return err
		}
		token.CreateMs = created
		return nil
	})
	if err != nil {
		return err
	}
	c.Seq, c.CreateMs = uint64(seq), now
	return nil
}

// GetCluster returns a cluster by id.
func (db *DB) GetCluster(ctx context.Context, id string) (*storagev1.ClusterRecord, error) {
	c, err := scanCluster(db.pool.QueryRow(ctx, `SELECT `+clusterColumns+` FROM clusters c WHERE c.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("cluster %q: %w", id, err)
	}
	return c, nil
}

// ListClusters returns up to limit clusters with ids after `after`, in id
// order, and whether more follow. keep, if not nil, selects the clusters
// to return. As in the bbolt store, a limit of 0 returns none and reports
// whether any follow.
func (db *DB) ListClusters(ctx context.Context, after string, limit int, keep func(*storagev1.ClusterRecord) bool) ([]*storagev1.ClusterRecord, bool, error) {
	query := `SELECT ` + clusterColumns + ` FROM clusters c WHERE c.id COLLATE "C" > $1 ORDER BY c.id COLLATE "C"`
	args := []any{after}
	if keep == nil && limit >= 0 {
		// One more than the page says whether more follow.
		query += ` LIMIT $2`
		args = append(args, limit+1)
	}
	rows, err := db.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, false, fmt.Errorf("list clusters: %w", err)
	}
	defer rows.Close()
	var out []*storagev1.ClusterRecord
	for rows.Next() {
		c, err := scanCluster(rows)
		if err != nil {
			return nil, false, fmt.Errorf("list clusters: %w", err)
		}
		if keep != nil && !keep(c) {
			continue
		}
		if len(out) == limit {
			return out, true, nil
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("list clusters: %w", err)
	}
	return out, false, nil
}

// RecordWorker notes that the cluster's worker was seen, with these
// versions; an empty version keeps the one stored.
func (db *DB) RecordWorker(ctx context.Context, id, workerVersion, kubeVersion string, at time.Time) error {
	tag, err := db.pool.Exec(ctx, `UPDATE clusters SET last_seen_at = $2,
		worker_version = CASE WHEN $3 = '' THEN worker_version ELSE $3 END,
		kubernetes_version = CASE WHEN $4 = '' THEN kubernetes_version ELSE $4 END
		WHERE id = $1`, id, msTime(at.UnixMilli()), workerVersion, kubeVersion)
	if err != nil {
		return fmt.Errorf("cluster %q: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("cluster %q: %w", id, store.ErrNotFound)
	}
	return nil
}

// UpdateCluster applies change to a cluster under one transaction, the
// cluster's row locked from its read to its write, and returns the
// cluster as stored. change's error is returned as it is, and nothing is
// stored.
func (db *DB) UpdateCluster(ctx context.Context, id string, change func(*storagev1.ClusterRecord) error) (*storagev1.ClusterRecord, error) {
	var c *storagev1.ClusterRecord
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		c, err = scanCluster(tx.QueryRow(ctx, `SELECT `+clusterColumns+` FROM clusters c WHERE c.id = $1 FOR UPDATE`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			err = store.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("cluster %q: %w", id, err)
		}
		if err := change(c); err != nil {
			return err
		}
		jobID, err := bytesUUID(c.LastJobId)
		if err != nil {
			return fmt.Errorf("cluster %q: last job: %w", id, err)
		}
		scanID, err := bytesUUID(c.LastScanId)
		if err != nil {
			return fmt.Errorf("cluster %q: last scan: %w", id, err)
		}
		_, err = tx.Exec(ctx, `UPDATE clusters SET tenant = $2, display_name = $3, labels = $4, last_seen_at = $5,
			worker_version = $6, kubernetes_version = $7, last_job_id = $8, last_job_at = $9, last_scan_id = $10
			WHERE id = $1`,
			id, c.Tenant, c.DisplayName, labelsOf(c), msTime(c.LastSeenMs),
			c.WorkerVersion, c.KubernetesVersion, jobID, msTime(c.LastJobMs), scanID)
		if err != nil {
			return fmt.Errorf("cluster %q: %w", id, err)
		}
		return putGrantsTx(ctx, tx, id, c)
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}
