package store

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
	bolt "go.etcd.io/bbolt"
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
	// ErrInvalidID: a string that is not an id.
	ErrInvalidID = errors.New("invalid id")
)

// DB is the bbolt-backed store.
type DB struct {
	db    *bolt.DB
	now   func() time.Time
	codec *codec
	// completeSlots bounds the CompleteJob calls doing CPU work at once (see
	// (*DB).completing).
	completeSlots chan struct{}

	idMu    sync.Mutex
	entropy *ulid.MonotonicEntropy
}

// Options tune Open.
type Options struct {
	// Now replaces the clock in tests.
	Now func() time.Time
}

// Open opens or creates the database file at path. It waits at most a few
// seconds for another process's lock rather than hanging.
func Open(path string, opts Options) (*DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("open %s: locked by another process (is a server already running on this data dir?)", path)
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// Batch (staging from many worker streams) waits at most this long to
	// fill a transaction: bbolt's default of 10 ms caps one stream at about
	// 100 batches a second.
	db.MaxBatchDelay = 2 * time.Millisecond
	s := &DB{db: db, now: opts.Now, entropy: ulid.Monotonic(rand.Reader, 0), completeSlots: make(chan struct{}, max(1, runtime.GOMAXPROCS(0)-1))}
	if s.now == nil {
		s.now = time.Now
	}
	if err := s.init(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return s, nil
}

func (s *DB) init() error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		backfillActive := tx.Bucket(bucketActive) == nil && tx.Bucket(bucketJobs) != nil
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		if backfillActive {
			// A database from before the index: index its open jobs.
			err := tx.Bucket(bucketJobs).ForEach(func(k, v []byte) error {
				job := &storagev1.JobRecord{}
				if err := proto.Unmarshal(v, job); err != nil {
					return err
				}
				if IsFinal(job.State) {
					return nil
				}
				var id ulid.ULID
				copy(id[:], k)
				return tx.Bucket(bucketActive).Put(pendingKey(job.ClusterId, id), nil)
			})
			if err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		v := meta.Get([]byte("schema"))
		if v == nil {
			return meta.Put([]byte("schema"), u64(schemaVersion))
		}
		if got := binary.BigEndian.Uint64(v); got != schemaVersion {
			return fmt.Errorf("database schema version %d, this server needs %d", got, schemaVersion)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		var err error
		s.codec, err = loadCatalogTx(tx)
		return err
	})
}

// Close closes the database file.
func (s *DB) Close() error { return s.db.Close() }

// Size is the size of the database file in bytes.
func (s *DB) Size() (int64, error) {
	var size int64
	err := s.db.View(func(tx *bolt.Tx) error { size = tx.Size(); return nil })
	return size, err
}

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
func getProto(b *bolt.Bucket, key []byte, m proto.Message) error {
	v := b.Get(key)
	if v == nil {
		return ErrNotFound
	}
	return proto.Unmarshal(v, m)
}

func putProto(b *bolt.Bucket, key []byte, m proto.Message) error {
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
