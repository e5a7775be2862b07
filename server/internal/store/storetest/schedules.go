package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server/internal/store"
)

// schedule is one as scheduler.NewSchedule makes it: its next run has
// the nanoseconds of its jitter.
func schedule(cron string) *fleetscanv1.Schedule {
	return &fleetscanv1.Schedule{
		Cron:            cron,
		Target:          &fleetscanv1.ScanTarget{ClusterIds: []string{"prod", "staging"}},
		Spec:            &fleetscanv1.ScanSpec{ExcludeChecks: []string{"KSV001"}},
		Jitter:          durationpb.New(5 * time.Minute),
		MissedRunPolicy: fleetscanv1.MissedRunPolicy_MISSED_RUN_POLICY_RUN_ONCE,
		NextRunTime:     timestamppb.New(time.Unix(1_700_000_000, 123_456_789)),
	}
}

var scheduleCases = []contractCase{
	{"schedules/create assigns an id and the create time; list in id order, in pages", func(t *testing.T, ctx context.Context, db Backend) {
		start := time.Now()
		var made []*fleetscanv1.Schedule
		for _, c := range []string{"@daily", "0 3 * * *", "@hourly"} {
			sc := schedule(c)
			must(t, "CreateSchedule", db.CreateSchedule(ctx, sc))
			if _, err := ulid.ParseStrict(sc.Id); err != nil {
				t.Fatalf("CreateSchedule's id %q: %v", sc.Id, err)
			}
			if ct := sc.CreateTime.AsTime(); ct.Before(start) || ct.After(time.Now()) {
				t.Fatalf("CreateSchedule's create time %v, not between %v and now", ct, start)
			}
			made = append(made, clone(sc))
		}
		all, more, err := db.ListSchedules(ctx, ulid.ULID{}, 10)
		must(t, "ListSchedules", err)
		if more || len(all) != 3 {
			t.Fatalf("ListSchedules: %d, more %v", len(all), more)
		}
		for i, sc := range all {
			// Exactly, nanoseconds included.
			wantProto(t, "ListSchedules", sc, made[i])
		}
		id := func(i int) ulid.ULID { return ulid.MustParseStrict(made[i].Id) }
		page := func(after ulid.ULID, limit int, wantMore bool, want ...*fleetscanv1.Schedule) {
			t.Helper()
			got, more, err := db.ListSchedules(ctx, after, limit)
			must(t, "ListSchedules", err)
			if g, w := ids(got), ids(want); !slices.Equal(g, w) || more != wantMore {
				t.Fatalf("ListSchedules(%s, %d): %q, more %v; want %q, %v", after, limit, g, more, w, wantMore)
			}
		}
		page(ulid.ULID{}, 3, false, made...)
		page(ulid.ULID{}, 2, true, made[0], made[1])
		page(id(1), 2, false, made[2])
		page(id(0), 1, true, made[1])
		page(id(2), 10, false)
		page(ulid.ULID{}, 0, true)
	}},
	{"schedules/update applies change; delete; a missing or malformed id", func(t *testing.T, ctx context.Context, db Backend) {
		a, b := schedule("@daily"), schedule("@hourly")
		must(t, "CreateSchedule", db.CreateSchedule(ctx, a))
		must(t, "CreateSchedule", db.CreateSchedule(ctx, b))
		ran := time.Unix(1_700_000_300, 987_654_321)
		must(t, "UpdateSchedule", db.UpdateSchedule(ctx, a.Id, func(sc *fleetscanv1.Schedule) {
			sc.LastRunTime, sc.LastScanId, sc.LastError = timestamppb.New(ran), "01JF00000000000000000SCAN0", ""
			sc.NextRunTime = timestamppb.New(ran.Add(24 * time.Hour))
		}))
		want := clone(a)
		want.LastRunTime, want.LastScanId, want.NextRunTime = timestamppb.New(ran), "01JF00000000000000000SCAN0", timestamppb.New(ran.Add(24*time.Hour))
		all, _, err := db.ListSchedules(ctx, ulid.ULID{}, 10)
		must(t, "ListSchedules", err)
		if len(all) != 2 {
			t.Fatalf("ListSchedules: %q", ids(all))
		}
		wantProto(t, "the updated schedule", all[0], want)
		wantProto(t, "the other schedule", all[1], b)

		bID := ulid.MustParseStrict(b.Id)
		must(t, "DeleteSchedule", db.DeleteSchedule(ctx, bID))
		all, _, err = db.ListSchedules(ctx, ulid.ULID{}, 10)
		must(t, "ListSchedules", err)
		if g := ids(all); !slices.Equal(g, []string{a.Id}) {
			t.Fatalf("ListSchedules after delete: %q", g)
		}
		err = db.DeleteSchedule(ctx, bID)
		wantErr(t, "DeleteSchedule again", err, store.ErrNotFound)
		if want := "schedule " + b.Id + ": not found"; err.Error() != want {
			t.Errorf("error %q, want %q", err, want)
		}
		called := false
		err = db.UpdateSchedule(ctx, b.Id, func(*fleetscanv1.Schedule) { called = true })
		wantErr(t, "UpdateSchedule of a deleted schedule", err, store.ErrNotFound)
		if want := "schedule " + b.Id + ": not found"; err.Error() != want {
			t.Errorf("error %q, want %q", err, want)
		}
		err = db.UpdateSchedule(ctx, "not-an-id", func(*fleetscanv1.Schedule) { called = true })
		wantErr(t, "UpdateSchedule of a malformed id", err, store.ErrInvalidID)
		if called {
			t.Error("UpdateSchedule called change without a schedule")
		}
	}},
}
