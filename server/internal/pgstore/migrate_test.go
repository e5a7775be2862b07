package pgstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fleetscan/fleetscan/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// newDatabase returns the DSN of an empty database of the test's own.
func newDatabase(t *testing.T) string {
	t.Helper()
	return pgtest.Shared(t).CreateDatabase(t, "")
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func migrations(t *testing.T) []migration {
	t.Helper()
	ms, err := loadMigrations(migrationsDir())
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// poolOf connects to dsn without migrating, closed when the test ends.
func poolOf(t *testing.T, dsn string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(testContext(t), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// openDB opens the store, closed when the test ends.
func openDB(t *testing.T, dsn string) *DB {
	t.Helper()
	db, err := Open(testContext(t), dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// appliedVersions reads schema_migrations.
func appliedVersions(t *testing.T, pool *pgxpool.Pool) []int {
	t.Helper()
	rows, _ := pool.Query(testContext(t), "SELECT version FROM schema_migrations ORDER BY version")
	vs, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

// schemaOf describes the tables, columns and constraints of the public
// schema, to compare two states of a database.
func schemaOf(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	rows, _ := pool.Query(testContext(t), `
		SELECT table_name || '.' || column_name || ' ' || data_type FROM information_schema.columns WHERE table_schema = 'public'
		UNION ALL
		SELECT conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint WHERE connamespace = 'public'::regnamespace
		UNION ALL
		SELECT indexname || ' ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
		ORDER BY 1`)
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestLoadMigrations(t *testing.T) {
	ms := migrations(t)
	if len(ms) == 0 || ms[0].name != "0001_init.sql" {
		t.Fatalf("migrations %v, want 0001_init.sql first", ms)
	}
	for _, tc := range []struct {
		name  string
		files []string
		want  string // in the error; "" for none
	}{
		{"in order", []string{"0001_a.sql", "0002_b.sql"}, ""},
		{"a gap", []string{"0001_a.sql", "0003_c.sql"}, "version 3 where 2 was next"},
		{"not from 1", []string{"0002_b.sql"}, "version 2 where 1 was next"},
		{"a stray file", []string{"0001_a.sql", "README.md"}, "README.md: the name is not"},
		{"a capital", []string{"0001_Init.sql"}, "the name is not"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for _, f := range tc.files {
				fsys[f] = &fstest.MapFile{Data: []byte("SELECT 1;")}
			}
			_, err := loadMigrations(fsys)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestOpenEmptyDatabase: Open applies every migration to an empty
// database and records each; opening again applies nothing and changes
// nothing.
func TestOpenEmptyDatabase(t *testing.T) {
	t.Parallel()
	dsn := newDatabase(t)
	ms := migrations(t)
	began := time.Now()
	db, applied, err := open(testContext(t), dsn, ms)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("applied %d migrations to an empty database in %v", len(applied), time.Since(began))
	if want := versions(ms); !slices.Equal(applied, want) {
		t.Errorf("applied %v, want %v", applied, want)
	}
	if got := appliedVersions(t, db.pool); !slices.Equal(got, versions(ms)) {
		t.Errorf("schema_migrations holds %v, want %v", got, versions(ms))
	}
	before := schemaOf(t, db.pool)
	for _, table := range []string{"meta", "clusters", "cluster_grants", "scans", "jobs", "scan_jobs", "staged_batches", "findings",
		"job_fingerprints", "summaries", "tokens", "exceptions", "schedules", "audit", "notifiers", "deliveries", "notify_once"} {
		if !slices.ContainsFunc(before, func(s string) bool { return strings.HasPrefix(s, table+".") }) {
			t.Errorf("no table %s", table)
		}
	}
	db.Close()

	db, applied, err = open(testContext(t), dsn, ms)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if len(applied) != 0 {
		t.Errorf("opening again applied %v", applied)
	}
	if after := schemaOf(t, db.pool); !slices.Equal(before, after) {
		t.Errorf("opening again changed the schema:\nbefore %q\nafter  %q", before, after)
	}
}

func versions(ms []migration) []int {
	var out []int
	for _, m := range ms {
		out = append(out, m.version)
	}
	return out
}

// TestConcurrentOpen: replicas that open an empty database at once all
// succeed, and each migration is applied by one of them.
func TestConcurrentOpen(t *testing.T) {
	t.Parallel()
	dsn := newDatabase(t)
	ms := migrations(t)
	const replicas = 4
	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		applied [replicas][]int
		errs    [replicas]error
	)
	for i := range replicas {
		wg.Go(func() {
			<-start
			var db *DB
			db, applied[i], errs[i] = open(testContext(t), dsn, ms)
			if db != nil {
				db.Close()
			}
		})
	}
	close(start)
	wg.Wait()
	var all []int
	for i := range replicas {
		if errs[i] != nil {
			t.Errorf("replica %d: %v", i, errs[i])
		}
		all = append(all, applied[i]...)
	}
	slices.Sort(all)
	if !slices.Equal(all, versions(ms)) {
		t.Errorf("the replicas applied %v between them, want each of %v once (%v)", all, versions(ms), applied)
	}
	if got := appliedVersions(t, poolOf(t, dsn)); !slices.Equal(got, versions(ms)) {
		t.Errorf("schema_migrations holds %v, want %v", got, versions(ms))
	}
}

// TestOpenWaitsForMigrationLock: while another session holds the
// migration lock, Open waits for it, then goes on.
func TestOpenWaitsForMigrationLock(t *testing.T) {
	t.Parallel()
	dsn := newDatabase(t)
	ctx := testContext(t)
	holder, err := poolOf(t, dsn).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := holder.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrationLock); err != nil {
		t.Fatal(err)
	}
	opened := make(chan error, 1)
	go func() {
		db, err := Open(ctx, dsn, Options{})
		if err == nil {
			db.Close()
		}
		opened <- err
	}()
	// Wait until Open's transaction waits for the lock.
	watch := poolOf(t, dsn)
	for {
		var waiting int
		err := watch.QueryRow(ctx, `SELECT count(*) FROM pg_locks
			WHERE locktype = 'advisory' AND NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&waiting)
		if err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		select {
		case err := <-opened:
			t.Fatalf("Open returned (%v) while another session held the migration lock", err)
		case <-ctx.Done():
			t.Fatal("Open never waited for the migration lock")
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := holder.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-opened; err != nil {
		t.Fatal(err)
	}
}

// TestOpenRefusesNewerSchema: a database that a newer server migrated is
// refused with an error that says so and what to do, and is left as it
// was.
func TestOpenRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	dsn := newDatabase(t)
	ms := migrations(t)
	db := openDB(t, dsn)
	next := len(ms) + 1
	if _, err := db.pool.Exec(testContext(t), "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, 'from_the_future.sql', '\\x00')", next); err != nil {
		t.Fatal(err)
	}
	_, err := Open(testContext(t), dsn, Options{})
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open: %v, want ErrSchemaTooNew", err)
	}
	for _, want := range []string{fmt.Sprintf("database schema version %d (from_the_future.sql)", next), fmt.Sprintf("this server knows %d", len(ms)), "a newer fleetscan-server migrated it"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q\nwant it to say %q", err, want)
		}
	}
	if got := appliedVersions(t, db.pool); len(got) != next {
		t.Errorf("schema_migrations holds %v after the refusal", got)
	}
}

// TestOpenRefusesEditedMigration: a migration whose file changed after it
// was applied is refused, not run again or ignored.
func TestOpenRefusesEditedMigration(t *testing.T) {
	t.Parallel()
	dsn := newDatabase(t)
	db := openDB(t, dsn)
	if _, err := db.pool.Exec(testContext(t), "UPDATE schema_migrations SET checksum = '\\x00' WHERE version = 1"); err != nil {
		t.Fatal(err)
	}
	_, err := Open(testContext(t), dsn, Options{})
	if !errors.Is(err, ErrSchemaChanged) || !strings.Contains(err.Error(), "migration 1 was applied as 0001_init.sql") {
		t.Fatalf("Open: %v, want ErrSchemaChanged naming migration 1", err)
	}
}

// TestFailedMigrationRollsBack: a migration that fails leaves nothing of
// itself, neither its tables nor its record; the earlier ones stay, and
// the next start applies the fixed file.
func TestFailedMigrationRollsBack(t *testing.T) {
	t.Parallel()
	pool := poolOf(t, newDatabase(t))
	ctx := testContext(t)
	load := func(second string) []migration {
		ms, err := loadMigrations(fstest.MapFS{
			"0001_a.sql": {Data: []byte("CREATE TABLE a (x int);")},
			"0002_b.sql": {Data: []byte(second)},
		})
		if err != nil {
			t.Fatal(err)
		}
		return ms
	}
	applied, err := migrate(ctx, pool, load("CREATE TABLE b (x int); SELECT 1/0;"))
	if err == nil || !strings.Contains(err.Error(), "migration 0002_b.sql") || !strings.Contains(err.Error(), "division by zero") {
		t.Fatalf("migrate: %v, want 0002_b.sql's division by zero", err)
	}
	if !slices.Equal(applied, []int{1}) {
		t.Errorf("applied %v, want [1]", applied)
	}
	var b *string
	if err := pool.QueryRow(ctx, "SELECT to_regclass('b')::text").Scan(&b); err != nil || b != nil {
		t.Errorf("table b after its migration failed: %v, %v", b, err)
	}
	if got := appliedVersions(t, pool); !slices.Equal(got, []int{1}) {
		t.Errorf("schema_migrations holds %v, want [1]", got)
	}
	// A failed migration's file may still be fixed: it was not applied.
	if applied, err := migrate(ctx, pool, load("CREATE TABLE b (x int);")); err != nil || !slices.Equal(applied, []int{2}) {
		t.Errorf("migrate with 0002 fixed: %v, %v; want [2] applied", applied, err)
	}
}
