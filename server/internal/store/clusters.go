package store

import (
	"bytes"
	"context"
	"fmt"
	"time"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
)

// CreateCluster stores a new cluster, assigning its create time and seq,
// and with it the worker token stored under tokenHash, if any.
func (s *DB) CreateCluster(_ context.Context, c *storagev1.ClusterRecord, tokenHash []byte, token *storagev1.TokenRecord) error {
	return s.update(func(tx *txn) error {
		b := tx.bucket(bucketClusters)
		if b.Get([]byte(c.Id)) != nil {
			return fmt.Errorf("cluster %q: %w", c.Id, ErrAlreadyExists)
		}
		if token != nil {
			if token.CreateMs == 0 {
				token.CreateMs = s.nowMs()
			}
			if err := putProto(tx.bucket(bucketTokens), tokenHash, token); err != nil {
				return err
			}
		}
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		c.Seq = seq
		c.CreateMs = s.nowMs()
		if err := tx.bucket(bucketClusterSeqs).Put(u64(seq), []byte(c.Id)); err != nil {
			return err
		}
		return putProto(b, []byte(c.Id), c)
	})
}

// GetCluster returns a cluster by id.
func (s *DB) GetCluster(_ context.Context, id string) (*storagev1.ClusterRecord, error) {
	c := &storagev1.ClusterRecord{}
	err := s.view(func(tx *txn) error {
		return getProto(tx.bucket(bucketClusters), []byte(id), c)
	})
	if err != nil {
		return nil, fmt.Errorf("cluster %q: %w", id, err)
	}
	return c, nil
}

// ListClusters returns up to limit clusters with ids after `after`, in id
// order, and whether more follow. keep, if not nil, selects the clusters
// to return.
func (s *DB) ListClusters(_ context.Context, after string, limit int, keep func(*storagev1.ClusterRecord) bool) ([]*storagev1.ClusterRecord, bool, error) {
	var out []*storagev1.ClusterRecord
	more := false
	err := s.view(func(tx *txn) error {
		c := tx.bucket(bucketClusters).Cursor()
		k, v := c.First()
		if after != "" {
			k, v = c.Seek([]byte(after))
			if k != nil && bytes.Equal(k, []byte(after)) {
				k, v = c.Next()
			}
		}
		for ; k != nil; k, v = c.Next() {
			rec := &storagev1.ClusterRecord{}
			if err := protoUnmarshal(v, rec); err != nil {
				return err
			}
			if keep != nil && !keep(rec) {
				continue
			}
			if len(out) == limit {
				more = true
				return nil
			}
			out = append(out, rec)
		}
		return nil
	})
	return out, more, err
}

// RecordWorker notes that the cluster's worker was seen, with these
// versions; an empty version keeps the one stored.
func (s *DB) RecordWorker(_ context.Context, id, workerVersion, kubeVersion string, at time.Time) error {
	return s.update(func(tx *txn) error {
		b := tx.bucket(bucketClusters)
		c := &storagev1.ClusterRecord{}
		if err := getProto(b, []byte(id), c); err != nil {
			return fmt.Errorf("cluster %q: %w", id, err)
		}
		c.LastSeenMs = at.UnixMilli()
		if workerVersion != "" {
			c.WorkerVersion = workerVersion
		}
		if kubeVersion != "" {
			c.KubernetesVersion = kubeVersion
		}
		return putProto(b, []byte(id), c)
	})
}

// UpdateCluster applies change to a cluster under one transaction and
// returns the cluster as stored.
func (s *DB) UpdateCluster(_ context.Context, id string, change func(*storagev1.ClusterRecord) error) (*storagev1.ClusterRecord, error) {
	c := &storagev1.ClusterRecord{}
	err := s.update(func(tx *txn) error {
		b := tx.bucket(bucketClusters)
		if err := getProto(b, []byte(id), c); err != nil {
			return fmt.Errorf("cluster %q: %w", id, err)
		}
		if err := change(c); err != nil {
			return err
		}
		return putProto(b, []byte(id), c)
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}
