package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The CloudEvents types fleetscan sends.
const (
	TypeNewFindings       = "dev.fleetscan.findings.new"
	TypeScoreDropped      = "dev.fleetscan.score.dropped"
	TypeJobFailed         = "dev.fleetscan.job.failed"
	TypeWorkerOffline     = "dev.fleetscan.worker.offline"
	TypeExceptionExpiring = "dev.fleetscan.exception.expiring"
	TypeTest              = "dev.fleetscan.test"
)

// Event is a CloudEvent 1.0 in structured JSON mode: a request's body.
type Event struct {
	SpecVersion string `json:"specversion"`
	// ID is the event's id, also in the webhook-id header.
	ID string `json:"id"`
	// Source is "/fleetscan/clusters/<id>" for an event of a cluster,
	// else "/fleetscan".
	Source string `json:"source"`
	Type   string `json:"type"`
	// Subject is the cluster, the exception or the notifier the event is
	// about.
	Subject         string    `json:"subject,omitempty"`
	Time            time.Time `json:"time"`
	DataContentType string    `json:"datacontenttype"`
	// Data is the struct of the type (NewFindingsData, ...); Parse leaves
	// the data of a type it does not know as a json.RawMessage.
	Data any `json:"data"`
}

// Parse decodes an event and its data.
func Parse(body []byte) (*Event, error) {
	var raw struct {
		Event
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("not a CloudEvent in JSON: %w", err)
	}
	e := raw.Event
	if e.SpecVersion != "1.0" || e.ID == "" || e.Type == "" {
		return nil, errors.New("not a CloudEvent 1.0: specversion, id or type missing")
	}
	var err error
	switch e.Type {
	case TypeNewFindings:
		e.Data, err = decode[NewFindingsData](raw.Data)
	case TypeScoreDropped:
		e.Data, err = decode[ScoreDroppedData](raw.Data)
	case TypeJobFailed:
		e.Data, err = decode[JobFailedData](raw.Data)
	case TypeWorkerOffline:
		e.Data, err = decode[WorkerOfflineData](raw.Data)
	case TypeExceptionExpiring:
		e.Data, err = decode[ExceptionExpiringData](raw.Data)
	case TypeTest:
		e.Data, err = decode[TestData](raw.Data)
	default:
		e.Data = raw.Data
	}
	if err != nil {
		return nil, fmt.Errorf("data of %s: %w", e.Type, err)
	}
	return &e, nil
}

func decode[T any](b json.RawMessage) (T, error) {
	var v T
	err := json.Unmarshal(b, &v)
	return v, err
}

// NewFindingsData is the data of dev.fleetscan.findings.new: a scan found
// findings at or above the notifier's least severity that were not open
// before.
type NewFindingsData struct {
	ClusterID   string `json:"cluster_id"`
	Tenant      string `json:"tenant,omitempty"`
	ScanID      string `json:"scan_id"`
	JobID       string `json:"job_id"`
	MinSeverity string `json:"min_severity"`
	// FirstScan: the cluster's first scan, whose findings are all new.
	FirstScan bool `json:"first_scan"`
	// Counts of the new findings by severity ("CRITICAL", "HIGH", ...).
	Counts map[string]int `json:"counts"`
	Total  int            `json:"total"`
	// Findings are the worst of them, worst first; Total counts them all.
	Findings []FindingSummary `json:"findings"`
}

// FindingSummary is one new finding in an event.
type FindingSummary struct {
	Fingerprint string `json:"fingerprint"`
	CheckID     string `json:"check_id"`
	Severity    string `json:"severity"`
	Kind        string `json:"kind"`
	Namespace   string `json:"namespace,omitempty"`
	Name        string `json:"name"`
	SubPath     string `json:"sub_path,omitempty"`
	Message     string `json:"message"`
}

// severities are the severities' names, worst first.
var severities = []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO"}

// Summary is one line on the event: the counts by severity.
func (d NewFindingsData) Summary() string {
	var parts []string
	for _, s := range severities {
		if n := d.Counts[s]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, strings.ToLower(s)))
		}
	}
	first := ""
	if d.FirstScan {
		first = " (its first scan)"
	}
	return fmt.Sprintf("%s: %d new finding(s) at %s or worse%s: %s", d.ClusterID, d.Total, strings.ToLower(d.MinSeverity), first, strings.Join(parts, ", "))
}

// ScoreDroppedData is the data of dev.fleetscan.score.dropped: a
// cluster's posture score fell by more than the notifier's threshold from
// its previous scan.
type ScoreDroppedData struct {
	ClusterID   string `json:"cluster_id"`
	Tenant      string `json:"tenant,omitempty"`
	ScanID      string `json:"scan_id"`
	JobID       string `json:"job_id"`
	ScoreBefore int32  `json:"score_before"`
	Score       int32  `json:"score"`
	Drop        int32  `json:"drop"`
	Threshold   int32  `json:"threshold"`
}

// Summary is one line on the event.
func (d ScoreDroppedData) Summary() string {
	return fmt.Sprintf("%s: posture score fell from %d to %d (%d points, more than %d)", d.ClusterID, d.ScoreBefore, d.Score, d.Drop, d.Threshold)
}

// JobFailedData is the data of dev.fleetscan.job.failed: a job ended
// failed, timed out or expired.
type JobFailedData struct {
	ClusterID string `json:"cluster_id"`
	Tenant    string `json:"tenant,omitempty"`
	ScanID    string `json:"scan_id"`
	JobID     string `json:"job_id"`
	// State is FAILED, TIMED_OUT or EXPIRED.
	State string `json:"state"`
	Error string `json:"error"`
}

// Summary is one line on the event.
func (d JobFailedData) Summary() string {
	return fmt.Sprintf("%s: job %s of scan %s %s: %s", d.ClusterID, d.JobID, d.ScanID, strings.ToLower(strings.ReplaceAll(d.State, "_", " ")), d.Error)
}

// WorkerOfflineData is the data of dev.fleetscan.worker.offline: a
// cluster's worker has been away longer than the notifier allows.
type WorkerOfflineData struct {
	ClusterID        string    `json:"cluster_id"`
	Tenant           string    `json:"tenant,omitempty"`
	LastSeen         time.Time `json:"last_seen"`
	OfflineSeconds   int64     `json:"offline_seconds"`
	ThresholdSeconds int64     `json:"threshold_seconds"`
}

// Summary is one line on the event.
func (d WorkerOfflineData) Summary() string {
	return fmt.Sprintf("%s: worker offline for %v (since %s), more than %v", d.ClusterID, time.Duration(d.OfflineSeconds)*time.Second,
		d.LastSeen.UTC().Format(time.RFC3339), time.Duration(d.ThresholdSeconds)*time.Second)
}

// ExceptionExpiringData is the data of dev.fleetscan.exception.expiring:
// an exception expires within the notifier's warning.
type ExceptionExpiringData struct {
	ExceptionID string    `json:"exception_id"`
	Tenant      string    `json:"tenant,omitempty"`
	ClusterID   string    `json:"cluster_id,omitempty"`
	Namespace   string    `json:"namespace,omitempty"`
	CheckID     string    `json:"check_id,omitempty"`
	Reason      string    `json:"reason"`
	Author      string    `json:"author"`
	ExpireTime  time.Time `json:"expire_time"`
}

// Summary is one line on the event: the exception's scope, expiry and
// reason.
func (d ExceptionExpiringData) Summary() string {
	var scope []string
	for _, f := range [][2]string{{"check", d.CheckID}, {"cluster", d.ClusterID}, {"namespace", d.Namespace}, {"tenant", d.Tenant}} {
		if f[1] != "" {
			scope = append(scope, f[0]+" "+f[1])
		}
	}
	return fmt.Sprintf("exception %s (%s) expires at %s: %s", d.ExceptionID, strings.Join(scope, ", "), d.ExpireTime.UTC().Format(time.RFC3339), d.Reason)
}

// TestData is the data of dev.fleetscan.test, which fleetscan notifier
// test sends.
type TestData struct {
	NotifierID string `json:"notifier_id"`
	Notifier   string `json:"notifier"`
	Message    string `json:"message"`
}

// Summary is one line on the event.
func (d TestData) Summary() string { return fmt.Sprintf("test event for notifier %s", d.Notifier) }
