// Package notify tells receivers outside fleetscan when a cluster gets
// worse. Events are CloudEvents 1.0, made when what they report commits
// (the store's outbox hook, or the watcher for offline workers and
// expiring exceptions), kept in the store's outbox and delivered at least
// once by the Dispatcher, signed per the Standard Webhooks scheme, or as a
// Slack-compatible message.
package notify

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/fleetscan/fleetscan/client/webhook"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	workerv1 "github.com/fleetscan/fleetscan/proto/fleetscan/worker/v1"
	"github.com/fleetscan/fleetscan/server/internal/history"
	"github.com/fleetscan/fleetscan/server/internal/store"
	"github.com/fleetscan/fleetscan/worker/catalog"
)

// CloudEvents types, by event type.
var ceTypes = map[fleetscanv1.EventType]string{
	fleetscanv1.EventType_EVENT_TYPE_NEW_FINDINGS:       webhook.TypeNewFindings,
	fleetscanv1.EventType_EVENT_TYPE_SCORE_DROPPED:      webhook.TypeScoreDropped,
	fleetscanv1.EventType_EVENT_TYPE_JOB_FAILED:         webhook.TypeJobFailed,
	fleetscanv1.EventType_EVENT_TYPE_WORKER_OFFLINE:     webhook.TypeWorkerOffline,
	fleetscanv1.EventType_EVENT_TYPE_EXCEPTION_EXPIRING: webhook.TypeExceptionExpiring,
	fleetscanv1.EventType_EVENT_TYPE_TEST:               webhook.TypeTest,
}

// CEType is the CloudEvents type of an event type.
func CEType(t fleetscanv1.EventType) string { return ceTypes[t] }

// Defaults of a notifier's thresholds.
const (
	DefaultMinSeverity   = fleetscanv1.Severity_SEVERITY_HIGH
	DefaultScoreDrop     = 10
	DefaultOfflineAfter  = 15 * time.Minute
	DefaultExpiryWarning = 3 * 24 * time.Hour
	// maxListed is how many of a scan's new findings an event lists, worst
	// first; it counts them all.
	maxListed = 10
)

// The events and their data are the wire format of package webhook,
// which receivers decode with the same definitions.
type (
	Event                 = webhook.Event
	NewFindingsData       = webhook.NewFindingsData
	FindingSummary        = webhook.FindingSummary
	ScoreDroppedData      = webhook.ScoreDroppedData
	JobFailedData         = webhook.JobFailedData
	WorkerOfflineData     = webhook.WorkerOfflineData
	ExceptionExpiringData = webhook.ExceptionExpiringData
	TestData              = webhook.TestData
)

// Wants reports whether the notifier wants events of type t.
func Wants(n *storagev1.NotifierRecord, t fleetscanv1.EventType) bool {
	if len(n.Events) == 0 {
		return t != fleetscanv1.EventType_EVENT_TYPE_TEST
	}
	return slices.Contains(n.Events, t)
}

// covers reports whether a notifier hears of the cluster: a tenant's
// notifier of that tenant's clusters only.
func covers(n *storagev1.NotifierRecord, c *storagev1.ClusterRecord) bool {
	return n.Tenant == "" || c.GetTenant() == n.Tenant
}

// Builder makes events: their ids and times.
type Builder struct {
	NewID func() ulid.ULID
	Now   func() time.Time
}

// summarized is an event's data, which says in one line what happened.
type summarized interface{ Summary() string }

// outgoing makes one delivery of an event.
func (b Builder) outgoing(n *storagev1.NotifierRecord, t fleetscanv1.EventType, clusterID, subject string, data summarized) store.Outgoing {
	id := b.NewID()
	now := b.Now()
	source := "/fleetscan"
	if clusterID != "" {
		source = "/fleetscan/clusters/" + clusterID
	}
	body, err := json.Marshal(Event{SpecVersion: "1.0", ID: id.String(), Source: source, Type: CEType(t), Subject: subject,
		Time: now.UTC(), DataContentType: "application/json", Data: data})
	if err != nil {
		// Only plain structs of strings and numbers are marshalled.
		panic(fmt.Sprintf("marshal event: %v", err))
	}
	return store.Outgoing{ID: id, Record: &storagev1.DeliveryRecord{
		NotifierId: n.Id, EventType: t, ClusterId: clusterID, Summary: data.Summary(), Event: body,
		State: fleetscanv1.DeliveryState_DELIVERY_STATE_PENDING, CreateMs: now.UnixMilli(), NextAttemptMs: now.UnixMilli(),
	}}
}

// JobEnded is the store's outbox hook: the events of a job's end for each
// notifier that wants them.
func (b Builder) JobEnded(e store.JobEnded, notifiers []*storagev1.NotifierRecord) []store.Outgoing {
	var out []store.Outgoing
	scanID := ulidString(e.Job.GetScanId())
	for _, n := range notifiers {
		if !covers(n, e.Cluster) {
			continue
		}
		switch e.Job.State {
		case fleetscanv1.JobState_JOB_STATE_SUCCEEDED:
			if Wants(n, fleetscanv1.EventType_EVENT_TYPE_NEW_FINDINGS) {
				if d, ok := newFindings(e, n, scanID); ok {
					out = append(out, b.outgoing(n, fleetscanv1.EventType_EVENT_TYPE_NEW_FINDINGS, e.Cluster.Id, e.Cluster.Id, d))
				}
			}
			if Wants(n, fleetscanv1.EventType_EVENT_TYPE_SCORE_DROPPED) && e.Previous != nil {
				before := history.Score(e.Previous.Findings, e.Previous.ObjectsScanned)
				now := history.Score(e.Job.Findings, e.Job.ObjectsScanned)
				threshold := n.ScoreDrop
				if threshold <= 0 {
					threshold = DefaultScoreDrop
				}
				if before-now > threshold {
					d := ScoreDroppedData{ClusterID: e.Cluster.Id, Tenant: e.Cluster.Tenant, ScanID: scanID, JobID: e.JobID.String(),
						ScoreBefore: before, Score: now, Drop: before - now, Threshold: threshold}
					out = append(out, b.outgoing(n, fleetscanv1.EventType_EVENT_TYPE_SCORE_DROPPED, e.Cluster.Id, e.Cluster.Id, d))
				}
			}
		case fleetscanv1.JobState_JOB_STATE_FAILED, fleetscanv1.JobState_JOB_STATE_TIMED_OUT, fleetscanv1.JobState_JOB_STATE_EXPIRED:
			if Wants(n, fleetscanv1.EventType_EVENT_TYPE_JOB_FAILED) {
				state := strings.TrimPrefix(e.Job.State.String(), "JOB_STATE_")
				d := JobFailedData{ClusterID: e.Cluster.Id, Tenant: e.Cluster.Tenant, ScanID: scanID, JobID: e.JobID.String(), State: state, Error: e.Job.Error}
				out = append(out, b.outgoing(n, fleetscanv1.EventType_EVENT_TYPE_JOB_FAILED, e.Cluster.Id, e.Cluster.Id, d))
			}
		}
	}
	return out
}

func newFindings(e store.JobEnded, n *storagev1.NotifierRecord, scanID string) (NewFindingsData, bool) {
	least := n.MinSeverity
	if least == fleetscanv1.Severity_SEVERITY_UNSPECIFIED {
		least = DefaultMinSeverity
	}
	var worst []*workerv1.Finding
	d := NewFindingsData{ClusterID: e.Cluster.Id, Tenant: e.Cluster.Tenant, ScanID: scanID, JobID: e.JobID.String(),
		MinSeverity: SeverityName(least), FirstScan: e.Previous == nil, Counts: map[string]int{}, Findings: []FindingSummary{}}
	for _, f := range e.New {
		if f.Severity < least {
			continue
		}
		d.Counts[SeverityName(f.Severity)]++
		d.Total++
		worst = append(worst, f)
	}
	if d.Total == 0 {
		return d, false
	}
	slices.SortFunc(worst, func(a, b *workerv1.Finding) int {
		return cmp.Or(cmp.Compare(b.Severity, a.Severity), cmp.Compare(a.CheckId, b.CheckId),
			cmp.Compare(a.GetResource().GetNamespace(), b.GetResource().GetNamespace()), cmp.Compare(a.GetResource().GetName(), b.GetResource().GetName()),
			cmp.Compare(a.GetResource().GetSubPath(), b.GetResource().GetSubPath()))
	})
	for _, f := range worst[:min(len(worst), maxListed)] {
		r := f.GetResource()
		fp := catalog.Fingerprint(e.Cluster.Id, f.CheckId, catalog.Resource{APIVersion: r.GetApiVersion(), Kind: r.GetKind(), Namespace: r.GetNamespace(), Name: r.GetName(), SubPath: r.GetSubPath()})
		d.Findings = append(d.Findings, FindingSummary{Fingerprint: catalog.FingerprintString(fp), CheckID: f.CheckId, Severity: SeverityName(f.Severity),
			Kind: r.GetKind(), Namespace: r.GetNamespace(), Name: r.GetName(), SubPath: r.GetSubPath(), Message: f.Message})
	}
	return d, true
}

// WorkerOffline is the event of a worker away longer than the notifier
// allows.
func (b Builder) WorkerOffline(n *storagev1.NotifierRecord, c *storagev1.ClusterRecord, lastSeen time.Time, threshold time.Duration) store.Outgoing {
	away := b.Now().Sub(lastSeen).Round(time.Second)
	d := WorkerOfflineData{ClusterID: c.Id, Tenant: c.Tenant, LastSeen: lastSeen.UTC(), OfflineSeconds: int64(away / time.Second), ThresholdSeconds: int64(threshold / time.Second)}
	return b.outgoing(n, fleetscanv1.EventType_EVENT_TYPE_WORKER_OFFLINE, c.Id, c.Id, d)
}

// ExceptionExpiring is the event of an exception that expires soon.
func (b Builder) ExceptionExpiring(n *storagev1.NotifierRecord, e *fleetscanv1.Exception) store.Outgoing {
	expire := e.GetExpireTime().AsTime()
	d := ExceptionExpiringData{ExceptionID: e.Id, Tenant: e.Tenant, ClusterID: e.ClusterId, Namespace: e.Namespace, CheckID: e.CheckId,
		Reason: e.Reason, Author: e.Author, ExpireTime: expire.UTC()}
	return b.outgoing(n, fleetscanv1.EventType_EVENT_TYPE_EXCEPTION_EXPIRING, e.ClusterId, e.Id, d)
}

// Test is the event TestNotifier sends.
func (b Builder) Test(n *storagev1.NotifierRecord) store.Outgoing {
	d := TestData{NotifierID: n.Id, Notifier: n.Name, Message: "a test event from fleetscan: this notifier is set up right"}
	return b.outgoing(n, fleetscanv1.EventType_EVENT_TYPE_TEST, "", n.Name, d)
}

// SeverityName is "CRITICAL", "HIGH", ...
func SeverityName(s fleetscanv1.Severity) string {
	return strings.TrimPrefix(s.String(), "SEVERITY_")
}

func ulidString(b []byte) string {
	var id ulid.ULID
	if len(b) != len(id) {
		return ""
	}
	copy(id[:], b)
	return id.String()
}
