package store

import (
	"bytes"
	"context"

	"github.com/oklog/ulid/v2"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
)

// AuditEvent is a stored audit record with its id.
type AuditEvent struct {
	ID     ulid.ULID
	Record *storagev1.AuditRecord
}

// AppendAudit stores an audit record under a new time-ordered id. It goes
// through bbolt's Batch: audited calls from many callers share commits.
func (s *DB) AppendAudit(_ context.Context, r *storagev1.AuditRecord) error {
	id := s.NewID()
	if r.TimeMs == 0 {
		r.TimeMs = s.nowMs()
	}
	return s.batch(func(tx *txn) error { return putProto(tx.bucket(bucketAudit), id[:], r) })
}

// ListAudit returns up to limit events older than `before` (the newest
// when zero) that keep selects, newest first, and whether more follow.
// It stops at the first event older than sinceMs.
func (s *DB) ListAudit(_ context.Context, before ulid.ULID, sinceMs int64, limit int, keep func(*storagev1.AuditRecord) bool) ([]AuditEvent, bool, error) {
	var out []AuditEvent
	more := false
	err := s.view(func(tx *txn) error {
		c := tx.bucket(bucketAudit).Cursor()
		var k, v []byte
		if before == (ulid.ULID{}) {
			k, v = c.Last()
		} else {
			k, v = c.Seek(before[:])
			if k == nil {
				k, v = c.Last()
			}
			for k != nil && bytes.Compare(k, before[:]) >= 0 {
				k, v = c.Prev()
			}
		}
		for ; k != nil; k, v = c.Prev() {
			var id ulid.ULID
			copy(id[:], k)
			if int64(id.Time()) < sinceMs {
				return nil
			}
			r := &storagev1.AuditRecord{}
			if err := protoUnmarshal(v, r); err != nil {
				return err
			}
			if keep != nil && !keep(r) {
				continue
			}
			if len(out) == limit {
				more = true
				return nil
			}
			out = append(out, AuditEvent{ID: id, Record: r})
		}
		return nil
	})
	return out, more, err
}
