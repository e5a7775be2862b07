package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"time"

	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"k8s.io/apimachinery/pkg/util/validation"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server/internal/auth"
	"github.com/fleetscan/fleetscan/server/internal/notify"
	"github.com/fleetscan/fleetscan/server/internal/store"
)

// NotifierStore is what NotifierServer needs of the store.
type NotifierStore interface {
	CreateNotifier(ctx context.Context, n *storagev1.NotifierRecord) (*storagev1.NotifierRecord, error)
	ListNotifiers(ctx context.Context, keep func(*storagev1.NotifierRecord) bool) ([]*storagev1.NotifierRecord, error)
	GetNotifier(ctx context.Context, id string) (*storagev1.NotifierRecord, error)
	DeleteNotifier(ctx context.Context, id string, keep func(*storagev1.NotifierRecord) bool) (int, error)
	AddDeliveries(ctx context.Context, once string, out []store.Outgoing) (bool, error)
	ListDeliveries(ctx context.Context, f store.DeliveryFilter, before []byte, limit int) ([]store.Delivery, []byte, error)
}

// Sender makes one attempt to deliver an event.
type Sender interface {
	Send(ctx context.Context, n *storagev1.NotifierRecord, id string, event []byte) notify.Result
}

// NotifierServer implements fleetscan.v1.NotifierService.
type NotifierServer struct {
	fleetscanv1.UnimplementedNotifierServiceServer
	store   NotifierStore
	sender  Sender
	builder notify.Builder
	log     *slog.Logger
	pages   *PageTokens
}

// NewNotifierServer returns the NotifierService handlers.
func NewNotifierServer(s NotifierStore, sender Sender, b notify.Builder, log *slog.Logger, pages *PageTokens) *NotifierServer {
	return &NotifierServer{store: s, sender: sender, builder: b, log: log, pages: pages}
}

// maxNotifiers bounds the notifiers of the server: each is read at every
// job's commit.
const maxNotifiers = 100

// CreateNotifier validates and stores a notifier.
func (s *NotifierServer) CreateNotifier(ctx context.Context, req *fleetscanv1.CreateNotifierRequest) (*fleetscanv1.CreateNotifierResponse, error) {
	p, _ := auth.FromContext(ctx)
	n := req.GetNotifier()
	if n == nil {
		return nil, toStatus(s.log, "CreateNotifier", invalid("notifier: required"))
	}
	rec, err := s.validate(p, n)
	if err != nil {
		return nil, toStatus(s.log, "CreateNotifier", err)
	}
	existing, err := s.store.ListNotifiers(ctx, nil)
	if err != nil {
		return nil, toStatus(s.log, "CreateNotifier", err)
	}
	if len(existing) >= maxNotifiers {
		return nil, toStatus(s.log, "CreateNotifier", fmt.Errorf("%w: the server has %d notifiers, its limit", errResourceExhausted, maxNotifiers))
	}
	var secret string
	if rec.Kind == fleetscanv1.NotifierKind_NOTIFIER_KIND_WEBHOOK {
		rec.Secret, secret = notify.NewSecret()
	}
	rec.CreatedBy, rec.CreateMs = p.Name, s.builder.Now().UnixMilli()
	stored, err := s.store.CreateNotifier(ctx, rec)
	if err != nil {
		return nil, toStatus(s.log, "CreateNotifier", err)
	}
	s.log.Info("notifier created", "notifier", stored.Id, "name", stored.Name, "by", p.Name, "tenant", stored.Tenant)
	return &fleetscanv1.CreateNotifierResponse{Notifier: notifierToProto(stored), Secret: secret}, nil
}

func (s *NotifierServer) validate(p auth.Principal, n *fleetscanv1.Notifier) (*storagev1.NotifierRecord, error) {
	if len(validation.IsDNS1123Label(n.Name)) > 0 {
		return nil, invalid("notifier.name %q: a DNS label (lower case letters, digits and '-', at most 63)", n.Name)
	}
	switch n.Kind {
	case fleetscanv1.NotifierKind_NOTIFIER_KIND_WEBHOOK, fleetscanv1.NotifierKind_NOTIFIER_KIND_SLACK:
	default:
		return nil, invalid("notifier.kind: WEBHOOK or SLACK")
	}
	if err := notify.CheckURL(n.Url, !p.IsOperator()); err != nil {
		return nil, invalid("notifier.url: %v", err)
	}
	rec := &storagev1.NotifierRecord{Name: n.Name, Kind: n.Kind, Url: n.Url, Tenant: n.Tenant, MinSeverity: n.MinSeverity, ScoreDrop: n.ScoreDrop}
	if !p.IsOperator() {
		if n.Tenant != "" && n.Tenant != p.Tenant {
			return nil, invalid("notifier.tenant: a tenant's notifiers hear of its own clusters; leave it empty or give %q", p.Tenant)
		}
		rec.Tenant, rec.OwnerTenant = p.Tenant, p.Tenant
	} else if n.Tenant != "" && len(validation.IsDNS1123Label(n.Tenant)) > 0 {
		return nil, invalid("notifier.tenant %q: not a DNS label", n.Tenant)
	}
	seen := map[fleetscanv1.EventType]bool{}
	for _, e := range n.Events {
		if notify.CEType(e) == "" || e == fleetscanv1.EventType_EVENT_TYPE_TEST {
			return nil, invalid("notifier.events: %v is not an event a notifier can want", e)
		}
		if !seen[e] {
			seen[e] = true
			rec.Events = append(rec.Events, e)
		}
	}
	slices.Sort(rec.Events)
	if _, ok := fleetscanv1.Severity_name[int32(n.MinSeverity)]; !ok {
		return nil, invalid("notifier.min_severity: unknown value %d", n.MinSeverity)
	}
	if rec.MinSeverity == fleetscanv1.Severity_SEVERITY_UNSPECIFIED {
		rec.MinSeverity = notify.DefaultMinSeverity
	}
	switch {
	case n.ScoreDrop == 0:
		rec.ScoreDrop = notify.DefaultScoreDrop
	case n.ScoreDrop < 1 || n.ScoreDrop > 100:
		return nil, invalid("notifier.score_drop: 1 to 100 points")
	}
	offline, err := durationField("notifier.offline_after", n.OfflineAfter, notify.DefaultOfflineAfter, time.Minute, 30*24*time.Hour)
	if err != nil {
		return nil, err
	}
	warning, err := durationField("notifier.expiry_warning", n.ExpiryWarning, notify.DefaultExpiryWarning, time.Hour, 90*24*time.Hour)
	if err != nil {
		return nil, err
	}
	rec.OfflineAfterMs, rec.ExpiryWarningMs = offline.Milliseconds(), warning.Milliseconds()
	return rec, nil
}

func durationField(name string, d *durationpb.Duration, def, least, most time.Duration) (time.Duration, error) {
	if d == nil {
		return def, nil
	}
	if err := d.CheckValid(); err != nil {
		return 0, invalid("%s: %v", name, err)
	}
	v := d.AsDuration()
	if v < least || v > most {
		return 0, invalid("%s: %v to %v", name, least, most)
	}
	return v, nil
}

// sees keeps the notifiers a caller may see and change: all for an
// operator, a tenant's own for a tenant.
func sees(p auth.Principal) func(*storagev1.NotifierRecord) bool {
	return func(n *storagev1.NotifierRecord) bool { return p.IsOperator() || n.OwnerTenant == p.Tenant }
}

// ListNotifiers lists the notifiers the caller may see.
func (s *NotifierServer) ListNotifiers(ctx context.Context, _ *fleetscanv1.ListNotifiersRequest) (*fleetscanv1.ListNotifiersResponse, error) {
	p, _ := auth.FromContext(ctx)
	list, err := s.store.ListNotifiers(ctx, sees(p))
	if err != nil {
		return nil, toStatus(s.log, "ListNotifiers", err)
	}
	resp := &fleetscanv1.ListNotifiersResponse{}
	for _, n := range list {
		resp.Notifiers = append(resp.Notifiers, notifierToProto(n))
	}
	return resp, nil
}

// DeleteNotifier removes a notifier the caller may change.
func (s *NotifierServer) DeleteNotifier(ctx context.Context, req *fleetscanv1.DeleteNotifierRequest) (*fleetscanv1.DeleteNotifierResponse, error) {
	p, _ := auth.FromContext(ctx)
	n, err := s.store.DeleteNotifier(ctx, req.NotifierId, sees(p))
	if err != nil {
		return nil, toStatus(s.log, "DeleteNotifier", err)
	}
	s.log.Info("notifier deleted", "notifier", req.NotifierId, "by", p.Name, "abandoned_deliveries", n)
	return &fleetscanv1.DeleteNotifierResponse{AbandonedDeliveries: int32(n)}, nil
}

// TestNotifier sends a test event at once and records how it went.
func (s *NotifierServer) TestNotifier(ctx context.Context, req *fleetscanv1.TestNotifierRequest) (*fleetscanv1.TestNotifierResponse, error) {
	p, _ := auth.FromContext(ctx)
	n, err := s.store.GetNotifier(ctx, req.NotifierId)
	if err == nil && !sees(p)(n) {
		err = fmt.Errorf("notifier %q: %w", req.NotifierId, store.ErrNotFound)
	}
	if err != nil {
		return nil, toStatus(s.log, "TestNotifier", err)
	}
	out := s.builder.Test(n)
	r := s.sender.Send(ctx, n, out.ID.String(), out.Record.Event)
	notify.Record(out.Record, notify.Result{Status: r.Status, Err: r.Err, Permanent: true}, s.builder.Now(), 0, nil)
	if _, err := s.store.AddDeliveries(ctx, "", []store.Outgoing{out}); err != nil {
		return nil, toStatus(s.log, "TestNotifier", err)
	}
	return &fleetscanv1.TestNotifierResponse{Delivery: deliveryToProto(out.ID, out.Record)}, nil
}

const (
	defaultDeliveryPage = 100
	maxDeliveryPage     = 1000
)

// ListDeliveries lists the deliveries of the notifiers the caller may
// see, newest first.
func (s *NotifierServer) ListDeliveries(ctx context.Context, req *fleetscanv1.ListDeliveriesRequest) (*fleetscanv1.ListDeliveriesResponse, error) {
	p, _ := auth.FromContext(ctx)
	if _, ok := fleetscanv1.DeliveryState_name[int32(req.State)]; !ok {
		return nil, toStatus(s.log, "ListDeliveries", invalid("state: unknown value %d", req.State))
	}
	size := int(req.PageSize)
	switch {
	case size < 0:
		return nil, toStatus(s.log, "ListDeliveries", invalid("page_size: must not be negative"))
	case size == 0:
		size = defaultDeliveryPage
	case size > maxDeliveryPage:
		size = maxDeliveryPage
	}
	bind := s.pages.bind(p, "ListDeliveries", req.NotifierId, req.State.String())
	before, err := decodePageToken(req.PageToken, bind)
	if err != nil {
		return nil, toStatus(s.log, "ListDeliveries", err)
	}
	f := store.DeliveryFilter{State: req.State}
	if !p.IsOperator() || req.NotifierId != "" {
		mine, err := s.store.ListNotifiers(ctx, sees(p))
		if err != nil {
			return nil, toStatus(s.log, "ListDeliveries", err)
		}
		f.Notifiers = map[string]bool{}
		for _, n := range mine {
			if req.NotifierId == "" || n.Id == req.NotifierId {
				f.Notifiers[n.Id] = true
			}
		}
		if req.NotifierId != "" && len(f.Notifiers) == 0 {
			return nil, toStatus(s.log, "ListDeliveries", store.NotFoundf("notifier %q", req.NotifierId))
		}
	}
	list, more, err := s.store.ListDeliveries(ctx, f, before, size)
	if err != nil {
		return nil, toStatus(s.log, "ListDeliveries", err)
	}
	resp := &fleetscanv1.ListDeliveriesResponse{NextPageToken: encodePageToken(more, bind)}
	for _, d := range list {
		resp.Deliveries = append(resp.Deliveries, deliveryToProto(d.ID, d.Record))
	}
	return resp, nil
}

func notifierToProto(n *storagev1.NotifierRecord) *fleetscanv1.Notifier {
	out := &fleetscanv1.Notifier{Id: n.Id, Name: n.Name, Kind: n.Kind, Url: n.Url, Tenant: n.Tenant, Events: n.Events, MinSeverity: n.MinSeverity,
		ScoreDrop: n.ScoreDrop, OfflineAfter: durationpb.New(time.Duration(n.OfflineAfterMs) * time.Millisecond),
		ExpiryWarning: durationpb.New(time.Duration(n.ExpiryWarningMs) * time.Millisecond),
		CreatedBy:     n.CreatedBy, CreateTime: timestamppb.New(time.UnixMilli(n.CreateMs)), OwnerTenant: n.OwnerTenant}
	if n.Kind == fleetscanv1.NotifierKind_NOTIFIER_KIND_SLACK {
		out.Url = hideSecretPath(n.Url)
	}
	return out
}

// hideSecretPath keeps the scheme and host of an address whose path is a
// secret (a Slack webhook's).
func hideSecretPath(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(hidden)"
	}
	return p.Scheme + "://" + p.Host + "/…"
}

func deliveryToProto(id ulid.ULID, d *storagev1.DeliveryRecord) *fleetscanv1.Delivery {
	out := &fleetscanv1.Delivery{Id: id.String(), NotifierId: d.NotifierId, EventType: d.EventType, ClusterId: d.ClusterId, Summary: d.Summary,
		State: d.State, Attempts: d.Attempts, CreateTime: ts(d.CreateMs), LastAttemptTime: ts(d.LastAttemptMs),
		DeliveredTime: ts(d.DeliveredMs), LastStatus: d.LastStatus, LastError: d.LastError}
	if d.State == fleetscanv1.DeliveryState_DELIVERY_STATE_PENDING {
		out.NextAttemptTime = ts(d.NextAttemptMs)
	}
	return out
}

// errResourceExhausted: a limit of the server's was reached.
var errResourceExhausted = errors.New("resource exhausted")
