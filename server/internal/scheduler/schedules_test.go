package scheduler

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server/internal/store"
)

func TestNewScheduleValidates(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 30, 0, 0, time.UTC)
	all := &fleetscanv1.ScanTarget{AllClusters: true}
	for _, tt := range []struct {
		req  *fleetscanv1.CreateScheduleRequest
		want string
	}{
		{&fleetscanv1.CreateScheduleRequest{Cron: "every day", Target: all}, "cron"},
		{&fleetscanv1.CreateScheduleRequest{Cron: "0 3 * * *", Target: all, Jitter: durationpb.New(2 * time.Hour)}, "jitter"},
		{&fleetscanv1.CreateScheduleRequest{Cron: "0 3 * * *"}, "target"},
		{&fleetscanv1.CreateScheduleRequest{Cron: "0 3 * * *", Target: all, Spec: &fleetscanv1.ScanSpec{IncludeChecks: []string{"NOPE-1"}}}, "NOPE-1"},
	} {
		if _, err := NewSchedule(tt.req, now); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: got %v, want an error about %s", tt.req, err, tt.want)
		}
	}
	sc, err := NewSchedule(&fleetscanv1.CreateScheduleRequest{Cron: "0 3 * * *", Target: all, Jitter: durationpb.New(10 * time.Minute)}, now)
	if err != nil {
		t.Fatal(err)
	}
	next := sc.NextRunTime.AsTime()
	if first := time.Date(2026, 11, 28, 3, 0, 0, 0, time.UTC); next.Before(first) || !next.Before(first.Add(10*time.Minute)) {
		t.Errorf("first run %v, want 2026-11-28 03:00 + up to 10m of jitter", next)
	}
	if sc.MissedRunPolicy != fleetscanv1.MissedRunPolicy_MISSED_RUN_POLICY_RUN_ONCE {
		t.Errorf("default missed-run policy %v", sc.MissedRunPolicy)
	}
}

// TestRunDue: a due schedule starts one scan and moves to its next time; a
// run missed during an outage runs once or is skipped by policy.
func TestRunDue(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	if err := db.CreateCluster(ctx, &storagev1.ClusterRecord{Id: "c1", Tenant: "t"}, nil, nil); err != nil {
		t.Fatal(err)
	}
	s := New(db, Limits{})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	now := time.Date(2026, 11, 27, 3, 0, 30, 0, time.UTC)
	mk := func(due time.Time, policy fleetscanv1.MissedRunPolicy) string {
		sc := &fleetscanv1.Schedule{Cron: "0 3 * * *", Target: &fleetscanv1.ScanTarget{AllClusters: true}, Spec: &fleetscanv1.ScanSpec{},
			Jitter: durationpb.New(0), MissedRunPolicy: policy, NextRunTime: timestamppb.New(due)}
		if err := db.CreateSchedule(ctx, sc); err != nil {
			t.Fatal(err)
		}
		return sc.Id
	}
	onTime := mk(now.Add(-30*time.Second), fleetscanv1.MissedRunPolicy_MISSED_RUN_POLICY_SKIP)
	missedRun := mk(now.Add(-72*time.Hour), fleetscanv1.MissedRunPolicy_MISSED_RUN_POLICY_RUN_ONCE)
	missedSkip := mk(now.Add(-72*time.Hour), fleetscanv1.MissedRunPolicy_MISSED_RUN_POLICY_SKIP)
	future := mk(now.Add(time.Hour), fleetscanv1.MissedRunPolicy_MISSED_RUN_POLICY_RUN_ONCE)
	if err := s.RunDue(ctx, db, now, time.Minute, log); err != nil {
		t.Fatal(err)
	}
	list, _, err := db.ListSchedules(ctx, [16]byte{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]*fleetscanv1.Schedule{}
	for _, sc := range list {
		byID[sc.Id] = sc
	}
	tomorrow := time.Date(2026, 11, 28, 3, 0, 0, 0, time.UTC)
	for id, wantRun := range map[string]bool{onTime: true, missedRun: true, missedSkip: false, future: false} {
		sc := byID[id]
		if ran := sc.LastScanId != ""; ran != wantRun {
			t.Errorf("schedule due %v policy %v: ran %v, want %v", sc.NextRunTime.AsTime(), sc.MissedRunPolicy, ran, wantRun)
		}
		if id != future && !sc.NextRunTime.AsTime().Equal(tomorrow) {
			t.Errorf("next run %v, want %v (one run per outage, then the schedule)", sc.NextRunTime.AsTime(), tomorrow)
		}
	}
	scans, _, err := db.ListScans(ctx, [16]byte{}, 10)
	if err != nil || len(scans) != 2 {
		t.Errorf("%d scans started, want 2: %v", len(scans), err)
	}
}
