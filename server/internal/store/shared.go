package store

import (
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"strings"
	"sync"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
)

// Shared strings. A fleet's finding records repeat a few thousand strings
// millions of times: check ids, kinds, namespaces, sub-paths such as
// "containers[app]", and the message templates that remain once a
// message's own fields are tokens (record.go). Each is stored once, in
// bucketStrings under an id, and a record holds the ids
// (FindingRecord.shared, a few bytes) in place of the strings.
//
// The table only grows: a record may name any id, and ids are never
// reused. It is bounded (maxShared strings of at most maxSharedLen bytes,
// maxSharedBytes in all, which the server keeps in memory), and a string
// is shared only the second time it is met, so that one-off strings (a
// template with an image name in it) stay in their records and do not
// fill the table. Long messages are worth sharing too: the RBAC path
// that SA-005 reports for each workload of a service account is the same
// few hundred bytes each time.
//
// Ids are assigned in memory, also while planning in a read transaction;
// every write transaction that stores a record naming a new id stores the
// ids not yet committed with it (storeTx), so that a committed record
// never names an id the database lacks.
const (
	// sharedFields: check id, kind, namespace, sub-path, message
	// template, message, suppression reason.
	sharedFields   = 7
	maxShared      = 1 << 16
	maxSharedLen   = 1024
	maxSharedBytes = 8 << 20
	// minSharedLen: shorter strings cost no more in place than an id.
	minSharedLen = 3
)

type sharedStrings struct {
	mu   sync.RWMutex
	strs []string // id-1 → string
	ids  map[string]uint32
	// stored: strs[:stored] are committed to the database.
	stored int
	bytes  int // of strs
	// once holds the hashes of strings met once and not shared yet.
	once map[uint64]struct{}
	seed maphash.Seed
}

func newSharedStrings() *sharedStrings {
	return &sharedStrings{ids: map[string]uint32{}, once: map[uint64]struct{}{}, seed: maphash.MakeSeed()}
}

// sharedFieldsOf returns the record's fields that can be shared, in the
// order of FindingRecord.shared; nil for the resource's when it has none.
func sharedFieldsOf(rec *storagev1.FindingRecord) [sharedFields]*string {
	f := [sharedFields]*string{0: &rec.CheckId, 4: &rec.MessageTemplate, 5: &rec.Message, 6: &rec.SuppressionReason}
	if r := rec.Resource; r != nil {
		f[1], f[2], f[3] = &r.Kind, &r.Namespace, &r.SubPath
	}
	return f
}

// share sets ids[i] to the id of *fields[i] and empties the field, for
// each field that is shared.
func (s *sharedStrings) share(ids *[sharedFields]uint32, fields [sharedFields]*string) {
	for i, f := range fields {
		if f == nil || len(*f) < minSharedLen || len(*f) > maxSharedLen {
			continue
		}
		if ids[i] = s.idOf(*f); ids[i] != 0 {
			*f = ""
		}
	}
}

// idOf returns the id of v, 0 when it is not shared (yet).
func (s *sharedStrings) idOf(v string) uint32 {
	s.mu.RLock()
	id, ok := s.ids[v]
	s.mu.RUnlock()
	if ok {
		return id
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, ok := s.ids[v]; ok {
		return id
	}
	if len(s.strs) >= maxShared || s.bytes+len(v) > maxSharedBytes {
		return 0
	}
	h := maphash.String(s.seed, v)
	if _, ok := s.once[h]; !ok {
		if len(s.once) >= maxShared {
			clear(s.once)
		}
		s.once[h] = struct{}{}
		return 0
	}
	delete(s.once, h)
	v = strings.Clone(v) // not a view of a larger message
	s.strs = append(s.strs, v)
	s.bytes += len(v)
	id = uint32(len(s.strs))
	s.ids[v] = id
	return id
}

// trimShared returns ids without its trailing zeros, nil when all are.
func trimShared(ids []uint32) []uint32 {
	for len(ids) > 0 && ids[len(ids)-1] == 0 {
		ids = ids[:len(ids)-1]
	}
	if len(ids) == 0 {
		return nil
	}
	return ids
}

// restore sets the fields that ids name.
func (s *sharedStrings) restore(ids []uint32, fields [sharedFields]*string) error {
	if len(ids) > sharedFields {
		return fmt.Errorf("%d shared strings in a record, at most %d", len(ids), sharedFields)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for i, id := range ids {
		if id == 0 {
			continue
		}
		if id > uint32(len(s.strs)) {
			return fmt.Errorf("shared string %d, of %d", id, len(s.strs))
		}
		if fields[i] == nil {
			return fmt.Errorf("shared string %d for the resource of a record without one", id)
		}
		*fields[i] = s.strs[id-1]
	}
	return nil
}

// storeTx stores in tx the strings not committed yet; they count as
// committed once tx is. It is idempotent, so a group commit may run it
// more than once.
func (s *sharedStrings) storeTx(tx *txn) error {
	s.mu.RLock()
	from, pending := s.stored, s.strs[s.stored:]
	s.mu.RUnlock()
	if len(pending) == 0 {
		return nil
	}
	b := tx.bucket(bucketStrings)
	for i, v := range pending {
		if err := b.Put(sharedKey(uint32(from+i+1)), []byte(v)); err != nil {
			return err
		}
	}
	to := from + len(pending)
	tx.tx.OnCommit(func() {
		s.mu.Lock()
		s.stored = max(s.stored, to)
		s.mu.Unlock()
	})
	return nil
}

func sharedKey(id uint32) []byte { return binary.BigEndian.AppendUint32(nil, id) }

// readSharedTx reads the database's shared strings.
func readSharedTx(tx *txn) (*sharedStrings, error) {
	s := newSharedStrings()
	if tx.tx.Bucket(bucketStrings) == nil {
		return s, nil // schema 4, read by check before Open upgraded it
	}
	err := tx.bucket(bucketStrings).ForEach(func(k, v []byte) error {
		if len(k) != 4 || binary.BigEndian.Uint32(k) != uint32(len(s.strs)+1) {
			d := &DamageError{Bucket: string(bucketStrings), Key: append([]byte(nil), k...), Reason: fmt.Sprintf("shared string key out of sequence after %d", len(s.strs))}
			tx.fail(d)
			return d
		}
		str := string(v)
		s.strs = append(s.strs, str)
		s.bytes += len(str)
		s.ids[str] = uint32(len(s.strs))
		return nil
	})
	s.stored = len(s.strs)
	return s, err
}
