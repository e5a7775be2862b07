package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"path/filepath"
	"runtime/debug"
	"sync/atomic"
	"syscall"

	bolt "go.etcd.io/bbolt"
)

// bbolt checksums its meta pages only: a damaged leaf or branch page reads
// as other bytes, fewer keys or a panic. So every value the store writes
// carries a CRC-32C of its bucket, key and bytes (sealing), every read
// checks it, and a transaction that met damage anywhere fails as a whole
// with ErrDataLoss: an answer is complete or it is an error, never a
// smaller truth. Reads go through txn, table and cursor, which do this so
// that no call site can forget it.

// ErrDataLoss: the database holds damaged records or structure. Callers
// test it with errors.Is; the API answers DATA_LOSS.
var ErrDataLoss = errors.New("data loss")

// DamageError names what was found damaged.
type DamageError struct {
	Bucket string
	Key    []byte
	Reason string
}

func (e *DamageError) Error() string {
	if e.Key == nil {
		return fmt.Sprintf("damaged database: bucket %s: %s (run fleetscan-server check; restore a backup)", e.Bucket, e.Reason)
	}
	return fmt.Sprintf("damaged database: bucket %s, key %x: %s (run fleetscan-server check; restore a backup)", e.Bucket, e.Key, e.Reason)
}

func (e *DamageError) Unwrap() error { return ErrDataLoss }

const sealSize = 4

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func sealSum(bucket, key, v []byte) uint32 {
	sum := crc32.Update(0, castagnoli, bucket)
	sum = crc32.Update(sum, castagnoli, []byte{0})
	sum = crc32.Update(sum, castagnoli, key)
	sum = crc32.Update(sum, castagnoli, []byte{0})
	return crc32.Update(sum, castagnoli, v)
}

// seal returns v followed by its checksum. The bucket and the key are in
// the sum, so that a value read under another key fails too.
func seal(bucket, key, v []byte) []byte {
	out := make([]byte, len(v), len(v)+sealSize)
	copy(out, v)
	return binary.LittleEndian.AppendUint32(out, sealSum(bucket, key, v))
}

// unseal returns the value without its checksum, or the damage.
func unseal(bucket, key, v []byte) ([]byte, *DamageError) {
	if len(v) < sealSize {
		return nil, &DamageError{Bucket: string(bucket), Key: bytes.Clone(key), Reason: fmt.Sprintf("%d-byte value, shorter than its checksum", len(v))}
	}
	body := v[:len(v)-sealSize]
	if want, got := binary.LittleEndian.Uint32(v[len(body):]), sealSum(bucket, key, body); want != got {
		return nil, &DamageError{Bucket: string(bucket), Key: bytes.Clone(key), Reason: fmt.Sprintf("checksum %08x, stored %08x", got, want)}
	}
	return body, nil
}

// txn is a bbolt transaction whose reads are verified. The first damage
// met is kept and returned by the transaction, whatever its function
// returns.
//
// A write transaction made by (*DB).writeTxn also follows writes to the
// clusters bucket, for DB.ClustersVersion.
type txn struct {
	tx     *bolt.Tx
	damage *DamageError
	// clustersVersion, in a write transaction, is advanced once when the
	// transaction commits if it wrote to the clusters bucket.
	clustersVersion *atomic.Uint64
	clustersWritten bool
}

// writeTxn wraps the bbolt write transaction of an update or a group
// commit.
func (s *DB) writeTxn(tx *bolt.Tx) *txn { return &txn{tx: tx, clustersVersion: &s.clustersVersion} }

// errUnversioned: a write to the clusters bucket that ClustersVersion
// would miss, a bug of the store's.
var errUnversioned = errors.New("store: a write to the clusters bucket in a transaction not made by writeTxn")

// wrote notes a write to the bucket name, before it is made.
func (t *txn) wrote(name []byte) error {
	if t.clustersWritten || !bytes.Equal(name, bucketClusters) {
		return nil
	}
	if t.clustersVersion == nil {
		return errUnversioned
	}
	t.clustersWritten = true
	v := t.clustersVersion
	t.tx.OnCommit(func() { v.Add(1) })
	return nil
}

func (t *txn) fail(d *DamageError) {
	if t.damage == nil {
		t.damage = d
	}
}

// bucket returns the named top-level bucket. Every bucket exists once the
// store is open; a missing one is damage.
func (t *txn) bucket(name []byte) *table {
	b := t.tx.Bucket(name)
	if b == nil {
		t.fail(&DamageError{Bucket: string(name), Reason: "bucket missing"})
		// A transaction-local empty bucket keeps callers simple; the
		// transaction fails anyway.
		return &table{t: t, name: name}
	}
	return &table{t: t, b: b, name: name}
}

// table is a bucket whose values are sealed.
type table struct {
	t    *txn
	b    *bolt.Bucket // nil: missing (damage already recorded)
	name []byte
}

// Get returns the value at key, nil when there is none. A damaged value
// also reads as nil; the transaction then fails with the damage.
func (b *table) Get(key []byte) []byte {
	if b.b == nil {
		return nil
	}
	v := b.b.Get(key)
	if v == nil {
		return nil
	}
	body, d := unseal(b.name, key, v)
	if d != nil {
		b.t.fail(d)
		return nil
	}
	return body
}

// Put stores v, sealed, at key.
func (b *table) Put(key, v []byte) error {
	if b.b == nil {
		return b.t.damage
	}
	if err := b.t.wrote(b.name); err != nil {
		return err
	}
	return b.b.Put(key, seal(b.name, key, v))
}

// Delete removes key.
func (b *table) Delete(key []byte) error {
	if b.b == nil {
		return b.t.damage
	}
	if err := b.t.wrote(b.name); err != nil {
		return err
	}
	return b.b.Delete(key)
}

// NextSequence returns the bucket's next sequence number (kept by bbolt
// in the bucket's header, not in a value).
func (b *table) NextSequence() (uint64, error) {
	if b.b == nil {
		return 0, b.t.damage
	}
	return b.b.NextSequence()
}

// SetFillPercent tells bbolt how full to pack pages when splitting; appends
// in key order pack fuller.
func (b *table) SetFillPercent(f float64) {
	if b.b != nil {
		b.b.FillPercent = f
	}
}

// Stats are bbolt's statistics of the bucket.
func (b *table) Stats() bolt.BucketStats {
	if b.b == nil {
		return bolt.BucketStats{}
	}
	return b.b.Stats()
}

// ForEach calls fn with every key and verified value, in key order; it
// stops at the first damage.
func (b *table) ForEach(fn func(k, v []byte) error) error {
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if err := fn(k, v); err != nil {
			return err
		}
	}
	if b.t.damage != nil {
		return b.t.damage
	}
	return nil
}

// Cursor returns a cursor that verifies what it reads.
func (b *table) Cursor() *cursor {
	c := &cursor{t: b.t, name: b.name}
	if b.b != nil {
		c.c = b.b.Cursor()
	}
	return c
}

// cursor is a bbolt cursor over a table. A damaged value, or keys out of
// order (what a damaged branch page reads as), ends the iteration: it
// returns nil and the transaction fails with the damage.
type cursor struct {
	t    *txn
	c    *bolt.Cursor
	name []byte
	last []byte // the key returned last, to check the order
}

func (c *cursor) First() ([]byte, []byte) {
	if c.c == nil {
		return nil, nil
	}
	c.last = nil
	return c.read(c.c.First())
}

func (c *cursor) Last() ([]byte, []byte) {
	if c.c == nil {
		return nil, nil
	}
	c.last = nil
	return c.read(c.c.Last())
}

func (c *cursor) Seek(key []byte) ([]byte, []byte) {
	if c.c == nil {
		return nil, nil
	}
	k, v := c.c.Seek(key)
	if k != nil && bytes.Compare(k, key) < 0 {
		c.t.fail(&DamageError{Bucket: string(c.name), Key: bytes.Clone(k), Reason: fmt.Sprintf("seek to %x landed before it", key)})
		return nil, nil
	}
	c.last = nil
	return c.read(k, v)
}

func (c *cursor) Next() ([]byte, []byte) {
	if c.c == nil {
		return nil, nil
	}
	k, v := c.c.Next()
	if k != nil && c.last != nil && bytes.Compare(k, c.last) <= 0 {
		c.t.fail(&DamageError{Bucket: string(c.name), Key: bytes.Clone(k), Reason: fmt.Sprintf("key out of order after %x", c.last)})
		return nil, nil
	}
	return c.read(k, v)
}

func (c *cursor) Prev() ([]byte, []byte) {
	if c.c == nil {
		return nil, nil
	}
	k, v := c.c.Prev()
	if k != nil && c.last != nil && bytes.Compare(k, c.last) >= 0 {
		c.t.fail(&DamageError{Bucket: string(c.name), Key: bytes.Clone(k), Reason: fmt.Sprintf("key out of order before %x", c.last)})
		return nil, nil
	}
	return c.read(k, v)
}

// Delete removes the key the cursor is at.
func (c *cursor) Delete() error {
	if err := c.t.wrote(c.name); err != nil {
		return err
	}
	return c.c.Delete()
}

func (c *cursor) read(k, v []byte) ([]byte, []byte) {
	if k == nil {
		return nil, nil
	}
	// bbolt's key slices point into the mapped file, which stays put
	// during the transaction.
	c.last = k
	if v == nil {
		// A nested bucket: the store has none, so it is damage.
		c.t.fail(&DamageError{Bucket: string(c.name), Key: bytes.Clone(k), Reason: "a nested bucket where a record belongs"})
		return nil, nil
	}
	body, d := unseal(c.name, k, v)
	if d != nil {
		c.t.fail(d)
		return nil, nil
	}
	return k, body
}

// run calls fn in t and turns what damage looks like into ErrDataLoss: a
// recorded damage, or a panic of bbolt's on a page it cannot read (page
// faults included, which Go turns into panics only when asked to).
func (t *txn) run(fn func(*txn) error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			err = &DamageError{Bucket: "(structure)", Reason: fmt.Sprintf("reading the file failed: %v", r)}
		}
	}()
	err = fn(t)
	if t.damage != nil {
		return t.damage
	}
	return err
}

// view runs fn in a read transaction.
func (s *DB) view(fn func(*txn) error) error {
	return s.reported(s.db.View(func(tx *bolt.Tx) error { return (&txn{tx: tx}).run(fn) }))
}

// update runs fn in a write transaction; damage rolls it back.
func (s *DB) update(fn func(*txn) error) error {
	return s.wrote(s.reported(s.db.Update(func(tx *bolt.Tx) error { return s.writeTxn(tx).run(fn) })))
}

// wrote follows whether writes fail for lack of space: the first such
// failure and the first success after one are told to Options.OnFull, so
// that health, a metric and one log line say it, not every refused write.
// The transaction was rolled back; nothing committed before is touched.
func (s *DB) wrote(err error) error {
	if err != nil && !isNoSpace(err) {
		return err
	}
	if err != nil {
		err = fmt.Errorf("%w: %w", ErrNoSpace, err)
		free, _ := freeBytes(filepath.Dir(s.db.Path()))
		s.freeWhenFull.Store(free)
		if !s.full.Swap(true) && s.onFull != nil {
			s.onFull(err)
		}
		return err
	}
	if !s.full.Load() {
		return nil
	}
	// A small write (failing a job) fits in pages bbolt has free inside
	// the file while batches still do not: the disk counts as full until
	// space was freed on it.
	if free, ok := freeBytes(filepath.Dir(s.db.Path())); ok && free < s.freeWhenFull.Load()+freedEnough && free < plentyFree {
		return nil
	}
	if s.full.Swap(false) && s.onFull != nil {
		s.onFull(nil)
	}
	return nil
}

// The disk counts as no longer full once this much more is free than when
// a write failed, or this much is free at all.
const (
	freedEnough = 1 << 20
	plentyFree  = 256 << 20
)

func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// Full reports whether the last write failed for lack of space.
func (s *DB) Full() bool { return s.full.Load() }

// reported tells Options.OnDamage of damage before returning err.
func (s *DB) reported(err error) error {
	var d *DamageError
	if s.onDamage != nil && errors.As(err, &d) {
		s.onDamage(d)
	}
	return err
}
