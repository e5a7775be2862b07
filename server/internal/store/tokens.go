package store

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
)

// PutToken stores an API token under the hash of its secret.
func (s *DB) PutToken(_ context.Context, hash []byte, t *storagev1.TokenRecord) error {
	return s.update(func(tx *txn) error {
		if t.CreateMs == 0 {
			t.CreateMs = s.nowMs()
		}
		return putProto(tx.bucket(bucketTokens), hash, t)
	})
}

// LookupToken returns the token stored under hash.
func (s *DB) LookupToken(_ context.Context, hash []byte) (*storagev1.TokenRecord, error) {
	t := &storagev1.TokenRecord{}
	err := s.view(func(tx *txn) error { return getProto(tx.bucket(bucketTokens), hash, t) })
	if err != nil {
		return nil, err
	}
	return t, nil
}

// CountTokens returns the number of stored API tokens.
func (s *DB) CountTokens(_ context.Context) (int, error) {
	n := 0
	err := s.view(func(tx *txn) error { n = tx.bucket(bucketTokens).Stats().KeyN; return nil })
	return n, err
}

// TokenID is a token's id: its record's, or for tokens from before ids,
// "h" and the first 16 hex digits of its hash.
func TokenID(hash []byte, t *storagev1.TokenRecord) string {
	if t.Id != "" {
		return t.Id
	}
	return "h" + hex.EncodeToString(hash[:8])
}

// ListTokens returns every token that keep selects, ordered by id.
func (s *DB) ListTokens(_ context.Context, keep func(*storagev1.TokenRecord) bool) ([]*storagev1.TokenRecord, error) {
	var out []*storagev1.TokenRecord
	err := s.view(func(tx *txn) error {
		return tx.bucket(bucketTokens).ForEach(func(k, v []byte) error {
			t := &storagev1.TokenRecord{}
			if err := protoUnmarshal(v, t); err != nil {
				return err
			}
			if keep == nil || keep(t) {
				t.Id = TokenID(k, t)
				out = append(out, t)
			}
			return nil
		})
	})
	slices.SortFunc(out, func(a, b *storagev1.TokenRecord) int { return strings.Compare(a.Id, b.Id) })
	return out, err
}

// RevokeToken marks the token with this id revoked, unless it already is,
// and returns it; keep must select it, or it is not found.
func (s *DB) RevokeToken(_ context.Context, id string, keep func(*storagev1.TokenRecord) bool) (*storagev1.TokenRecord, error) {
	var found *storagev1.TokenRecord
	err := s.update(func(tx *txn) error {
		b := tx.bucket(bucketTokens)
		var key []byte
		err := b.ForEach(func(k, v []byte) error {
			t := &storagev1.TokenRecord{}
			if err := protoUnmarshal(v, t); err != nil {
				return err
			}
			if TokenID(k, t) == id && keep(t) {
				key, found = slices.Clone(k), t
			}
			return nil
		})
		if err != nil {
			return err
		}
		if found == nil {
			return fmt.Errorf("token %q: %w", id, ErrNotFound)
		}
		if found.RevokeMs == 0 {
			found.RevokeMs = s.nowMs()
		}
		if err := putProto(b, key, found); err != nil {
			return err
		}
		found.Id = TokenID(key, found)
		return nil
	})
	return found, err
}

// ExchangeJoinToken stores the worker's own credential under workerHash in
// exchange for the cluster's join token stored under joinHash. The join
// token is not spent yet: the credential is pending (PendingJoinHash) until
// ConfirmCredential, so that a worker that never received it can exchange
// the join token again. An earlier pending credential of the same join
// token, which its worker evidently lost, is deleted. It fails with
// ErrNotFound when the join token is unknown, spent, expired, revoked or
// of another cluster.
func (s *DB) ExchangeJoinToken(_ context.Context, joinHash []byte, clusterID string, workerHash []byte, worker *storagev1.TokenRecord) error {
	return s.update(func(tx *txn) error {
		b := tx.bucket(bucketTokens)
		join := &storagev1.TokenRecord{}
		if err := getProto(b, joinHash, join); err != nil {
			return fmt.Errorf("join token: %w", err)
		}
		now := s.nowMs()
		if join.Role != "join" || join.ClusterId != clusterID || join.RevokeMs != 0 || (join.ExpireMs != 0 && now >= join.ExpireMs) {
			return fmt.Errorf("join token: %w", ErrNotFound)
		}
		if err := deletePending(b, joinHash, nil); err != nil {
			return err
		}
		worker.CreateMs = now
		if worker.Id == "" {
			worker.Id = s.NewID().String()
		}
		worker.PendingJoinHash = joinHash
		return putProto(b, workerHash, worker)
	})
}

// ConfirmCredential records that the worker holds the credential stored
// under workerHash: the join token it was exchanged for is spent now, and
// any other credential pending on that join token is deleted. A credential
// that is not pending is left as it is.
func (s *DB) ConfirmCredential(_ context.Context, workerHash []byte) error {
	return s.update(func(tx *txn) error {
		b := tx.bucket(bucketTokens)
		rec := &storagev1.TokenRecord{}
		if err := getProto(b, workerHash, rec); err != nil {
			return fmt.Errorf("credential: %w", err)
		}
		join := rec.PendingJoinHash
		if len(join) == 0 {
			return nil
		}
		rec.PendingJoinHash = nil
		if err := putProto(b, workerHash, rec); err != nil {
			return err
		}
		if err := deletePending(b, join, workerHash); err != nil {
			return err
		}
		if err := b.Delete(join); err != nil {
			return fmt.Errorf("spend join token: %w", err)
		}
		return nil
	})
}

// deletePending deletes the credentials pending on joinHash, but keep.
func deletePending(b *table, joinHash, keep []byte) error {
	var stale [][]byte
	err := b.ForEach(func(k, v []byte) error {
		if bytes.Equal(k, keep) {
			return nil
		}
		t := &storagev1.TokenRecord{}
		if err := protoUnmarshal(v, t); err != nil {
			return err
		}
		if len(t.PendingJoinHash) > 0 && bytes.Equal(t.PendingJoinHash, joinHash) {
			stale = append(stale, slices.Clone(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range stale {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// RotateClusterTokens revokes every worker credential of the cluster,
// deletes its unspent join tokens, and stores a new join token; it
// returns how many credentials it revoked or deleted.
func (s *DB) RotateClusterTokens(_ context.Context, clusterID string, joinHash []byte, join *storagev1.TokenRecord) (int, error) {
	n := 0
	err := s.update(func(tx *txn) error {
		if tx.bucket(bucketClusters).Get([]byte(clusterID)) == nil {
			return fmt.Errorf("cluster %q: %w", clusterID, ErrNotFound)
		}
		b := tx.bucket(bucketTokens)
		now := s.nowMs()
		type change struct {
			key []byte
			rec *storagev1.TokenRecord
		}
		var changes []change
		err := b.ForEach(func(k, v []byte) error {
			t := &storagev1.TokenRecord{}
			if err := protoUnmarshal(v, t); err != nil {
				return err
			}
			if t.ClusterId == clusterID && t.RevokeMs == 0 && (t.Role == "worker" || t.Role == "join") {
				changes = append(changes, change{slices.Clone(k), t})
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, c := range changes {
			if c.rec.Role == "join" {
				err = b.Delete(c.key)
			} else {
				c.rec.RevokeMs = now
				err = putProto(b, c.key, c.rec)
			}
			if err != nil {
				return err
			}
			n++
		}
		join.CreateMs = now
		return putProto(b, joinHash, join)
	})
	return n, err
}
