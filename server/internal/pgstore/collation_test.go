package pgstore

import (
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/fleetscan/fleetscan/internal/pgtest"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
)

// TestClusterOrderIgnoresCollation shows that clusters page in the byte
// order of their ids, as in bbolt, in a database whose collation orders
// text otherwise (ICU's root locale: "a" before "B"). The contract runs on
// the harness's databases, whose collation is C, where the two agree.
func TestClusterOrderIgnoresCollation(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	srv := pgtest.Shared(t)
	admin, err := pgx.Connect(ctx, srv.CreateDatabase(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close(testContext(t)) })
	const name = "icu_order"
	if _, err := admin.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()+
		` TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'und' LOCALE 'C'`); err != nil {
		t.Fatalf("create a database with an ICU collation: %v", err)
	}
	t.Cleanup(func() {
		ctx := testContext(t)
		if _, err := admin.Exec(ctx, `DROP DATABASE `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	db, err := Open(ctx, srv.DSN(name), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var before bool
	if err := db.pool.QueryRow(ctx, `SELECT 'a' < 'B'`).Scan(&before); err != nil || !before {
		t.Fatalf("the database's collation: 'a' < 'B' is %v (%v); the test needs one that is not byte order", before, err)
	}
	for _, id := range []string{"b", "a", "B", "a-1", "a_1"} {
		if err := db.CreateCluster(ctx, &storagev1.ClusterRecord{Id: id, Tenant: "acme"}, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	page, more, err := db.ListClusters(ctx, "B", 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range page {
		got = append(got, c.Id)
	}
	if want := []string{"a", "a-1", "a_1", "b"}; !slices.Equal(got, want) || more {
		t.Fatalf("ListClusters after B = %q, more %v; want %q", got, more, want)
	}
}
