package notify

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	workerv1 "github.com/fleetscan/fleetscan/proto/fleetscan/worker/v1"
	"github.com/fleetscan/fleetscan/server/internal/store"
)

func TestCheckURL(t *testing.T) {
	for _, tc := range []struct {
		url              string
		operator, tenant bool
	}{
		{"https://hooks.example.com/fleetscan", true, true},
		{"https://203.0.113.7/hook", true, true},
		{"http://127.0.0.1:8080/hook", true, false},
		{"http://localhost:8080/hook", true, false},
		{"http://[::1]:8080/hook", true, false},
		{"http://hooks.example.com/hook", false, false},
		{"https://10.1.2.3/hook", true, false},
		{"https://192.168.1.1/hook", true, false},
		{"https://169.254.169.254/latest", true, false},
		{"https://100.100.100.200/meta", true, false},
		{"https://[fd00::1]/hook", true, false},
		{"https://localhost/hook", true, false},
		{"https://user:pw@hooks.example.com/", false, false},
		{"https:///nohost", false, false},
		{"ftp://hooks.example.com/", false, false},
		{"https://hooks.example.com/" + strings.Repeat("a", 2048), false, false},
	} {
		if err := CheckURL(tc.url, false); (err == nil) != tc.operator {
			t.Errorf("operator's %s: %v", tc.url, err)
		}
		if err := CheckURL(tc.url, true); (err == nil) != tc.tenant {
			t.Errorf("tenant's %s: %v", tc.url, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:443", "10.0.0.1:443", "169.254.169.254:80", "[::1]:443", "[fe80::1]:443", "100.64.0.1:443", "0.0.0.0:443"} {
		if err := publicOnly("tcp", addr, nil); !errors.Is(err, ErrPrivateAddress) {
			t.Errorf("dialing %s for a tenant: %v, want refused", addr, err)
		}
	}
	if err := publicOnly("tcp", "203.0.113.7:443", nil); err != nil {
		t.Errorf("dialing a public address: %v", err)
	}
}

func testBuilder() Builder {
	entropy := ulid.Monotonic(strings.NewReader(strings.Repeat("x", 10000)), 0)
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	return Builder{NewID: func() ulid.ULID { return ulid.MustNew(ulid.Timestamp(now), entropy) }, Now: func() time.Time { return now }}
}

func finding(check string, sev fleetscanv1.Severity, name string) *workerv1.Finding {
	return &workerv1.Finding{CheckId: check, Severity: sev, Message: "msg " + name,
		Resource: &fleetscanv1.ResourceRef{ApiVersion: "apps/v1", Kind: "Deployment", Namespace: "shop", Name: name}}
}

// TestJobEnded: which notifiers hear of a job's end, and what they get.
func TestJobEnded(t *testing.T) {
	b := testBuilder()
	scanID := ulid.MustNew(1, strings.NewReader(strings.Repeat("s", 100)))
	cluster := &storagev1.ClusterRecord{Id: "acme-prod", Tenant: "acme"}
	prev := &storagev1.JobRecord{Findings: &fleetscanv1.SeverityCounts{High: 1}, ObjectsScanned: 10}
	job := &storagev1.JobRecord{ScanId: scanID[:], State: fleetscanv1.JobState_JOB_STATE_SUCCEEDED,
		Findings: &fleetscanv1.SeverityCounts{Critical: 2, High: 13, Low: 1}, ObjectsScanned: 10}
	var news []*workerv1.Finding
	for i := range 12 {
		news = append(news, finding("POD-00"+string(rune('a'+i%3)), fleetscanv1.Severity_SEVERITY_HIGH, "web-"+string(rune('a'+i))))
	}
	news = append(news, finding("POD-002", fleetscanv1.Severity_SEVERITY_CRITICAL, "db"), finding("POD-009", fleetscanv1.Severity_SEVERITY_LOW, "x"))
	ended := store.JobEnded{Cluster: cluster, JobID: ulid.MustNew(2, strings.NewReader(strings.Repeat("j", 100))), Job: job, Previous: prev, New: news}

	all := &storagev1.NotifierRecord{Id: "all", MinSeverity: fleetscanv1.Severity_SEVERITY_HIGH, ScoreDrop: 10}
	globex := &storagev1.NotifierRecord{Id: "globex", Tenant: "globex"}
	acme := &storagev1.NotifierRecord{Id: "acme", Tenant: "acme", MinSeverity: fleetscanv1.Severity_SEVERITY_CRITICAL, ScoreDrop: 100,
		Events: []fleetscanv1.EventType{fleetscanv1.EventType_EVENT_TYPE_NEW_FINDINGS}}
	low := &storagev1.NotifierRecord{Id: "low", MinSeverity: fleetscanv1.Severity_SEVERITY_LOW, Events: []fleetscanv1.EventType{fleetscanv1.EventType_EVENT_TYPE_SCORE_DROPPED}}
	out := b.JobEnded(ended, []*storagev1.NotifierRecord{all, globex, acme, low})
	var got []string
	for _, o := range out {
		got = append(got, o.Record.NotifierId+" "+CEType(o.Record.EventType))
	}
	want := "all dev.fleetscan.findings.new|all dev.fleetscan.score.dropped|acme dev.fleetscan.findings.new|low dev.fleetscan.score.dropped"
	if strings.Join(got, "|") != want {
		t.Fatalf("deliveries %q\nwant       %q", strings.Join(got, "|"), want)
	}
	var ev struct {
		ID, Type, Source, Subject, SpecVersion string
		Data                                   NewFindingsData
	}
	if err := json.Unmarshal(out[0].Record.Event, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.ID != out[0].ID.String() || ev.SpecVersion != "1.0" || ev.Source != "/fleetscan/clusters/acme-prod" || ev.Subject != "acme-prod" {
		t.Errorf("envelope %+v", ev)
	}
	d := ev.Data
	if d.Total != 13 || d.Counts["CRITICAL"] != 1 || d.Counts["HIGH"] != 12 || d.Counts["LOW"] != 0 || len(d.Findings) != maxListed || d.FirstScan {
		t.Errorf("new findings at HIGH: %+v", d)
	}
	if d.Findings[0].CheckID != "POD-002" || d.Findings[0].Severity != "CRITICAL" || len(d.Findings[0].Fingerprint) != 32 {
		t.Errorf("the worst is not first: %+v", d.Findings[0])
	}
	if s := out[0].Record.Summary; !strings.Contains(s, "13 new finding(s) at high or worse") || !strings.Contains(s, "1 critical, 12 high") {
		t.Errorf("summary %q", s)
	}
	var acmeEv struct{ Data NewFindingsData }
	json.Unmarshal(out[2].Record.Event, &acmeEv)
	if acmeEv.Data.Total != 1 || acmeEv.Data.MinSeverity != "CRITICAL" {
		t.Errorf("acme's notifier at CRITICAL got %+v", acmeEv.Data)
	}
	for _, o := range out {
		if o.Record.State != fleetscanv1.DeliveryState_DELIVERY_STATE_PENDING || o.Record.NextAttemptMs != o.Record.CreateMs {
			t.Errorf("a new delivery is not due at once: %v", o.Record)
		}
	}

	// The first scan has no score to drop from; a failed job is reported
	// as such, a cancelled one not at all.
	ended.Previous = nil
	if out := b.JobEnded(ended, []*storagev1.NotifierRecord{low}); len(out) != 0 {
		t.Errorf("first scan: %v", out)
	}
	ended.Job = &storagev1.JobRecord{ScanId: scanID[:], State: fleetscanv1.JobState_JOB_STATE_TIMED_OUT, Error: "no word from the worker for 1h"}
	out = b.JobEnded(ended, []*storagev1.NotifierRecord{all, acme, globex})
	if len(out) != 1 || out[0].Record.EventType != fleetscanv1.EventType_EVENT_TYPE_JOB_FAILED || !strings.Contains(out[0].Record.Summary, "timed out: no word") {
		t.Errorf("timed out job: %v", out)
	}
	ended.Job.State = fleetscanv1.JobState_JOB_STATE_CANCELLED
	if out := b.JobEnded(ended, []*storagev1.NotifierRecord{all}); len(out) != 0 {
		t.Errorf("cancelled job: %v", out)
	}
}

// TestRecord: an attempt's result moves a delivery on.
func TestRecord(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	d := &Dispatcher{MinBackoff: time.Second, MaxBackoff: time.Minute}
	d.init()
	rec := func() *storagev1.DeliveryRecord {
		return &storagev1.DeliveryRecord{State: fleetscanv1.DeliveryState_DELIVERY_STATE_PENDING, CreateMs: now.UnixMilli()}
	}
	r := rec()
	Record(r, Result{Status: 500, Err: errors.New("the receiver answered 500")}, now, time.Hour, d.backoff)
	if r.State != fleetscanv1.DeliveryState_DELIVERY_STATE_PENDING || r.Attempts != 1 || r.LastStatus != 500 || r.NextAttemptMs <= now.UnixMilli() {
		t.Errorf("after a failure: %v", r)
	}
	Record(r, Result{Status: 204}, now.Add(time.Second), time.Hour, d.backoff)
	if r.State != fleetscanv1.DeliveryState_DELIVERY_STATE_DELIVERED || r.Attempts != 2 || r.DeliveredMs == 0 || r.LastError != "" {
		t.Errorf("after a success: %v", r)
	}
	r = rec()
	Record(r, Result{Status: 410, Err: errors.New("gone"), Permanent: true}, now, time.Hour, d.backoff)
	if r.State != fleetscanv1.DeliveryState_DELIVERY_STATE_FAILED {
		t.Errorf("after a permanent refusal: %v", r)
	}
	r = rec()
	Record(r, Result{Err: errors.New("connection refused")}, now.Add(59*time.Minute+59*time.Second+500*time.Millisecond), time.Hour, d.backoff)
	if r.State != fleetscanv1.DeliveryState_DELIVERY_STATE_FAILED || !strings.Contains(r.LastError, "gave up after 1 attempts") {
		t.Errorf("past the retry horizon: %v", r)
	}
	// An attempt under way while the delivery was ended (its notifier
	// deleted) does not bring it back.
	r = rec()
	r.State, r.LastError = fleetscanv1.DeliveryState_DELIVERY_STATE_FAILED, "notifier deleted"
	Record(r, Result{Err: errors.New("connection refused")}, now, time.Hour, d.backoff)
	if r.State != fleetscanv1.DeliveryState_DELIVERY_STATE_FAILED || r.LastError != "notifier deleted" || r.Attempts != 0 {
		t.Errorf("an attempt recorded over a delivery ended meanwhile: %v", r)
	}
	// Doubling, capped, within ±20%.
	for attempts, base := range map[int32]time.Duration{1: time.Second, 2: 2 * time.Second, 4: 8 * time.Second, 7: time.Minute, 30: time.Minute} {
		for range 20 {
			if b := d.backoff(attempts); b < base*8/10 || b > base*12/10 {
				t.Errorf("backoff after %d attempts: %v, want %v ±20%%", attempts, b, base)
			}
		}
	}
}

// TestSlackMessage: every event type has a Slack text, with mrkdwn's
// markup characters escaped.
func TestSlackMessage(t *testing.T) {
	b := testBuilder()
	n := &storagev1.NotifierRecord{Id: "n", Name: "chat"}
	c := &storagev1.ClusterRecord{Id: "acme-prod", Tenant: "acme"}
	scanID := ulid.MustNew(1, strings.NewReader(strings.Repeat("s", 100)))
	bad := finding("POD-001", fleetscanv1.Severity_SEVERITY_HIGH, "web")
	bad.Message = "container <app> & sidecar"
	events := []store.Outgoing{
		b.Test(n),
		b.WorkerOffline(n, c, b.Now().Add(-20*time.Minute), 15*time.Minute),
		b.ExceptionExpiring(n, &fleetscanv1.Exception{Id: "e1", ClusterId: "acme-prod", Reason: "accepted", ExpireTime: nil}),
	}
	events = append(events, b.JobEnded(store.JobEnded{Cluster: c, Job: &storagev1.JobRecord{ScanId: scanID[:], State: fleetscanv1.JobState_JOB_STATE_SUCCEEDED,
		Findings: &fleetscanv1.SeverityCounts{}}, New: []*workerv1.Finding{bad}}, []*storagev1.NotifierRecord{n})...)
	for _, e := range events {
		msg, err := SlackMessage(e.Record.Event)
		if err != nil {
			t.Fatalf("%v: %v", e.Record.EventType, err)
		}
		var body struct{ Text string }
		if err := json.Unmarshal(msg, &body); err != nil || !strings.Contains(body.Text, "*fleetscan*") {
			t.Errorf("%v: %s %v", e.Record.EventType, msg, err)
		}
		if strings.ContainsAny(strings.ReplaceAll(strings.ReplaceAll(strings.ReplaceAll(body.Text, "&amp;", ""), "&lt;", ""), "&gt;", ""), "<>&") {
			t.Errorf("%v: markup not escaped: %s", e.Record.EventType, body.Text)
		}
	}
	if _, err := SlackMessage([]byte(`{"type":"com.example.other","data":{}}`)); err == nil {
		t.Error("an unknown event type made a Slack message")
	}
}

// TestFairShare: a notifier with many deliveries due does not crowd out
// the others' in a round.
func TestFairShare(t *testing.T) {
	var due []store.Delivery
	for i := range 10 {
		due = append(due, store.Delivery{ID: ulid.ULID{byte(i)}, Record: &storagev1.DeliveryRecord{NotifierId: "stuck"}})
	}
	due = append(due, store.Delivery{ID: ulid.ULID{100}, Record: &storagev1.DeliveryRecord{NotifierId: "fine"}})
	got := fairShare(due, 2, 64)
	if len(got) != 3 || got[0].ID[0] != 0 || got[1].ID[0] != 1 || got[2].Record.NotifierId != "fine" {
		t.Errorf("fairShare = %v", got)
	}
	if got := fairShare(due, 20, 4); len(got) != 4 {
		t.Errorf("fairShare over the round's total: %d", len(got))
	}
}
