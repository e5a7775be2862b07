package api

import (
	"time"

	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/types/known/timestamppb"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server/internal/auth"
	"github.com/fleetscan/fleetscan/server/internal/history"
	"github.com/fleetscan/fleetscan/server/internal/store"
	"github.com/fleetscan/fleetscan/worker/catalog"
)

func ts(ms int64) *timestamppb.Timestamp {
	if ms == 0 {
		return nil
	}
	return timestamppb.New(time.UnixMilli(ms))
}

// clusterToProto converts a cluster for viewer p: a tenant sees its own
// namespace grant only, and of a cluster it does not own neither the
// labels nor the owner.
func clusterToProto(c *storagev1.ClusterRecord, connected bool, p auth.Principal) *fleetscanv1.Cluster {
	out := &fleetscanv1.Cluster{
		Id: c.Id, DisplayName: c.DisplayName, Tenant: c.Tenant, Labels: c.Labels, CreateTime: ts(c.CreateMs),
		Worker: &fleetscanv1.WorkerStatus{
			Connected: connected, LastSeenTime: ts(c.LastSeenMs),
			WorkerVersion: c.WorkerVersion, KubernetesVersion: c.KubernetesVersion,
		},
		NamespaceGrants: c.NamespaceGrants,
	}
	if p.IsOperator() {
		return out
	}
	out.NamespaceGrants = nil
	for _, g := range c.NamespaceGrants {
		if g.Tenant == p.Tenant {
			out.NamespaceGrants = append(out.NamespaceGrants, g)
		}
	}
	if !p.SeesAll(c) {
		out.Labels, out.Tenant = nil, ""
	}
	return out
}

// LiveProgress is what running jobs have reported but not yet stored.
type LiveProgress interface {
	ObjectsScanned(jobID ulid.ULID) (int64, bool)
}

// scanToProto converts a scan; live, if not nil, fills in the progress of
// running jobs.
func scanToProto(s *store.Scan, live LiveProgress) *fleetscanv1.Scan {
	out := &fleetscanv1.Scan{
		Id: s.ID.String(), Target: s.Record.Target, Spec: s.Record.Spec, CreateTime: ts(s.Record.CreateMs),
		Findings: &fleetscanv1.SeverityCounts{},
		Progress: &fleetscanv1.ScanProgress{ClustersTotal: int32(len(s.Jobs))},
	}
	var pending, active, succeeded, failed, cancelled int
	var finish int64
	for _, j := range s.Jobs {
		r := j.Record
		job := &fleetscanv1.Job{
			Id: j.ID.String(), ClusterId: r.ClusterId, State: r.State,
			CreateTime: ts(r.CreateMs), StartTime: ts(r.StartMs), FinishTime: ts(r.FinishMs),
			Findings: r.Findings, ObjectsScanned: r.ObjectsScanned, Error: r.Error,
			NotAssessable: r.NotAssessable, Attempts: r.Attempts, FindingsReceived: r.StagedFindings, Problems: r.Problems,
			Unchecked: r.Unchecked,
		}
		if store.IsFinal(r.State) {
			out.Progress.ClustersDone++
		} else if live != nil {
			if n, ok := live.ObjectsScanned(j.ID); ok {
				job.ObjectsScanned = n
			}
		}
		out.Progress.ObjectsScanned += job.ObjectsScanned
		if r.State == fleetscanv1.JobState_JOB_STATE_SUCCEEDED {
			c := r.Findings
			out.Progress.Findings += c.GetCritical() + c.GetHigh() + c.GetMedium() + c.GetLow() + c.GetInfo() + c.GetSuppressed()
		} else if !store.IsFinal(r.State) {
			out.Progress.Findings += r.StagedFindings
		}
		out.Jobs = append(out.Jobs, job)
		switch r.State {
		case fleetscanv1.JobState_JOB_STATE_PENDING:
			pending++
		case fleetscanv1.JobState_JOB_STATE_SUCCEEDED:
			succeeded++
			history.Add(out.Findings, r.Findings)
		case fleetscanv1.JobState_JOB_STATE_CANCELLED:
			cancelled++
		case fleetscanv1.JobState_JOB_STATE_FAILED, fleetscanv1.JobState_JOB_STATE_TIMED_OUT, fleetscanv1.JobState_JOB_STATE_EXPIRED:
			failed++
		default:
			active++
		}
		finish = max(finish, r.FinishMs)
	}
	switch {
	case pending+active == 0 && failed+cancelled == 0:
		out.State = fleetscanv1.ScanState_SCAN_STATE_SUCCEEDED
	case pending+active == 0 && failed == 0:
		out.State = fleetscanv1.ScanState_SCAN_STATE_CANCELLED
	case pending+active == 0:
		out.State = fleetscanv1.ScanState_SCAN_STATE_FAILED
	case active == 0 && succeeded+failed+cancelled == 0:
		out.State = fleetscanv1.ScanState_SCAN_STATE_PENDING
	default:
		out.State = fleetscanv1.ScanState_SCAN_STATE_RUNNING
	}
	if pending+active == 0 {
		out.FinishTime = ts(finish)
	}
	return out
}

func findingToProto(v store.FindingView) *fleetscanv1.Finding {
	r := v.Record
	f := &fleetscanv1.Finding{
		Fingerprint: catalog.FingerprintString(v.Fingerprint), ClusterId: v.ClusterID,
		CheckId: r.CheckId, Severity: r.Severity, Category: r.Category, ResponsibleParty: r.ResponsibleParty,
		Resource: r.Resource, Message: r.Message,
		Status:        fleetscanv1.FindingStatus_FINDING_STATUS_OPEN,
		FirstSeenTime: ts(r.FirstSeenMs), LastSeenTime: ts(v.LastSeenMs), ResolvedTime: ts(r.ResolvedMs),
		LastScanId: v.ScanID.String(), Location: r.Location,
	}
	switch {
	case r.ResolvedMs != 0:
		f.Status = fleetscanv1.FindingStatus_FINDING_STATUS_RESOLVED
	case r.SuppressionReason != "":
		f.Status = fleetscanv1.FindingStatus_FINDING_STATUS_SUPPRESSED
		f.SuppressionReason, f.ExceptionId = r.SuppressionReason, v.ExceptionID
	}
	// Per-check texts live in the catalog, not in every stored record.
	if meta, ok := catalog.Lookup(r.CheckId); ok {
		f.Title, f.Remediation = meta.Title, meta.Remediation
	}
	return f
}

func checkToProto(m catalog.Meta) *fleetscanv1.Check {
	return &fleetscanv1.Check{
		Id: m.ID, Title: m.Title, Severity: m.Severity, Category: m.Category, ResponsibleParty: m.Party,
		Description: m.Description, Remediation: m.Remediation, Frameworks: m.Frameworks,
	}
}
