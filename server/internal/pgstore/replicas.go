package pgstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
)

// What several server replicas on one database share beyond the tables:
// one of them leads (runs what must run once: schedules, timeouts,
// retention, notification delivery), and each tells the others what they
// must act on (a cluster's new jobs, a cancelled job, a delivery to send)
// with PostgreSQL's NOTIFY. Both ride on connections of their own, apart
// from the pool: a session-level advisory lock and LISTEN belong to one
// connection for as long as it lives.

// leaderLock is the advisory lock key of the replica that leads: an
// arbitrary constant of fleetscan's, apart from the migrations' key.
const leaderLock int64 = 0x666c65657473636e // "fleetscn"

// Channels of NOTIFY between replicas.
const (
	// ChannelWake: a cluster (the payload) may have new or cancelled jobs;
	// the replica holding its worker's session looks.
	ChannelWake = "fleetscan_wake"
	// ChannelDisconnect: end the session of a cluster (the payload) whose
	// credentials were rotated, wherever it is.
	ChannelDisconnect = "fleetscan_disconnect"
	// ChannelOutbox: deliveries were committed; the leader's dispatcher
	// sends them.
	ChannelOutbox = "fleetscan_outbox"
	// ChannelAttached: "REPLICA CLUSTER", a worker's session started on
	// that replica; the others end theirs of the cluster.
	ChannelAttached = "fleetscan_attached"
)

// Coordination tunes Lead and Listen; the zero value has the defaults.
type Coordination struct {
	// Check is how often the leader checks that its connection, and so
	// its lock, still holds, and how often a follower tries to take the
	// lock (default 5s).
	Check time.Duration
	// Retry is how long Listen waits before connecting again after its
	// connection failed (default 1s).
	Retry time.Duration
}

func (c Coordination) check() time.Duration {
	if c.Check <= 0 {
		return 5 * time.Second
	}
	return c.Check
}

func (c Coordination) retry() time.Duration {
	if c.Retry <= 0 {
		return time.Second
	}
	return c.Retry
}

// connect opens a connection apart from the pool, with the pool's
// settings.
func (db *DB) connect(ctx context.Context) (*pgx.Conn, error) {
	return pgx.ConnectConfig(ctx, db.pool.Config().ConnConfig.Copy())
}

// Lead runs lead while this replica holds the leader's lock, and again
// each time it takes the lock back, until ctx ends. lead's context ends
// when the lock may be lost: its connection failed a check. A replica
// that does not hold the lock tries again every c.Check, so that when the
// leader dies (and PostgreSQL ends its session, releasing the lock) one
// of the others takes over within that time. onChange, if set, hears
// each change of role.
//
// Two leaders overlap at most for one check interval, and only when
// PostgreSQL ended the leader's session while its process lives on (a
// network partition): what the leader runs is idempotent in the
// database (job timeouts, retention) or made so by the outbox's once
// keys, and a schedule may at worst start one extra scan.
func (db *DB) Lead(ctx context.Context, c Coordination, lead func(ctx context.Context), onChange func(leading bool)) {
	for ctx.Err() == nil {
		held, err := db.leadOnce(ctx, c, lead, onChange)
		if err != nil && ctx.Err() == nil {
			if held {
				db.logf("stopped leading: %v", err)
			} else {
				db.logf("leader election: %v", err)
			}
		}
		if !held {
			sleep(ctx, c.check())
		}
	}
}

// leadOnce connects, tries the lock, and leads while it holds it. It
// reports whether it held the lock.
func (db *DB) leadOnce(ctx context.Context, c Coordination, lead func(ctx context.Context), onChange func(bool)) (bool, error) {
	conn, err := db.connect(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for {
		var got bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, leaderLock).Scan(&got); err != nil {
			return false, err
		}
		if got {
			break
		}
		if !sleep(ctx, c.check()) {
			return false, ctx.Err()
		}
	}
	if onChange != nil {
		onChange(true)
		defer onChange(false)
	}
	leadCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		lead(leadCtx)
	}()
	// The lock lives as long as the connection: check it, and end the
	// leader's work as soon as it fails.
	t := time.NewTicker(c.check())
	defer t.Stop()
	for {
		select {
		case <-done:
			stop()
			return true, nil
		case <-t.C:
			pingCtx, cancel := context.WithTimeout(ctx, c.check())
			err := conn.Ping(pingCtx)
			cancel()
			if err != nil {
				stop()
				<-done
				return true, fmt.Errorf("the leader's connection failed: %w", err)
			}
		}
	}
}

// Listen hears the channels until ctx ends, calling fn for each
// notification. After each (re)connection it calls fn with an empty
// payload on every channel: notifications sent while it was not
// listening are lost, so the listener must look at everything once.
func (db *DB) Listen(ctx context.Context, c Coordination, channels []string, fn func(channel, payload string)) {
	for ctx.Err() == nil {
		err := db.listenOnce(ctx, channels, fn)
		if ctx.Err() != nil {
			return
		}
		db.logf("listen for other replicas: %v; connecting again", err)
		sleep(ctx, c.retry())
	}
}

func (db *DB) listenOnce(ctx context.Context, channels []string, fn func(channel, payload string)) error {
	conn, err := db.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, ch := range channels {
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return err
		}
	}
	for _, ch := range channels {
		fn(ch, "")
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		fn(n.Channel, n.Payload)
	}
}

// Notify sends a notification on channel to every replica listening, this
// one included, one per payload; a payload is at most 7,999 bytes (a
// cluster id is at most 63).
func (db *DB) Notify(ctx context.Context, channel string, payloads ...string) error {
	if len(payloads) == 0 {
		return nil
	}
	if _, err := db.pool.Exec(ctx, `SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p`, channel, payloads); err != nil {
		return fmt.Errorf("notify %s: %w", channel, err)
	}
	return nil
}

// sleep waits d or until ctx ends, and reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// logf reports what a background loop cannot return.
func (db *DB) logf(format string, args ...any) {
	db.log.Warn(fmt.Sprintf(format, args...))
}

// PageKey is the key of page tokens, shared by every replica: made by the
// first server to open the database, kept in meta.
func (db *DB) PageKey() []byte { return db.pageKey }

// loadPageKey reads the page-token key, creating it on a new database; of
// replicas opening a new database at once, the first insert wins and all
// read the same key.
func (db *DB) loadPageKey(ctx context.Context, fresh []byte) error {
	if _, err := db.pool.Exec(ctx, `INSERT INTO meta (key, value) VALUES ('page_key', $1) ON CONFLICT (key) DO NOTHING`, fresh); err != nil {
		return fmt.Errorf("page key: %w", err)
	}
	if err := db.pool.QueryRow(ctx, `SELECT value FROM meta WHERE key = 'page_key'`).Scan(&db.pageKey); err != nil {
		return fmt.Errorf("page key: %w", err)
	}
	return nil
}

// Size is the database's size on disk, as PostgreSQL counts it.
func (db *DB) Size() (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n int64
	err := db.pool.QueryRow(ctx, `SELECT pg_database_size(current_database())`).Scan(&n)
	return n, err
}

// Full is always false: PostgreSQL's disk is its operator's to watch, and
// a write it refuses for lack of space (SQLSTATE 53100) fails the call
// that made it, to be retried, as any database error.
func (db *DB) Full() bool { return false }

// ErrBackupElsewhere: the API's Backup streams the bbolt file; a
// PostgreSQL database is backed up with PostgreSQL's own tools, which do
// it consistently without the server in the way.
var ErrBackupElsewhere = fmt.Errorf("%w: the server's store is PostgreSQL: back it up with pg_dump, or with base backups and WAL archiving (docs/postgres.md)", errors.ErrUnsupported)

// Backup refuses: see ErrBackupElsewhere.
func (db *DB) Backup(context.Context, io.Writer) (int64, error) { return 0, ErrBackupElsewhere }

// SessionStarted records that the cluster's worker has a session on this
// replica (the newest session wins, wherever it is).
func (db *DB) SessionStarted(ctx context.Context, clusterID string) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO worker_sessions (cluster_id, replica, since) VALUES ($1, $2, $3)
		ON CONFLICT (cluster_id) DO UPDATE SET replica = excluded.replica, since = excluded.since`, clusterID, db.replica, time.Now())
	if err != nil {
		return fmt.Errorf("session of %q: %w", clusterID, err)
	}
	return nil
}

// ClaimSessions records the sessions of this replica's workers (clusters)
// where no live replica holds the cluster's: after a failed write, or
// after the database lost the row, the record is made right again. A row
// of another live replica is a newer session there, and is kept.
func (db *DB) ClaimSessions(ctx context.Context, clusterIDs []string) error {
	if len(clusterIDs) == 0 {
		return nil
	}
	_, err := db.pool.Exec(ctx, `INSERT INTO worker_sessions (cluster_id, replica, since)
		SELECT c, $2, $3 FROM unnest($1::text[]) AS c WHERE EXISTS (SELECT 1 FROM clusters WHERE id = c)
		ON CONFLICT (cluster_id) DO UPDATE SET replica = excluded.replica, since = excluded.since
		WHERE worker_sessions.replica <> excluded.replica AND worker_sessions.replica NOT IN (`+liveReplicas+`)`, clusterIDs, db.replica, time.Now())
	if err != nil {
		return fmt.Errorf("claim worker sessions: %w", err)
	}
	return nil
}

// SessionEnded records that the worker's session on this replica ended;
// a newer session on another replica stays recorded.
func (db *DB) SessionEnded(ctx context.Context, clusterID string) error {
	if _, err := db.pool.Exec(ctx, `DELETE FROM worker_sessions WHERE cluster_id = $1 AND replica = $2`, clusterID, db.replica); err != nil {
		return fmt.Errorf("session of %q: %w", clusterID, err)
	}
	return nil
}

// liveReplicas is the SQL of the ids of the replicas that have a session
// in the database now.
const liveReplicas = `SELECT substr(application_name, length('` + appNamePrefix + `') + 1) FROM pg_stat_activity
	WHERE datname = current_database() AND starts_with(application_name, '` + appNamePrefix + `')`

// WorkerSessions returns the clusters whose workers have a session on a
// live replica, and the replica's id.
func (db *DB) WorkerSessions(ctx context.Context) (map[string]string, error) {
	rows, err := db.pool.Query(ctx, `SELECT cluster_id, replica FROM worker_sessions WHERE replica IN (`+liveReplicas+`)`)
	if err != nil {
		return nil, fmt.Errorf("worker sessions: %w", err)
	}
	out := map[string]string{}
	var cluster, replica string
	_, err = pgx.ForEachRow(rows, []any{&cluster, &replica}, func() error {
		out[cluster] = replica
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("worker sessions: %w", err)
	}
	return out, nil
}

// Replica is this store's id among the replicas.
func (db *DB) Replica() string { return db.replica }
