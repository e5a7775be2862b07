package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/oklog/ulid/v2"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	workerv1 "github.com/fleetscan/fleetscan/proto/fleetscan/worker/v1"
)

// The outbox: notifiers, and the deliveries of events to them. A job's
// events are written by the transaction that ends the job, so that an
// event exists if and only if what it reports was committed; a delivery
// leaves the due index only once its receiver took it or it was given up.

// JobEnded is what the end of a job committed, for the outbox hook.
type JobEnded struct {
	Cluster *storagev1.ClusterRecord
	JobID   ulid.ULID
	// Job as it ended: its state, error, counts and finish time.
	Job *storagev1.JobRecord
	// Previous is the cluster's latest succeeded job before this one, for a
	// job that succeeded; nil for its first.
	Previous *storagev1.JobRecord
	// New are the findings a succeeded job opened (seen for the first time,
	// or again after they were resolved) that no exception or in-cluster
	// suppression covers.
	New []*workerv1.Finding
}

// Outgoing is a delivery that the outbox hook asks for.
type Outgoing struct {
	ID     ulid.ULID
	Record *storagev1.DeliveryRecord
}

// OutboxHook turns the end of a job into deliveries for the notifiers
// that want to hear of it. It runs inside the transaction that ends the
// job, so it must be quick and must not call the store.
type OutboxHook func(JobEnded, []*storagev1.NotifierRecord) []Outgoing

// CreateNotifier stores a new notifier under a new id; its name must be
// unused.
func (s *DB) CreateNotifier(_ context.Context, n *storagev1.NotifierRecord) (*storagev1.NotifierRecord, error) {
	id := s.NewID()
	n.Id = id.String()
	err := s.update(func(tx *txn) error {
		b := tx.bucket(bucketNotifiers)
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			other := &storagev1.NotifierRecord{}
			if err := protoUnmarshal(v, other); err != nil {
				return err
			}
			if other.Name == n.Name {
				return fmt.Errorf("notifier %q: %w", n.Name, ErrAlreadyExists)
			}
		}
		return putProto(b, id[:], n)
	})
	if err != nil {
		return nil, err
	}
	return n, nil
}

// ListNotifiers returns the notifiers keep accepts (nil: all), by name.
func (s *DB) ListNotifiers(_ context.Context, keep func(*storagev1.NotifierRecord) bool) ([]*storagev1.NotifierRecord, error) {
	var out []*storagev1.NotifierRecord
	err := s.view(func(tx *txn) error {
		var err error
		out, err = notifiersTx(tx, keep)
		return err
	})
	slices.SortFunc(out, func(a, b *storagev1.NotifierRecord) int { return strings.Compare(a.Name, b.Name) })
	return out, err
}

func notifiersTx(tx *txn, keep func(*storagev1.NotifierRecord) bool) ([]*storagev1.NotifierRecord, error) {
	var out []*storagev1.NotifierRecord
	c := tx.bucket(bucketNotifiers).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		n := &storagev1.NotifierRecord{}
		if err := protoUnmarshal(v, n); err != nil {
			return nil, err
		}
		if keep == nil || keep(n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// GetNotifier returns one notifier.
func (s *DB) GetNotifier(_ context.Context, id string) (*storagev1.NotifierRecord, error) {
	parsed, err := ulid.ParseStrict(id)
	if err != nil {
		return nil, fmt.Errorf("notifier %q: %w", id, ErrNotFound)
	}
	n := &storagev1.NotifierRecord{}
	err = s.view(func(tx *txn) error { return getProto(tx.bucket(bucketNotifiers), parsed[:], n) })
	if err != nil {
		return nil, fmt.Errorf("notifier %q: %w", id, err)
	}
	return n, nil
}

// DeleteNotifier removes a notifier that keep accepts and gives up its
// pending deliveries, in one transaction. It returns how many it gave up.
func (s *DB) DeleteNotifier(_ context.Context, id string, keep func(*storagev1.NotifierRecord) bool) (int, error) {
	parsed, err := ulid.ParseStrict(id)
	if err != nil {
		return 0, fmt.Errorf("notifier %q: %w", id, ErrNotFound)
	}
	abandoned := 0
	err = s.update(func(tx *txn) error {
		b := tx.bucket(bucketNotifiers)
		n := &storagev1.NotifierRecord{}
		if err := getProto(b, parsed[:], n); err != nil || !keep(n) {
			return fmt.Errorf("notifier %q: %w", id, ErrNotFound)
		}
		if err := b.Delete(parsed[:]); err != nil {
			return err
		}
		due, deliveries := tx.bucket(bucketDeliveriesDue), tx.bucket(bucketDeliveries)
		var gone [][]byte
		c := due.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			d := &storagev1.DeliveryRecord{}
			if err := getProto(deliveries, k[8:], d); err != nil {
				return fmt.Errorf("delivery %x of the due index: %w", k[8:], err)
			}
			if d.NotifierId != n.Id {
				continue
			}
			d.State, d.LastError, d.NextAttemptMs = fleetscanv1.DeliveryState_DELIVERY_STATE_FAILED, "notifier deleted", 0
			if err := putProto(deliveries, k[8:], d); err != nil {
				return err
			}
			gone = append(gone, slices.Clone(k))
		}
		for _, k := range gone {
			if err := due.Delete(k); err != nil {
				return err
			}
		}
		abandoned = len(gone)
		return nil
	})
	return abandoned, err
}

// AddDeliveries writes deliveries to the outbox. With a once key, it
// writes them only if no earlier call wrote that key, and reports whether
// it did: a watcher that finds the same worker offline again after a
// restart sends nothing twice.
func (s *DB) AddDeliveries(_ context.Context, once string, out []Outgoing) (bool, error) {
	added := false
	err := s.update(func(tx *txn) error {
		if once != "" {
			b := tx.bucket(bucketNotifyOnce)
			if b.Get([]byte(once)) != nil {
				return nil
			}
			if err := b.Put([]byte(once), u64(uint64(s.nowMs()))); err != nil {
				return err
			}
		}
		added = true
		return putDeliveriesTx(tx, out)
	})
	if err == nil && added && len(out) > 0 && s.onOutbox != nil {
		s.onOutbox()
	}
	return added, err
}

func putDeliveriesTx(tx *txn, out []Outgoing) error {
	deliveries, due := tx.bucket(bucketDeliveries), tx.bucket(bucketDeliveriesDue)
	for _, o := range out {
		if err := putProto(deliveries, o.ID[:], o.Record); err != nil {
			return err
		}
		if o.Record.State == fleetscanv1.DeliveryState_DELIVERY_STATE_PENDING {
			if err := due.Put(dueKey(o.Record.NextAttemptMs, o.ID), nil); err != nil {
				return err
			}
		}
	}
	return nil
}

func dueKey(atMs int64, id ulid.ULID) []byte {
	k := make([]byte, 0, 24)
	k = binary.BigEndian.AppendUint64(k, uint64(max(atMs, 0)))
	return append(k, id[:]...)
}

// PendingDeliveries counts the deliveries not yet made.
func (s *DB) PendingDeliveries() (int, error) {
	n := 0
	err := s.view(func(tx *txn) error {
		n = tx.bucket(bucketDeliveriesDue).b.Stats().KeyN
		return nil
	})
	return n, err
}

// Delivery is a delivery with its id.
type Delivery struct {
	ID     ulid.ULID
	Record *storagev1.DeliveryRecord
}

// DueDeliveries returns at most limit pending deliveries due at nowMs,
// the most overdue first, and when the next one not yet due is (0: none).
func (s *DB) DueDeliveries(_ context.Context, nowMs int64, limit int) ([]Delivery, int64, error) {
	var out []Delivery
	var next int64
	err := s.view(func(tx *txn) error {
		deliveries := tx.bucket(bucketDeliveries)
		c := tx.bucket(bucketDeliveriesDue).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if len(k) != 24 {
				return &DamageError{Bucket: string(bucketDeliveriesDue), Key: k, Reason: "key of the wrong size"}
			}
			at := int64(binary.BigEndian.Uint64(k))
			if at > nowMs {
				next = at
				return nil
			}
			if len(out) == limit {
				next = at
				return nil
			}
			var id ulid.ULID
			copy(id[:], k[8:])
			d := &storagev1.DeliveryRecord{}
			if err := getProto(deliveries, id[:], d); err != nil {
				return fmt.Errorf("delivery %s of the due index: %w", id, err)
			}
			out = append(out, Delivery{ID: id, Record: d})
		}
		return nil
	})
	return out, next, err
}

// UpdateDelivery applies change to a delivery and keeps the due index in
// step: a PENDING delivery is due at its next attempt, others are not due.
//
// It shares a transaction, and the wait for the disk, with the other
// writes waiting (DB.batch): a fleet scan's thousand deliveries are
// recorded while its jobs commit, and each in a transaction of its own
// would wait for an fsync of its own in the same line.
func (s *DB) UpdateDelivery(_ context.Context, id ulid.ULID, change func(*storagev1.DeliveryRecord)) (*storagev1.DeliveryRecord, error) {
	var d *storagev1.DeliveryRecord
	err := s.batch(func(tx *txn) error {
		// Read afresh: the group may run this again.
		d = &storagev1.DeliveryRecord{}
		deliveries, due := tx.bucket(bucketDeliveries), tx.bucket(bucketDeliveriesDue)
		if err := getProto(deliveries, id[:], d); err != nil {
			return fmt.Errorf("delivery %s: %w", id, err)
		}
		wasDue := d.State == fleetscanv1.DeliveryState_DELIVERY_STATE_PENDING
		oldKey := dueKey(d.NextAttemptMs, id)
		change(d)
		if wasDue {
			if err := due.Delete(oldKey); err != nil {
				return err
			}
		}
		if d.State == fleetscanv1.DeliveryState_DELIVERY_STATE_PENDING {
			if err := due.Put(dueKey(d.NextAttemptMs, id), nil); err != nil {
				return err
			}
		}
		return putProto(deliveries, id[:], d)
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// DeliveryFilter selects deliveries.
type DeliveryFilter struct {
	// Notifiers, if not nil, are the notifiers whose deliveries are listed.
	Notifiers map[string]bool
	State     fleetscanv1.DeliveryState
}

// ListDeliveries returns at most limit deliveries that the filter
// selects, newest first, from the one before the key before (nil: the
// newest), and the key to go on from, nil at the end.
func (s *DB) ListDeliveries(_ context.Context, f DeliveryFilter, before []byte, limit int) ([]Delivery, []byte, error) {
	if limit <= 0 {
		return nil, nil, nil
	}
	var out []Delivery
	var more []byte
	err := s.view(func(tx *txn) error {
		c := tx.bucket(bucketDeliveries).Cursor()
		var k, v []byte
		if before == nil {
			k, v = c.Last()
		} else {
			if k, _ = c.Seek(before); k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
		}
		for ; k != nil; k, v = c.Prev() {
			if len(k) != 16 {
				return &DamageError{Bucket: string(bucketDeliveries), Key: k, Reason: "key of the wrong size"}
			}
			d := &storagev1.DeliveryRecord{}
			if err := protoUnmarshal(v, d); err != nil {
				return err
			}
			if (f.Notifiers != nil && !f.Notifiers[d.NotifierId]) || (f.State != 0 && d.State != f.State) {
				continue
			}
			if len(out) == limit {
				more = slices.Clone(out[len(out)-1].ID[:])
				return nil
			}
			var id ulid.ULID
			copy(id[:], k)
			out = append(out, Delivery{ID: id, Record: d})
		}
		return nil
	})
	return out, more, err
}

// CompactDeliveries drops the deliveries that ended (delivered or given
// up) before cutoffMs and the once keys written before it.
func (s *DB) CompactDeliveries(_ context.Context, cutoffMs int64) (int, error) {
	dropped := 0
	err := s.update(func(tx *txn) error {
		deliveries := tx.bucket(bucketDeliveries)
		var gone [][]byte
		c := deliveries.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			d := &storagev1.DeliveryRecord{}
			if err := protoUnmarshal(v, d); err != nil {
				return err
			}
			if d.CreateMs >= cutoffMs {
				break // keys are ULIDs: in order of creation
			}
			if d.State != fleetscanv1.DeliveryState_DELIVERY_STATE_PENDING && max(d.DeliveredMs, d.LastAttemptMs, d.CreateMs) < cutoffMs {
				gone = append(gone, slices.Clone(k))
			}
		}
		for _, k := range gone {
			if err := deliveries.Delete(k); err != nil {
				return err
			}
		}
		dropped = len(gone)
		once := tx.bucket(bucketNotifyOnce)
		var old [][]byte
		oc := once.Cursor()
		for k, v := oc.First(); k != nil; k, v = oc.Next() {
			if len(v) == 8 && int64(binary.BigEndian.Uint64(v)) < cutoffMs {
				old = append(old, slices.Clone(k))
			}
		}
		for _, k := range old {
			if err := once.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	return dropped, err
}

// outboxJobTx asks the outbox hook for the deliveries of a job's end and
// writes them, when any notifier exists. It reports whether it wrote any.
func (s *DB) outboxJobTx(tx *txn, ev func() (JobEnded, error)) (bool, error) {
	if s.outbox == nil {
		return false, nil
	}
	if k, _ := tx.bucket(bucketNotifiers).Cursor().First(); k == nil {
		return false, nil
	}
	notifiers, err := notifiersTx(tx, nil)
	if err != nil {
		return false, err
	}
	e, err := ev()
	if err != nil {
		return false, err
	}
	out := s.outbox(e, notifiers)
	return len(out) > 0, putDeliveriesTx(tx, out)
}
