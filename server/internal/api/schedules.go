package api

import (
	"context"
	"time"

	"github.com/oklog/ulid/v2"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server/internal/auth"
	"github.com/fleetscan/fleetscan/server/internal/scheduler"
	"github.com/fleetscan/fleetscan/server/internal/store"
)

// ScheduleStore is what the schedule RPCs need of the store.
type ScheduleStore interface {
	CreateSchedule(ctx context.Context, sc *fleetscanv1.Schedule) error
	ListSchedules(ctx context.Context, after ulid.ULID, limit int) ([]*fleetscanv1.Schedule, bool, error)
	DeleteSchedule(ctx context.Context, id ulid.ULID) error
}

// CreateSchedule validates and stores a schedule.
func (s *ScanServer) CreateSchedule(ctx context.Context, req *fleetscanv1.CreateScheduleRequest) (*fleetscanv1.CreateScheduleResponse, error) {
	sc, err := scheduler.NewSchedule(req, time.Now())
	if err != nil {
		return nil, toStatus(s.log, "CreateSchedule", err)
	}
	if err := s.schedules.CreateSchedule(ctx, sc); err != nil {
		return nil, toStatus(s.log, "CreateSchedule", err)
	}
	p, _ := auth.FromContext(ctx)
	s.log.Info("schedule created", "schedule", sc.Id, "cron", sc.Cron, "by", p.Name)
	return &fleetscanv1.CreateScheduleResponse{Schedule: sc}, nil
}

// ListSchedules pages through schedules.
func (s *ScanServer) ListSchedules(ctx context.Context, req *fleetscanv1.ListSchedulesRequest) (*fleetscanv1.ListSchedulesResponse, error) {
	size, err := pageSize(req.PageSize, defaultPageSize, maxPageSize)
	if err != nil {
		return nil, toStatus(s.log, "ListSchedules", err)
	}
	p, _ := auth.FromContext(ctx)
	bind := s.pages.bind(p, "ListSchedules")
	after, err := decodePageToken(req.PageToken, bind)
	if err != nil {
		return nil, toStatus(s.log, "ListSchedules", err)
	}
	var from ulid.ULID
	if after != nil {
		if len(after) != len(from) {
			return nil, toStatus(s.log, "ListSchedules", invalid("page_token: malformed"))
		}
		copy(from[:], after)
	}
	list, more, err := s.schedules.ListSchedules(ctx, from, size)
	if err != nil {
		return nil, toStatus(s.log, "ListSchedules", err)
	}
	resp := &fleetscanv1.ListSchedulesResponse{Schedules: list}
	if more {
		last, _ := ulid.Parse(list[len(list)-1].Id)
		resp.NextPageToken = encodePageToken(last[:], bind)
	}
	return resp, nil
}

// DeleteSchedule removes a schedule.
func (s *ScanServer) DeleteSchedule(ctx context.Context, req *fleetscanv1.DeleteScheduleRequest) (*fleetscanv1.DeleteScheduleResponse, error) {
	if req.ScheduleId == "" {
		return nil, toStatus(s.log, "DeleteSchedule", invalid("schedule_id: required"))
	}
	id, err := store.ParseID(req.ScheduleId)
	if err != nil {
		return nil, toStatus(s.log, "DeleteSchedule", err)
	}
	if err := s.schedules.DeleteSchedule(ctx, id); err != nil {
		return nil, toStatus(s.log, "DeleteSchedule", err)
	}
	return &fleetscanv1.DeleteScheduleResponse{}, nil
}
