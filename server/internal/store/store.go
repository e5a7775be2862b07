package store

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"google.golang.org/protobuf/proto"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
)

// Errors of the store; callers test them with errors.Is.
var (
	ErrNotFound      = errors.New("not found")
	ErrAlreadyExists = errors.New("already exists")
	// ErrConflict: the object is not in a state that allows the change.
	ErrConflict = errors.New("conflict")
	// ErrIncomplete: a job ended with batches missing.
	ErrIncomplete = errors.New("incomplete")
	// ErrNoSpace: a write failed because the server's disk (or quota) is
	// full; it was rolled back.
	ErrNoSpace = errors.New("the server's disk is full")
	// ErrOutOfOrder: a batch that would leave a gap in the numbering.
	ErrOutOfOrder = errors.New("batch out of order")
	// ErrInvalidID: a string that is not an id.
	ErrInvalidID = errors.New("invalid id")
)

// DB is the bbolt-backed store.
type DB struct {
	db *bolt.DB
	// onDamage, if set, hears of every damage a transaction met.
	onDamage func(*DamageError)
	onFull   func(error)
	full     atomic.Bool
	// freeWhenFull: the bytes free on the disk when a write last failed
	// for lack of space.
	freeWhenFull atomic.Int64
	pageKey      []byte
	now          func() time.Time
	codec        *codec
	// cpu bounds the goroutines doing CompleteJob's CPU work at once (see
	// (*DB).completing).
	cpu *cpuSlots
	// group commits the writes of many callers together (see batch).
	group groupCommit
	// clustersVersion counts the committed transactions that wrote to
	// the clusters bucket (see ClustersVersion).
	clustersVersion atomic.Uint64

	idMu    sync.Mutex
	entropy *ulid.MonotonicEntropy

	// outbox and onOutbox: see Options.
	outbox   OutboxHook
	onOutbox func()
}

// Options tune Open.
type Options struct {
	// Now replaces the clock in tests.
	Now func() time.Time
	// OnDamage, if set, hears of every damage a transaction meets, to log
	// it and count it; the transaction fails with ErrDataLoss either way.
	OnDamage func(*DamageError)
	// OnFull, if set, hears when writes start failing for lack of space
	// (the error) and when one succeeds again (nil).
	OnFull func(error)
	// Outbox, if set, is asked for the deliveries of each job that ends,
	// while a notifier exists; they are written in the job's transaction.
	Outbox OutboxHook
	// OnOutbox, if set, hears that deliveries were committed.
	OnOutbox func()
}

// Open opens or creates the database file at path. It waits at most a few
// seconds for another process's lock rather than hanging. A file that is
// empty, truncated or not a database is refused with an error that names
// it: starting afresh over it would lose its history without a word.
func Open(path string, opts Options) (*DB, error) {
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Size() == 0 {
		return nil, fmt.Errorf("open %s: the file is empty (0 bytes), which a database never is: it was truncated or replaced. Restore a backup (fleetscan-server restore), or remove the file to start a new, empty database: %w", path, ErrDataLoss)
	}
	db, err := openBolt(path, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		switch {
		case errors.Is(err, ErrDataLoss):
			return nil, err
		case errors.Is(err, berrors.ErrTimeout):
			return nil, fmt.Errorf("open %s: locked by another process (is a server already running on this data dir?)", path)
		case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch):
			return nil, fmt.Errorf("open %s: not a readable fleetscan database (%v): restore a backup (fleetscan-server restore): %w", path, err, ErrDataLoss)
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := checkSize(db); err != nil {
		db.Close()
		return nil, err
	}
	s := &DB{db: db, now: opts.Now, onDamage: opts.OnDamage, onFull: opts.OnFull, outbox: opts.Outbox, onOutbox: opts.OnOutbox, entropy: ulid.Monotonic(rand.Reader, 0), cpu: newCPUSlots(max(1, runtime.GOMAXPROCS(0)-1))}
	if s.now == nil {
		s.now = time.Now
	}
	if err := s.init(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return s, nil
}

// openBolt opens the file with bbolt, turning its panics on a damaged
// freelist or meta page into ErrDataLoss.
func openBolt(path string, opts *bolt.Options) (db *bolt.DB, err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("open %s: the file is damaged (%v): restore a backup (fleetscan-server restore): %w", path, r, ErrDataLoss)
		}
	}()
	return bolt.Open(path, 0o600, opts)
}

// checkSize compares the file's size with the pages its metadata says it
// has: a shorter file was truncated, and reading past its end would kill
// the process with SIGBUS.
func checkSize(db *bolt.DB) error {
	fi, err := os.Stat(db.Path())
	if err != nil {
		return fmt.Errorf("open %s: %w", db.Path(), err)
	}
	var want int64
	if err := db.View(func(tx *bolt.Tx) error { want = tx.Size(); return nil }); err != nil {
		return fmt.Errorf("open %s: %w", db.Path(), err)
	}
	if fi.Size() < want {
		return fmt.Errorf("open %s: the file is truncated: %d bytes where its metadata counts %d; restore a backup (fleetscan-server restore): %w", db.Path(), fi.Size(), want, ErrDataLoss)
	}
	return nil
}

var schemaKey = []byte("schema")

func (s *DB) init() error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		v := tx.Bucket(bucketMeta).Get(schemaKey)
		switch {
		case v == nil:
			// A new database.
		case len(v) == 8:
			// Schema 3 and before stored values without checksums.
			if got := binary.BigEndian.Uint64(v); got != 3 {
				return fmt.Errorf("database schema version %d, this server needs %d", got, schemaVersion)
			}
			if err := migrate3(tx); err != nil {
				return fmt.Errorf("upgrade from schema 3: %w", err)
			}
		default:
			body, d := unseal(bucketMeta, schemaKey, v)
			if d != nil {
				return d
			}
			if len(body) != 8 {
				return &DamageError{Bucket: string(bucketMeta), Key: schemaKey, Reason: "schema version of the wrong size"}
			}
			switch got := binary.BigEndian.Uint64(body); got {
			case schemaVersion:
				return nil
			case 4:
				// Schema 4 records name no shared strings and read as
				// they are; bucketStrings was created above.
			default:
				return fmt.Errorf("database schema version %d, this server needs %d", got, schemaVersion)
			}
		}
		return tx.Bucket(bucketMeta).Put(schemaKey, seal(bucketMeta, schemaKey, u64(schemaVersion)))
	})
	if err != nil {
		return s.reported(err)
	}
	return s.update(func(tx *txn) error {
		var err error
		if s.codec, err = loadCatalogTx(tx); err != nil {
			return err
		}
		meta := tx.bucket(bucketMeta)
		if s.pageKey = bytes.Clone(meta.Get(pageKeyKey)); s.pageKey == nil {
			s.pageKey = make([]byte, 32)
			if _, err := rand.Read(s.pageKey); err != nil {
				return err
			}
			return meta.Put(pageKeyKey, s.pageKey)
		}
		return nil
	})
}

var pageKeyKey = []byte("page_key")

// PageKey is the database's secret for signing page tokens: kept with the
// data, so tokens survive a restart and a backup restores them too.
func (s *DB) PageKey() []byte { return s.pageKey }

// migrate3 upgrades a schema 3 database in place, in the transaction that
// records the new version: it indexes the open jobs of a database from
// before the active index, then seals every value.
func migrate3(tx *bolt.Tx) error {
	active := tx.Bucket(bucketActive)
	if k, _ := active.Cursor().First(); k == nil {
		err := tx.Bucket(bucketJobs).ForEach(func(k, v []byte) error {
			job := &storagev1.JobRecord{}
			if err := proto.Unmarshal(v, job); err != nil {
				return fmt.Errorf("job %x: %w", k, err)
			}
			if IsFinal(job.State) {
				return nil
			}
			var id ulid.ULID
			copy(id[:], k)
			return active.Put(pendingKey(job.ClusterId, id), nil)
		})
		if err != nil {
			return err
		}
	}
	for _, name := range allBuckets {
		b := tx.Bucket(name)
		// bbolt forbids writes under a live cursor, so seal a chunk of
		// keys at a time and seek back.
		var from []byte
		for first := true; first || from != nil; first = false {
			c := b.Cursor()
			k, v := c.First()
			if from != nil {
				k, v = c.Seek(from)
			}
			var keys, values [][]byte
			for ; k != nil && len(keys) < 4096; k, v = c.Next() {
				keys = append(keys, bytes.Clone(k))
				values = append(values, seal(name, k, v))
			}
			from = bytes.Clone(k)
			for i := range keys {
				if err := b.Put(keys[i], values[i]); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Size is the size of the database file in bytes.
func (s *DB) Size() (int64, error) {
	var size int64
	err := s.db.View(func(tx *bolt.Tx) error { size = tx.Size(); return nil })
	return size, err
}

// Close closes the database file.
func (s *DB) Close() error { return s.db.Close() }

// NewID returns a new time-ordered id.
func (s *DB) NewID() ulid.ULID {
	s.idMu.Lock()
	defer s.idMu.Unlock()
	return ulid.MustNew(ulid.Timestamp(s.now()), s.entropy)
}

func (s *DB) nowMs() int64 { return s.now().UnixMilli() }

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

// getProto decodes the value at key into m. The bytes are only valid in
// the transaction; Unmarshal copies what it keeps.
func getProto(b *table, key []byte, m proto.Message) error {
	v := b.Get(key)
	if v == nil {
		return ErrNotFound
	}
	return proto.Unmarshal(v, m)
}

// getRef decodes the record that another record names (a scan's jobs, a
// job's cluster): the store deletes neither side alone, so a missing one
// is damage, not NotFound, which would read as a smaller truth.
func getRef(b *table, key []byte, m proto.Message, namedBy string) error {
	err := getProto(b, key, m)
	if errors.Is(err, ErrNotFound) {
		d := &DamageError{Bucket: string(b.name), Key: bytes.Clone(key), Reason: "named by " + namedBy + " but missing"}
		b.t.fail(d)
		return d
	}
	return err
}

func putProto(b *table, key []byte, m proto.Message) error {
	v, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return err
	}
	return b.Put(key, v)
}

// NotFoundf returns an error wrapping ErrNotFound.
func NotFoundf(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrNotFound)
}

// ParseID parses the string form of a scan or job id.
func ParseID(s string) (ulid.ULID, error) {
	id, err := ulid.ParseStrict(s)
	if err != nil {
		return id, fmt.Errorf("%w %q: want 26 characters of Crockford base32", ErrInvalidID, s)
	}
	return id, nil
}

func protoUnmarshal(v []byte, m proto.Message) error { return proto.Unmarshal(v, m) }

func marshal(m proto.Message) ([]byte, error) {
	return proto.MarshalOptions{Deterministic: true}.Marshal(m)
}
