package pgstore

import (
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// seed is a small valid database: clusters c1 and c2; scan a1 with job b1
// of c1 (pending); scan a2 with job b2 of c1 (succeeded); a finding of c1.
const seed = `
INSERT INTO clusters (id, tenant, create_at) VALUES ('c1', 'acme', now()), ('c2', 'acme', now());
INSERT INTO scans (id, create_at, detail) VALUES
	('00000000-0000-0000-0000-0000000000a1', now(), ''),
	('00000000-0000-0000-0000-0000000000a2', now(), '');
INSERT INTO jobs (id, scan_id, cluster_id, state, create_at, detail) VALUES
	('00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-0000000000a1', 'c1', 1, now(), '');
INSERT INTO jobs (id, scan_id, cluster_id, state, create_at, finish_at, detail) VALUES
	('00000000-0000-0000-0000-0000000000b2', '00000000-0000-0000-0000-0000000000a2', 'c1', 4, now(), now(), '');
INSERT INTO scan_jobs (scan_id, job_id, cluster_id) VALUES
	('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000b1', 'c1'),
	('00000000-0000-0000-0000-0000000000a2', '00000000-0000-0000-0000-0000000000b2', 'c1');
UPDATE clusters SET last_job_id = '00000000-0000-0000-0000-0000000000b2', last_job_at = now(),
	last_scan_id = '00000000-0000-0000-0000-0000000000a2' WHERE id = 'c1';
INSERT INTO findings (cluster_seq, fingerprint, check_id, severity, party, first_seen_at, detail) VALUES
	((SELECT seq FROM clusters WHERE id = 'c1'), '\x000102030405060708090a0b0c0d0e0f', 'K8S-POD-001', 4, 3, now(), '');
INSERT INTO job_fingerprints (job_id, encoded) VALUES ('00000000-0000-0000-0000-0000000000b2', '');
INSERT INTO notifiers (id, name, detail) VALUES ('00000000-0000-0000-0000-0000000000c1', 'ops', '');
`

// TestConstraints: the database refuses what the store's code assumes
// never happens, each by the constraint that says so. Each case runs in a
// transaction that is rolled back, its deferred constraints checked before.
func TestConstraints(t *testing.T) {
	t.Parallel()
	db := openDB(t, newDatabase(t))
	ctx := testContext(t)
	if _, err := db.pool.Exec(ctx, seed); err != nil {
		t.Fatalf("seed: %v", err)
	}
	const (
		unique = "23505"
		fkey   = "23503"
		check  = "23514"
	)
	for _, tc := range []struct {
		name       string
		sql        string
		code       string // "" when it must succeed
		constraint string
	}{
		{"a second lifecycle of a finding in a cluster",
			`INSERT INTO findings (cluster_seq, fingerprint, check_id, severity, party, first_seen_at, detail) VALUES
				((SELECT seq FROM clusters WHERE id = 'c1'), '\x000102030405060708090a0b0c0d0e0f', 'K8S-POD-002', 1, 1, now(), '')`,
			unique, "findings_pkey"},
		{"the same fingerprint in another cluster",
			`INSERT INTO findings (cluster_seq, fingerprint, check_id, severity, party, first_seen_at, detail) VALUES
				((SELECT seq FROM clusters WHERE id = 'c2'), '\x000102030405060708090a0b0c0d0e0f', 'K8S-POD-001', 4, 3, now(), '')`,
			"", ""},
		{"a lifecycle of a missing cluster",
			`INSERT INTO findings (cluster_seq, fingerprint, check_id, severity, party, first_seen_at, detail) VALUES
				(999, '\x000102030405060708090a0b0c0d0e0f', 'K8S-POD-001', 4, 3, now(), '')`,
			fkey, "findings_cluster_seq_fkey"},
		{"a fingerprint of the wrong size",
			`INSERT INTO findings (cluster_seq, fingerprint, check_id, severity, party, first_seen_at, detail) VALUES
				((SELECT seq FROM clusters WHERE id = 'c1'), '\x0001', 'K8S-POD-001', 4, 3, now(), '')`,
			check, "findings_fingerprint_check"},
		{"a resolved lifecycle without its last scan",
			`UPDATE findings SET resolved_at = now(), last_seen_at = now()`,
			check, "findings_check"},
		{"a job of a missing cluster",
			`INSERT INTO jobs (id, scan_id, cluster_id, state, create_at, detail) VALUES
				('00000000-0000-0000-0000-0000000000b9', '00000000-0000-0000-0000-0000000000a1', 'nope', 1, now(), '')`,
			fkey, "jobs_cluster_id_fkey"},
		{"a job and its listing, in either order",
			`INSERT INTO jobs (id, scan_id, cluster_id, state, create_at, detail) VALUES
				('00000000-0000-0000-0000-0000000000b3', '00000000-0000-0000-0000-0000000000a1', 'c2', 1, now(), '');
			INSERT INTO scan_jobs (scan_id, job_id, cluster_id) VALUES
				('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000b3', 'c2')`,
			"", ""},
		{"a job its scan does not list",
			`INSERT INTO jobs (id, scan_id, cluster_id, state, create_at, detail) VALUES
				('00000000-0000-0000-0000-0000000000b3', '00000000-0000-0000-0000-0000000000a1', 'c2', 1, now(), '')`,
			fkey, "jobs_scan_id_id_fkey"},
		{"a scan listing a job as of another cluster",
			`INSERT INTO scan_jobs (scan_id, job_id, cluster_id) VALUES
				('00000000-0000-0000-0000-0000000000a2', '00000000-0000-0000-0000-0000000000b1', 'c2')`,
			fkey, "scan_jobs_job_id_cluster_id_fkey"},
		{"two jobs of one cluster in a scan",
			`INSERT INTO scan_jobs (scan_id, job_id, cluster_id) VALUES
				('00000000-0000-0000-0000-0000000000a2', '00000000-0000-0000-0000-0000000000b1', 'c1')`,
			unique, "scan_jobs_scan_id_cluster_id_key"},
		{"a cluster whose latest job is another cluster's",
			`UPDATE clusters SET last_job_id = '00000000-0000-0000-0000-0000000000b2', last_job_at = now(),
				last_scan_id = '00000000-0000-0000-0000-0000000000a2' WHERE id = 'c2'`,
			fkey, "clusters_last_job_id_id_fkey"},
		{"a job of an unknown state",
			`UPDATE jobs SET state = 0 WHERE id = '00000000-0000-0000-0000-0000000000b1'`,
			check, "jobs_state_check"},
		{"an ended job with staged batches",
			`UPDATE jobs SET staged_batches = 1 WHERE id = '00000000-0000-0000-0000-0000000000b2'`,
			check, "jobs_check"},
		{"a batch stored twice",
			`INSERT INTO staged_batches (job_id, seq, findings, batch) VALUES
				('00000000-0000-0000-0000-0000000000b1', 1, 0, ''), ('00000000-0000-0000-0000-0000000000b1', 1, 0, '')`,
			unique, "staged_batches_pkey"},
		{"a batch numbered from 0",
			`INSERT INTO staged_batches (job_id, seq, findings, batch) VALUES ('00000000-0000-0000-0000-0000000000b1', 0, 0, '')`,
			check, "staged_batches_seq_check"},
		{"a set's base dropped while a set needs it",
			`INSERT INTO jobs (id, scan_id, cluster_id, state, create_at, finish_at, detail) VALUES
				('00000000-0000-0000-0000-0000000000b4', '00000000-0000-0000-0000-0000000000a1', 'c2', 4, now(), now(), '');
			INSERT INTO scan_jobs (scan_id, job_id, cluster_id) VALUES
				('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000b4', 'c2');
			INSERT INTO job_fingerprints (job_id, base_job_id, encoded) VALUES
				('00000000-0000-0000-0000-0000000000b4', '00000000-0000-0000-0000-0000000000b2', '');
			DELETE FROM job_fingerprints WHERE job_id = '00000000-0000-0000-0000-0000000000b2'`,
			fkey, "job_fingerprints_base_job_id_fkey"},
		{"two summaries of a job",
			`INSERT INTO summaries (cluster_seq, finish_at, job_id, critical, high, medium, low, info, suppressed, objects)
				SELECT seq, t, '00000000-0000-0000-0000-0000000000b2', 0, 0, 0, 0, 0, 0, 0
				FROM clusters, (VALUES (now()), (now() + interval '1 second')) AS v (t) WHERE id = 'c1'`,
			unique, "summaries_job_id_key"},
		{"a worker token without its cluster",
			`INSERT INTO tokens (hash, role, create_at) VALUES (sha256('w'), 'worker', now())`,
			check, "tokens_check"},
		{"an operator token bound to a cluster",
			`INSERT INTO tokens (hash, role, cluster_id, create_at) VALUES (sha256('o'), 'operator', 'c1', now())`,
			check, "tokens_check"},
		{"a token of an unknown role",
			`INSERT INTO tokens (hash, role, create_at) VALUES (sha256('x'), 'admin', now())`,
			check, "tokens_role_check"},
		{"a credential pending on a missing join token",
			`INSERT INTO tokens (hash, role, cluster_id, create_at, pending_join_hash) VALUES (sha256('w'), 'worker', 'c1', now(), sha256('j'))`,
			fkey, "tokens_pending_join_hash_fkey"},
		{"two tokens of one id",
			`INSERT INTO tokens (hash, id, role, tenant, create_at) VALUES
				(sha256('t1'), '01J0000000000000000000000T', 'tenant', 'acme', now()),
				(sha256('t2'), '01J0000000000000000000000T', 'tenant', 'acme', now())`,
			unique, "tokens_id_key"},
		{"two grants to a tenant",
			`INSERT INTO cluster_grants (cluster_id, position, tenant, namespaces) VALUES
				('c1', 0, 'globex', '{a}'), ('c1', 1, 'globex', '{b}')`,
			unique, "cluster_grants_cluster_id_tenant_key"},
		{"a grant of no namespace",
			`INSERT INTO cluster_grants (cluster_id, position, tenant, namespaces) VALUES ('c1', 0, 'globex', '{}')`,
			check, "cluster_grants_namespaces_check"},
		{"two notifiers of one name",
			`INSERT INTO notifiers (id, name, detail) VALUES ('00000000-0000-0000-0000-0000000000c2', 'ops', '')`,
			unique, "notifiers_name_key"},
		{"a pending delivery with no time to send it",
			`INSERT INTO deliveries (id, notifier_id, state, create_at, detail) VALUES
				('00000000-0000-0000-0000-0000000000d1', '00000000-0000-0000-0000-0000000000c1', 1, now(), '')`,
			check, "deliveries_check"},
		{"a delivered delivery still due",
			`INSERT INTO deliveries (id, notifier_id, state, create_at, next_attempt_at, detail) VALUES
				('00000000-0000-0000-0000-0000000000d1', '00000000-0000-0000-0000-0000000000c1', 2, now(), now(), '')`,
			check, "deliveries_check"},
		{"labels that are not an object",
			`UPDATE clusters SET labels = '["a"]' WHERE id = 'c1'`,
			check, "clusters_labels_check"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tx, err := db.pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			_, err = tx.Exec(ctx, tc.sql)
			if err == nil {
				_, err = tx.Exec(ctx, "SET CONSTRAINTS ALL IMMEDIATE")
			}
			var pgErr *pgconn.PgError
			switch {
			case tc.code == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.code == "":
			case !errors.As(err, &pgErr):
				t.Fatalf("error %v, want SQLSTATE %s from %s", err, tc.code, tc.constraint)
			case pgErr.Code != tc.code || pgErr.ConstraintName != tc.constraint:
				t.Fatalf("SQLSTATE %s from %q (%v), want %s from %q", pgErr.Code, pgErr.ConstraintName, err, tc.code, tc.constraint)
			}
		})
	}
}
