package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server/internal/store"
)

var clusterCases = []contractCase{
	{"clusters/create assigns seq and create time", func(t *testing.T, ctx context.Context, db Backend) {
		a := &storagev1.ClusterRecord{Id: "a", Tenant: "acme", DisplayName: "A", Labels: map[string]string{"env": "prod"}}
		b := &storagev1.ClusterRecord{Id: "b", Tenant: "acme"}
		must(t, "CreateCluster a", db.CreateCluster(ctx, a, nil, nil))
		must(t, "CreateCluster b", db.CreateCluster(ctx, b, nil, nil))
		if a.Seq == 0 || b.Seq == 0 || a.Seq == b.Seq {
			t.Fatalf("seqs %d and %d: want two different, not 0", a.Seq, b.Seq)
		}
		if a.CreateMs == 0 {
			t.Fatal("create time not set")
		}
		got, err := db.GetCluster(ctx, "a")
		must(t, "GetCluster", err)
		wantProto(t, "GetCluster", got, a)
	}},
	{"clusters/create refuses an id in use and keeps the first", func(t *testing.T, ctx context.Context, db Backend) {
		must(t, "CreateCluster", db.CreateCluster(ctx, &storagev1.ClusterRecord{Id: "a", Tenant: "acme", DisplayName: "first"}, nil, nil))
		err := db.CreateCluster(ctx, &storagev1.ClusterRecord{Id: "a", Tenant: "other", DisplayName: "second"}, nil, nil)
		wantErr(t, "second CreateCluster", err, store.ErrAlreadyExists)
		if want := `cluster "a": already exists`; err.Error() != want {
			t.Errorf("error %q, want %q", err, want)
		}
		got, err := db.GetCluster(ctx, "a")
		must(t, "GetCluster", err)
		if got.DisplayName != "first" || got.Tenant != "acme" {
			t.Fatalf("stored %v, want the first", got)
		}
	}},
	{"clusters/create stores its token in the same transaction", func(t *testing.T, ctx context.Context, db Backend) {
		tok := &storagev1.TokenRecord{Id: "01JOIN", Name: "join a", Role: "join", ClusterId: "a", ExpireMs: 1 << 42}
		must(t, "CreateCluster", db.CreateCluster(ctx, &storagev1.ClusterRecord{Id: "a", Tenant: "acme"}, hashOf("s1"), tok))
		if tok.CreateMs == 0 {
			t.Fatal("token create time not set")
		}
		got, err := db.LookupToken(ctx, hashOf("s1"))
		must(t, "LookupToken", err)
		wantProto(t, "LookupToken", got, tok)
		// A cluster refused stores no token.
		err = db.CreateCluster(ctx, &storagev1.ClusterRecord{Id: "a", Tenant: "acme"}, hashOf("s2"),
			&storagev1.TokenRecord{Id: "01JOIN2", Role: "join", ClusterId: "a"})
		wantErr(t, "second CreateCluster", err, store.ErrAlreadyExists)
		_, err = db.LookupToken(ctx, hashOf("s2"))
		wantErr(t, "LookupToken of the refused cluster's token", err, store.ErrNotFound)
		n, err := db.CountTokens(ctx)
		must(t, "CountTokens", err)
		if n != 1 {
			t.Fatalf("CountTokens %d, want 1", n)
		}
	}},
	{"clusters/get of an unknown id is not found", func(t *testing.T, ctx context.Context, db Backend) {
		_, err := db.GetCluster(ctx, "zz")
		wantErr(t, "GetCluster", err, store.ErrNotFound)
		if want := `cluster "zz": not found`; err.Error() != want {
			t.Errorf("error %q, want %q", err, want)
		}
	}},
	{"clusters/list pages in id order", func(t *testing.T, ctx context.Context, db Backend) {
		page, more, err := db.ListClusters(ctx, "", 10, nil)
		must(t, "ListClusters of none", err)
		if len(page) != 0 || more {
			t.Fatalf("empty store: %v, more %v", ids(page), more)
		}
		createClusters(t, ctx, db, "acme", "b", "a", "c")
		for _, c := range []struct {
			after string
			limit int
			want  []string
			more  bool
		}{
			{"", 2, []string{"a", "b"}, true},
			{"b", 2, []string{"c"}, false},
			{"", 3, []string{"a", "b", "c"}, false},
			{"a", 10, []string{"b", "c"}, false},
			// after need not be an id that exists.
			{"aa", 1, []string{"b"}, true},
			{"c", 2, nil, false},
			{"zz", 2, nil, false},
			// A limit of 0 returns nothing, and says more follow when any do.
			{"", 0, nil, true},
			{"c", 0, nil, false},
		} {
			page, more, err := db.ListClusters(ctx, c.after, c.limit, nil)
			must(t, "ListClusters", err)
			if !slices.Equal(ids(page), c.want) || more != c.more {
				t.Errorf("ListClusters(%q, %d) = %q, more %v; want %q, more %v", c.after, c.limit, ids(page), more, c.want, c.more)
			}
		}
	}},
	{"clusters/list orders ids by their bytes", func(t *testing.T, ctx context.Context, db Backend) {
		// As bbolt orders keys, whatever a database's collation says.
		createClusters(t, ctx, db, "acme", "b", "a", "B", "a-1", "a_1", "é")
		page, more, err := db.ListClusters(ctx, "", 10, nil)
		must(t, "ListClusters", err)
		if want := []string{"B", "a", "a-1", "a_1", "b", "é"}; !slices.Equal(ids(page), want) || more {
			t.Fatalf("ListClusters = %q, more %v; want %q", ids(page), more, want)
		}
		page, _, err = db.ListClusters(ctx, "B", 1, nil)
		must(t, "ListClusters", err)
		wantIDs(t, "ListClusters after B", page, "a")
	}},
	{"clusters/list keeps what keep selects; the limit counts those", func(t *testing.T, ctx context.Context, db Backend) {
		createClusters(t, ctx, db, "acme", "a", "c", "e")
		createClusters(t, ctx, db, "other", "b", "d", "f")
		acme := func(c *storagev1.ClusterRecord) bool { return c.Tenant == "acme" }
		page, more, err := db.ListClusters(ctx, "", 2, acme)
		must(t, "ListClusters", err)
		if !slices.Equal(ids(page), []string{"a", "c"}) || !more {
			t.Fatalf("first page %q, more %v; want [a c], more", ids(page), more)
		}
		page, more, err = db.ListClusters(ctx, "c", 2, acme)
		must(t, "ListClusters", err)
		// f follows e but is not kept: no more.
		if !slices.Equal(ids(page), []string{"e"}) || more {
			t.Fatalf("second page %q, more %v; want [e], no more", ids(page), more)
		}
	}},
	{"clusters/update changes under one transaction", func(t *testing.T, ctx context.Context, db Backend) {
		c := &storagev1.ClusterRecord{Id: "a", Tenant: "acme", Labels: map[string]string{"env": "dev"}}
		must(t, "CreateCluster", db.CreateCluster(ctx, c, nil, nil))
		got, err := db.UpdateCluster(ctx, "a", func(c *storagev1.ClusterRecord) error {
			c.DisplayName = "renamed"
			c.Labels = map[string]string{"env": "prod", "team": "x"}
			c.NamespaceGrants = []*fleetscanv1.NamespaceGrant{
				{Tenant: "beta", Namespaces: []string{"shared", "tools"}},
				{Tenant: "alpha", Namespaces: []string{"shared"}},
			}
			return nil
		})
		must(t, "UpdateCluster", err)
		want := clone(c)
		want.DisplayName, want.Labels = "renamed", map[string]string{"env": "prod", "team": "x"}
		want.NamespaceGrants = []*fleetscanv1.NamespaceGrant{
			{Tenant: "beta", Namespaces: []string{"shared", "tools"}},
			{Tenant: "alpha", Namespaces: []string{"shared"}},
		}
		wantProto(t, "UpdateCluster's result", got, want)
		stored, err := db.GetCluster(ctx, "a")
		must(t, "GetCluster", err)
		wantProto(t, "GetCluster after UpdateCluster", stored, want)
		// Grants can be taken away again.
		_, err = db.UpdateCluster(ctx, "a", func(c *storagev1.ClusterRecord) error { c.NamespaceGrants = nil; return nil })
		must(t, "UpdateCluster", err)
		stored, err = db.GetCluster(ctx, "a")
		must(t, "GetCluster", err)
		if len(stored.NamespaceGrants) != 0 {
			t.Fatalf("grants %v after removing them", stored.NamespaceGrants)
		}
	}},
	{"clusters/update returns change's error and stores nothing", func(t *testing.T, ctx context.Context, db Backend) {
		must(t, "CreateCluster", db.CreateCluster(ctx, &storagev1.ClusterRecord{Id: "a", Tenant: "acme", DisplayName: "kept"}, nil, nil))
		refused := errors.New("refused by change")
		_, err := db.UpdateCluster(ctx, "a", func(c *storagev1.ClusterRecord) error {
			c.DisplayName = "lost"
			return refused
		})
		wantErr(t, "UpdateCluster", err, refused)
		got, err := db.GetCluster(ctx, "a")
		must(t, "GetCluster", err)
		if got.DisplayName != "kept" {
			t.Fatalf("display name %q, want kept", got.DisplayName)
		}
		_, err = db.UpdateCluster(ctx, "zz", func(*storagev1.ClusterRecord) error { return nil })
		wantErr(t, "UpdateCluster of an unknown id", err, store.ErrNotFound)
		if want := `cluster "zz": not found`; err.Error() != want {
			t.Errorf("error %q, want %q", err, want)
		}
	}},
	{"clusters/concurrent updates all apply", func(t *testing.T, ctx context.Context, db Backend) {
		must(t, "CreateCluster", db.CreateCluster(ctx, &storagev1.ClusterRecord{Id: "a", Tenant: "acme"}, nil, nil))
		// Each update adds one label to what it read: an update that read
		// before another committed and wrote after it would lose a label.
		const n = 8
		errs := make(chan error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := db.UpdateCluster(ctx, "a", func(c *storagev1.ClusterRecord) error {
					if c.Labels == nil {
						c.Labels = map[string]string{}
					}
					c.Labels[fmt.Sprintf("l%d", i)] = "x"
					return nil
				})
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			must(t, "UpdateCluster", err)
		}
		got, err := db.GetCluster(ctx, "a")
		must(t, "GetCluster", err)
		if len(got.Labels) != n {
			t.Fatalf("labels %v: want %d, one per update", got.Labels, n)
		}
	}},
	{"clusters/record worker keeps versions it is not given", func(t *testing.T, ctx context.Context, db Backend) {
		must(t, "CreateCluster", db.CreateCluster(ctx, &storagev1.ClusterRecord{Id: "a", Tenant: "acme"}, nil, nil))
		at := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
		must(t, "RecordWorker", db.RecordWorker(ctx, "a", "v1.2.0", "v1.31.0", at))
		must(t, "RecordWorker", db.RecordWorker(ctx, "a", "", "", at.Add(time.Minute)))
		got, err := db.GetCluster(ctx, "a")
		must(t, "GetCluster", err)
		if got.LastSeenMs != at.Add(time.Minute).UnixMilli() || got.WorkerVersion != "v1.2.0" || got.KubernetesVersion != "v1.31.0" {
			t.Fatalf("after RecordWorker: seen %d, worker %q, kubernetes %q", got.LastSeenMs, got.WorkerVersion, got.KubernetesVersion)
		}
		must(t, "RecordWorker", db.RecordWorker(ctx, "a", "v1.3.0", "", at.Add(2*time.Minute)))
		got, err = db.GetCluster(ctx, "a")
		must(t, "GetCluster", err)
		if got.WorkerVersion != "v1.3.0" || got.KubernetesVersion != "v1.31.0" {
			t.Fatalf("after an upgrade: worker %q, kubernetes %q", got.WorkerVersion, got.KubernetesVersion)
		}
		err = db.RecordWorker(ctx, "zz", "v1", "v1", at)
		wantErr(t, "RecordWorker of an unknown id", err, store.ErrNotFound)
	}},
}
