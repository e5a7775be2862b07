package pgstore

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/oklog/ulid/v2"

	"github.com/fleetscan/fleetscan/server/internal/store"
)

// DB is the PostgreSQL-backed store. Its methods have the signatures of
// the bbolt store's (*store.DB) and return the same sentinels
// (store.ErrNotFound, store.ErrAlreadyExists, …), as the contract in
// server/internal/store/storetest checks.
type DB struct {
	pool *pgxpool.Pool
	// ingest is the pool of StageBatch and CompleteJob (see open).
	ingest *pgxpool.Pool
	// now is the clock of the times the store assigns.
	now func() time.Time
	// outbox and onOutbox: see Options.
	outbox   store.OutboxHook
	onOutbox func()
	log      *slog.Logger
	// pageKey: see PageKey.
	pageKey []byte
	// replica is this store's id among the replicas sharing the
	// database, in its sessions' application_name (appNamePrefix+id).
	replica string
	// suspects are the owners of held jobs that RecoverOrphans found
	// without a session at its last look.
	orphanMu sync.Mutex
	suspects map[string]bool

	// afterBaseRead, set by tests only, runs in CompleteJob between
	// reading (and locking) the base of the job's delta set and writing
	// the delta: the window a concurrent Compact must not drop the base in.
	afterBaseRead func()

	idMu    sync.Mutex
	entropy *ulid.MonotonicEntropy
}

// appNamePrefix starts the application_name of the store's sessions.
const appNamePrefix = "fleetscan-server "

// Options tune Open, as store.Options tune the bbolt store's.
type Options struct {
	// Now replaces the clock in tests.
	Now func() time.Time
	// Outbox, if set, is asked for the deliveries of each job that ends,
	// while a notifier exists; they are written in the job's transaction.
	Outbox store.OutboxHook
	// OnOutbox, if set, hears that deliveries were committed.
	OnOutbox func()
	// Logger hears what background work (Lead, Listen) cannot return;
	// slog.Default when nil.
	Logger *slog.Logger
}

// Open connects to the database at dsn (a postgres:// URL or key=value
// DSN, as pgx reads them) and applies the migrations it lacks. ctx bounds
// the connection and the wait for a replica that is migrating the same
// database. A database that a newer server migrated is refused
// (ErrSchemaTooNew), as is one whose applied migrations differ from this
// server's (ErrSchemaChanged).
func Open(ctx context.Context, dsn string, opts Options) (*DB, error) {
	ms, err := loadMigrations(migrationsDir())
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	db, _, err := open(ctx, dsn, ms)
	if err != nil {
		return nil, err
	}
	if opts.Now != nil {
		db.now = opts.Now
	}
	db.outbox, db.onOutbox, db.log = opts.Outbox, opts.OnOutbox, opts.Logger
	if db.log == nil {
		db.log = slog.Default()
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		db.Close()
		return nil, fmt.Errorf("page key: %w", err)
	}
	if err := db.loadPageKey(ctx, key); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// open is Open with the migrations to apply; it returns the versions it
// applied.
func open(ctx context.Context, dsn string, ms []migration) (*DB, []int, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, nil, fmt.Errorf("open postgres: %w", err)
	}
	// Named without the password, for errors.
	where := fmt.Sprintf("postgres %s:%d/%s", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
	// Every session of this store names it: RecoverOrphans tells live
	// replicas from dead ones by their sessions.
	replica := ulid.Make().String()
	cfg.ConnConfig.RuntimeParams["application_name"] = appNamePrefix + replica
	// PostgreSQL ends the session of a replica whose machine died or was
	// cut off within about a minute, rather than after the kernel's two
	// hours of TCP keepalive: its leader's lock and its jobs are then
	// released to the others (RecoverOrphans, Lead). The DSN may say
	// otherwise.
	for k, v := range map[string]string{"tcp_keepalives_idle": "15", "tcp_keepalives_interval": "5", "tcp_keepalives_count": "3", "tcp_user_timeout": "30000"} {
		if !strings.Contains(dsn, k) {
			cfg.ConnConfig.RuntimeParams[k] = v
		}
	}
	// pgxpool's default, four connections on two cores, is far too few for
	// a thousand worker streams and the API at once. The DSN's
	// pool_max_conns, if given, wins.
	if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = defaultMaxConns
	}
	// Ingest (StageBatch, CompleteJob) has a pool of its own, half the
	// size: a thousand streams may keep all of its connections busy, and
	// the API's reads, on the other pool, do not queue behind them.
	ingestCfg := cfg.Copy()
	ingestCfg.MaxConns = max(2, cfg.MaxConns/2)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", where, err)
	}
	ingest, err := pgxpool.NewWithConfig(ctx, ingestCfg)
	if err != nil {
		pool.Close()
		return nil, nil, fmt.Errorf("open %s: %w", where, err)
	}
	applied, err := migrate(ctx, pool, ms)
	if err != nil {
		pool.Close()
		ingest.Close()
		return nil, applied, fmt.Errorf("open %s: %w", where, err)
	}
	return &DB{pool: pool, ingest: ingest, now: time.Now, entropy: ulid.Monotonic(rand.Reader, 0), replica: replica}, applied, nil
}

// defaultMaxConns is the connections of the store's main pool unless the
// DSN says (pool_max_conns); ingest's pool has half as many.
const defaultMaxConns = 16

// Close closes the pool's connections, waiting for those in use. Its
// error is always nil; it has one to be the server's Store.
func (db *DB) Close() error {
	db.ingest.Close()
	db.pool.Close()
	return nil
}
