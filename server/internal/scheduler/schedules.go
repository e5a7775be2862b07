package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/robfig/cron/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server/internal/store"
	"github.com/fleetscan/fleetscan/worker/policy"
)

// MaxJitter bounds a schedule's random delay.
const MaxJitter = time.Hour

// ScheduleStore is what schedules need of the store.
type ScheduleStore interface {
	CreateSchedule(ctx context.Context, sc *fleetscanv1.Schedule) error
	ListSchedules(ctx context.Context, after ulid.ULID, limit int) ([]*fleetscanv1.Schedule, bool, error)
	UpdateSchedule(ctx context.Context, id string, change func(*fleetscanv1.Schedule)) error
}

// cronParser reads standard five-field expressions and @descriptors.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// NewSchedule validates a schedule request and returns the schedule to
// store, with its first run time after now.
func NewSchedule(req *fleetscanv1.CreateScheduleRequest, now time.Time) (*fleetscanv1.Schedule, error) {
	sched, err := cronParser.Parse(req.Cron)
	if err != nil {
		return nil, fmt.Errorf("%w: cron %q: %v", ErrInvalid, req.Cron, err)
	}
	jitter := req.Jitter.AsDuration()
	if jitter < 0 || jitter > MaxJitter {
		return nil, fmt.Errorf("%w: jitter: must be between 0 and %v", ErrInvalid, MaxJitter)
	}
	if err := validateTarget(req.Target); err != nil {
		return nil, err
	}
	spec := req.Spec
	if spec == nil {
		spec = &fleetscanv1.ScanSpec{}
	}
	if err := (policy.Selection{Include: spec.IncludeChecks, Exclude: spec.ExcludeChecks, Custom: spec.CustomChecks}).Validate(); err != nil {
		return nil, fmt.Errorf("%w: spec: %w", ErrInvalid, err)
	}
	policy := req.MissedRunPolicy
	if policy == fleetscanv1.MissedRunPolicy_MISSED_RUN_POLICY_UNSPECIFIED {
		policy = fleetscanv1.MissedRunPolicy_MISSED_RUN_POLICY_RUN_ONCE
	}
	return &fleetscanv1.Schedule{
		Cron: req.Cron, Target: req.Target, Spec: spec, Jitter: durationpb.New(jitter), MissedRunPolicy: policy,
		NextRunTime: timestamppb.New(nextRun(sched, now, jitter)),
	}, nil
}

func nextRun(sched cron.Schedule, after time.Time, jitter time.Duration) time.Time {
	t := sched.Next(after.UTC())
	if jitter > 0 {
		t = t.Add(rand.N(jitter))
	}
	return t
}

// RunDue starts the scans of the schedules that are due at now. A run that
// was missed by more than grace (the server was down) is run once or
// skipped, as the schedule's policy says; either way the next run is the
// next cron time after now, so a long outage starts at most one scan.
func (s *Scheduler) RunDue(ctx context.Context, st ScheduleStore, now time.Time, grace time.Duration, log *slog.Logger) error {
	var after ulid.ULID
	for {
		page, more, err := st.ListSchedules(ctx, after, 100)
		if err != nil {
			return err
		}
		for _, sc := range page {
			if due := sc.NextRunTime.AsTime(); due.After(now) {
				continue
			}
			missed := now.Sub(sc.NextRunTime.AsTime()) > grace
			run := !missed || sc.MissedRunPolicy != fleetscanv1.MissedRunPolicy_MISSED_RUN_POLICY_SKIP
			var scanID, runErr string
			if run {
				scan, err := s.StartScan(ctx, sc.Target, sc.Spec)
				if err != nil {
					runErr = err.Error()
					log.Warn("scheduled scan did not start", "schedule", sc.Id, "err", err)
				} else {
					scanID = scan.ID.String()
					log.Info("scheduled scan started", "schedule", sc.Id, "scan", scanID, "clusters", len(scan.Jobs), "missed", missed)
				}
			} else {
				log.Info("skipped a run missed while the server was down", "schedule", sc.Id, "was_due", sc.NextRunTime.AsTime())
			}
			parsed, err := cronParser.Parse(sc.Cron)
			if err != nil {
				return fmt.Errorf("schedule %s: stored cron %q: %w", sc.Id, sc.Cron, err)
			}
			next := nextRun(parsed, now, sc.Jitter.AsDuration())
			err = st.UpdateSchedule(ctx, sc.Id, func(u *fleetscanv1.Schedule) {
				u.NextRunTime = timestamppb.New(next)
				if run {
					u.LastRunTime, u.LastScanId, u.LastError = timestamppb.New(now), scanID, runErr
				}
			})
			if err != nil && !errors.Is(err, store.ErrNotFound) { // deleted meanwhile
				return err
			}
		}
		if !more {
			return nil
		}
		after, _ = ulid.Parse(page[len(page)-1].Id)
	}
}

// Loop runs due schedules and ends overdue jobs every tick until ctx
// ends.
func (s *Scheduler) Loop(ctx context.Context, st ScheduleStore, tick time.Duration, log *slog.Logger) {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		if err := s.RunDue(ctx, st, time.Now(), 2*tick, log); err != nil && ctx.Err() == nil {
			log.Error("schedules", "err", err)
		}
		if err := s.Reap(ctx); err != nil && ctx.Err() == nil {
			log.Error("job timeouts", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
