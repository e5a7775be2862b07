package store

import (
	"context"
	"fmt"

	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/types/known/timestamppb"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
)

// CreateSchedule stores a new schedule, assigning its id and create time.
func (s *DB) CreateSchedule(_ context.Context, sc *fleetscanv1.Schedule) error {
	id := s.NewID()
	sc.Id = id.String()
	sc.CreateTime = timestamppb.New(s.now())
	return s.update(func(tx *txn) error {
		return putProto(tx.bucket(bucketSchedules), id[:], sc)
	})
}

// ListSchedules returns up to limit schedules with ids after `after` (all
// when zero), in id order, and whether more follow.
func (s *DB) ListSchedules(_ context.Context, after ulid.ULID, limit int) ([]*fleetscanv1.Schedule, bool, error) {
	var out []*fleetscanv1.Schedule
	more := false
	err := s.view(func(tx *txn) error {
		c := tx.bucket(bucketSchedules).Cursor()
		k, v := c.First()
		if after != (ulid.ULID{}) {
			k, v = c.Seek(after[:])
			if k != nil && string(k) == string(after[:]) {
				k, v = c.Next()
			}
		}
		for ; k != nil; k, v = c.Next() {
			if len(out) == limit {
				more = true
				return nil
			}
			sc := &fleetscanv1.Schedule{}
			if err := protoUnmarshal(v, sc); err != nil {
				return err
			}
			out = append(out, sc)
		}
		return nil
	})
	return out, more, err
}

// DeleteSchedule removes a schedule.
func (s *DB) DeleteSchedule(_ context.Context, id ulid.ULID) error {
	return s.update(func(tx *txn) error {
		b := tx.bucket(bucketSchedules)
		if b.Get(id[:]) == nil {
			return fmt.Errorf("schedule %s: %w", id, ErrNotFound)
		}
		return b.Delete(id[:])
	})
}

// UpdateSchedule applies change to a stored schedule; a schedule deleted
// meanwhile is ErrNotFound.
func (s *DB) UpdateSchedule(_ context.Context, id string, change func(*fleetscanv1.Schedule)) error {
	key, err := ParseID(id)
	if err != nil {
		return err
	}
	return s.update(func(tx *txn) error {
		b := tx.bucket(bucketSchedules)
		sc := &fleetscanv1.Schedule{}
		if err := getProto(b, key[:], sc); err != nil {
			return fmt.Errorf("schedule %s: %w", id, err)
		}
		change(sc)
		return putProto(b, key[:], sc)
	})
}
