package store

import (
	"context"

	bolt "go.etcd.io/bbolt"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
)

// PutToken stores an API token under the hash of its secret.
func (s *DB) PutToken(_ context.Context, hash []byte, t *storagev1.TokenRecord) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if t.CreateMs == 0 {
			t.CreateMs = s.nowMs()
		}
		return putProto(tx.Bucket(bucketTokens), hash, t)
	})
}

// LookupToken returns the token stored under hash.
func (s *DB) LookupToken(_ context.Context, hash []byte) (*storagev1.TokenRecord, error) {
	t := &storagev1.TokenRecord{}
	err := s.db.View(func(tx *bolt.Tx) error { return getProto(tx.Bucket(bucketTokens), hash, t) })
	if err != nil {
		return nil, err
	}
	return t, nil
}

// CountTokens returns the number of stored API tokens.
func (s *DB) CountTokens(_ context.Context) (int, error) {
	n := 0
	err := s.db.View(func(tx *bolt.Tx) error { n = tx.Bucket(bucketTokens).Stats().KeyN; return nil })
	return n, err
}
