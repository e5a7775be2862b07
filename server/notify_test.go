package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/fleetscan/fleetscan/client"
	"github.com/fleetscan/fleetscan/client/webhook"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server"
	"github.com/fleetscan/fleetscan/server/internal/notify"
	"github.com/fleetscan/fleetscan/worker/checks"
	"github.com/fleetscan/fleetscan/worker/policy"
)

// receiver is a webhook receiver that can fail, hang and go away: it
// records every request it got, verified against the notifier's secret.
type receiver struct {
	t      *testing.T
	mu     sync.Mutex
	secret string
	addr   string
	srv    *http.Server
	got    []received
	// fail answers 500 to this many more requests; hang holds this many
	// more past the sender's timeout.
	fail, hang int
	hung       chan struct{}
	// now is the clock signatures are checked against: the server's.
	now func() time.Time
}

type received struct {
	id, ceType, subject string
	body                []byte
	answered            int
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, addr: "127.0.0.1:0", hung: make(chan struct{}), now: time.Now}
	r.start()
	t.Cleanup(func() { close(r.hung); r.stop() })
	return r
}

func (r *receiver) start() {
	r.t.Helper()
	var lis net.Listener
	var err error
	// The address of the first start, reused: a receiver that restarts.
	for range 100 {
		if lis, err = net.Listen("tcp", r.addr); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatal(err)
	}
	r.addr = lis.Addr().String()
	r.srv = &http.Server{Handler: r}
	go r.srv.Serve(lis)
}

func (r *receiver) stop() {
	r.srv.Close()
}

func (r *receiver) url() string { return "http://" + r.addr + "/hooks/fleetscan" }

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	var ev struct{ Type, Subject string }
	if err := json.Unmarshal(body, &ev); err != nil {
		r.t.Errorf("a body that is not JSON: %v: %q", err, body)
	}
	r.mu.Lock()
	if req.Header.Get("Content-Type") != "application/cloudevents+json" {
		r.t.Errorf("Content-Type %q", req.Header.Get("Content-Type"))
	}
	if err := webhook.Verify(r.secret, req.Header, body, r.now(), 5*time.Minute); err != nil {
		r.t.Errorf("delivery %s: %v", req.Header.Get("webhook-id"), err)
	}
	rec := received{id: req.Header.Get("webhook-id"), ceType: ev.Type, subject: ev.Subject, body: body, answered: http.StatusNoContent}
	hang := r.hang > 0
	switch {
	case hang:
		r.hang--
		rec.answered = 0
	case r.fail > 0:
		r.fail--
		rec.answered = http.StatusInternalServerError
	}
	r.got = append(r.got, rec)
	r.mu.Unlock()
	if hang {
		select {
		case <-r.hung:
		case <-req.Context().Done():
		}
		return
	}
	w.WriteHeader(rec.answered)
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// failingSource cannot read its cluster: its jobs fail.
type failingSource struct{}

func (failingSource) Collect(context.Context, policy.Selection) (*checks.Inventory, error) {
	return nil, errors.New("list pods: the API server refused the worker's token")
}

func (failingSource) KubernetesVersion(context.Context) (string, error) { return "v1.33.0", nil }

// waitDeliveries polls the deliveries until done says they are as wanted.
func waitDeliveries(t *testing.T, c *client.Client, what string, done func([]*fleetscanv1.Delivery) bool) []*fleetscanv1.Delivery {
	t.Helper()
	// A generous bound, to fail with the state rather than hang: the
	// deliveries wait on events, not on a clock.
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := c.NotifierService.ListDeliveries(context.Background(), &fleetscanv1.ListDeliveriesRequest{PageSize: 1000})
		if err == nil && done(resp.Deliveries) {
			return resp.Deliveries
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v; deliveries: %v", what, err, resp.GetDeliveries())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNotificationsAtLeastOnce: events of scans reach a receiver that
// fails, hangs, goes away while the server restarts, and comes back:
// every event arrives, signed, and an event that arrives twice has the
// same id and body both times.
func TestNotificationsAtLeastOnce(t *testing.T) {
	rcv := newReceiver(t)
	ts := &testServer{t: t, dataDir: t.TempDir()}
	ts.cfg = func(c *server.Config) {
		c.NotifyBackoff = [2]time.Duration{20 * time.Millisecond, 200 * time.Millisecond}
		c.NotifyAttemptTimeout = 500 * time.Millisecond
		c.MetricsListen = "127.0.0.1:0"
	}
	ts.start()
	t.Cleanup(ts.shutdown)
	op := ts.client(ts.operatorToken())
	ctx := context.Background()

	created, err := op.NotifierService.CreateNotifier(ctx, &fleetscanv1.CreateNotifierRequest{Notifier: &fleetscanv1.Notifier{
		Name: "ops-hook", Kind: fleetscanv1.NotifierKind_NOTIFIER_KIND_WEBHOOK, Url: rcv.url(), ScoreDrop: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(created.Secret, webhook.SecretPrefix) || created.Notifier.MinSeverity != fleetscanv1.Severity_SEVERITY_HIGH {
		t.Fatalf("created %v with secret %q", created.Notifier, created.Secret)
	}
	rcv.mu.Lock()
	rcv.secret, rcv.fail, rcv.hang = created.Secret, 3, 1
	rcv.mu.Unlock()

	prod := &switchSource{}
	prod.set(filepath.Join(demoClusters, "acme-prod"))
	ts.startWorkerOn("acme-prod", register(t, op, "acme-prod", "acme", nil), prod)
	ts.startWorker("globex-prod", register(t, op, "globex-prod", "globex", nil), filepath.Join(demoClusters, "globex-prod"))
	ts.startWorkerOn("acme-broken", register(t, op, "acme-broken", "acme", nil), failingSource{})
	for _, id := range []string{"acme-prod", "globex-prod", "acme-broken"} {
		waitConnected(t, op, id)
	}
	scanClusters(t, ts, "acme-prod", "globex-prod", "acme-broken")
	first := waitDeliveries(t, op, "the first scan's events delivered", func(ds []*fleetscanv1.Delivery) bool {
		return len(ds) == 3 && !slices.ContainsFunc(ds, func(d *fleetscanv1.Delivery) bool {
			return d.State != fleetscanv1.DeliveryState_DELIVERY_STATE_DELIVERED
		})
	})
	retried := 0
	for _, d := range first {
		retried += int(d.Attempts) - 1
	}
	if retried < 4 {
		t.Errorf("%d attempts after the first, want at least the 3 failures and 1 timeout: %v", retried, first)
	}

	// The receiver goes away; acme-prod gets worse; the server restarts
	// with the events not delivered.
	rcv.stop()
	prod.set(filepath.Join(demoClusters, "acme-dev"))
	scanClusters(t, ts, "acme-prod")
	waitDeliveries(t, op, "the second scan's events tried", func(ds []*fleetscanv1.Delivery) bool {
		tried := 0
		for _, d := range ds {
			if d.State == fleetscanv1.DeliveryState_DELIVERY_STATE_PENDING && d.Attempts > 0 {
				tried++
			}
		}
		return tried == 2
	})
	ts.shutdown()
	ts.start()
	rcv.start()
	all := waitDeliveries(t, op, "every event delivered", func(ds []*fleetscanv1.Delivery) bool {
		return len(ds) == 5 && !slices.ContainsFunc(ds, func(d *fleetscanv1.Delivery) bool {
			return d.State != fleetscanv1.DeliveryState_DELIVERY_STATE_DELIVERED
		})
	})

	// The restarted server's metrics count the two it delivered.
	resp, err := http.Get("http://" + ts.srv.MetricsAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, line := range []string{`fleetscan_notification_attempts_total{outcome="delivered"} 2`, `fleetscan_notification_attempts_total{outcome="failed"} 0`, "fleetscan_notifications_pending 0"} {
		if !strings.Contains(string(page), line+"\n") {
			t.Errorf("metrics lack %q", line)
		}
	}

	// Every delivery arrived; an id that came twice came with the same
	// body; nothing came that is not a delivery.
	byID := map[string][]byte{}
	var kinds []string
	for _, r := range rcv.requests() {
		if prev, ok := byID[r.id]; ok {
			if !bytes.Equal(prev, r.body) {
				t.Errorf("delivery %s came twice with different bodies:\n%s\n%s", r.id, prev, r.body)
			}
			continue
		}
		byID[r.id] = r.body
		kinds = append(kinds, r.ceType+" "+r.subject)
	}
	for _, d := range all {
		if _, ok := byID[d.Id]; !ok {
			t.Errorf("delivery %s (%s) never reached the receiver", d.Id, d.Summary)
		}
	}
	if len(byID) != len(all) {
		t.Errorf("the receiver got %d distinct ids, the server made %d deliveries", len(byID), len(all))
	}
	slices.Sort(kinds)
	want := []string{"dev.fleetscan.findings.new acme-prod", "dev.fleetscan.findings.new acme-prod", "dev.fleetscan.findings.new globex-prod",
		"dev.fleetscan.job.failed acme-broken", "dev.fleetscan.score.dropped acme-prod"}
	if !slices.Equal(kinds, want) {
		t.Errorf("events %q\nwant   %q", kinds, want)
	}
	var failed notify.JobFailedData
	for _, body := range byID {
		var ev struct {
			Type string
			Data json.RawMessage
		}
		json.Unmarshal(body, &ev)
		if ev.Type == "dev.fleetscan.job.failed" {
			json.Unmarshal(ev.Data, &failed)
		}
	}
	if failed.State != "FAILED" || !strings.Contains(failed.Error, "refused the worker's token") {
		t.Errorf("job.failed says %+v", failed)
	}
}

// TestNotifierWatch: a worker offline longer than the notifier allows and
// an exception about to expire are each reported once, however often the
// server looks and across a restart.
func TestNotifierWatch(t *testing.T) {
	rcv := newReceiver(t)
	clk := &clock{t: time.Now()}
	rcv.now = clk.Now
	ts := &testServer{t: t, dataDir: t.TempDir()}
	ts.cfg = func(c *server.Config) {
		c.Now = clk.Now
		c.NotifyWatch = 10 * time.Millisecond
		c.NotifyBackoff = [2]time.Duration{20 * time.Millisecond, 200 * time.Millisecond}
	}
	ts.start()
	t.Cleanup(ts.shutdown)
	op := ts.client(ts.operatorToken())
	ctx := context.Background()
	created, err := op.NotifierService.CreateNotifier(ctx, &fleetscanv1.CreateNotifierRequest{Notifier: &fleetscanv1.Notifier{
		Name: "watch", Kind: fleetscanv1.NotifierKind_NOTIFIER_KIND_WEBHOOK, Url: rcv.url(),
		Events:       []fleetscanv1.EventType{fleetscanv1.EventType_EVENT_TYPE_WORKER_OFFLINE, fleetscanv1.EventType_EVENT_TYPE_EXCEPTION_EXPIRING},
		OfflineAfter: durationpb.New(10 * time.Minute)}})
	if err != nil {
		t.Fatal(err)
	}
	rcv.mu.Lock()
	rcv.secret = created.Secret
	rcv.mu.Unlock()
	stop := ts.startWorker("acme-prod", register(t, op, "acme-prod", "acme", nil), filepath.Join(demoClusters, "acme-prod"))
	waitConnected(t, op, "acme-prod")
	if _, err := op.ExceptionService.CreateException(ctx, &fleetscanv1.CreateExceptionRequest{
		Exception: &fleetscanv1.Exception{ClusterId: "acme-prod", CheckId: "POD-001", Reason: "batch jobs need it until the migration"}, Ttl: durationpb.New(48 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	waitDeliveries(t, op, "the expiring exception's event", func(ds []*fleetscanv1.Delivery) bool {
		return len(ds) == 1 && ds[0].EventType == fleetscanv1.EventType_EVENT_TYPE_EXCEPTION_EXPIRING && ds[0].State == fleetscanv1.DeliveryState_DELIVERY_STATE_DELIVERED
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// Connected until the worker's session ended on the server.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		c, err := op.ClusterService.GetCluster(ctx, &fleetscanv1.GetClusterRequest{ClusterId: "acme-prod"})
		if err == nil && !c.Cluster.GetWorker().GetConnected() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the worker still shows connected: %v %v", c, err)
		}
	}
	clk.Advance(9 * time.Minute)
	// Within the threshold, nothing; past it, one event.
	ds := waitDeliveries(t, op, "the watcher's looks", func(ds []*fleetscanv1.Delivery) bool { return len(ds) == 1 })
	clk.Advance(2 * time.Minute)
	waitDeliveries(t, op, "the offline worker's event", func(ds []*fleetscanv1.Delivery) bool {
		return len(ds) == 2 && ds[0].EventType == fleetscanv1.EventType_EVENT_TYPE_WORKER_OFFLINE && ds[0].State == fleetscanv1.DeliveryState_DELIVERY_STATE_DELIVERED
	})
	_ = ds
	// Later looks, and a restart, send neither again.
	ts.shutdown()
	clk.Advance(20 * time.Minute)
	ts.start()
	op = ts.client(ts.operatorToken())
	time.Sleep(200 * time.Millisecond) // twenty looks of the watcher, at least
	resp, err := op.NotifierService.ListDeliveries(ctx, &fleetscanv1.ListDeliveriesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Deliveries) != 2 {
		t.Errorf("after more looks and a restart: %d deliveries, want the 2: %v", len(resp.Deliveries), resp.Deliveries)
	}
	if got := len(rcv.requests()); got != 2 {
		t.Errorf("the receiver got %d requests, want 2", got)
	}
}

// TestNotifierAccess: a tenant manages its own notifiers only, may not
// reach the server's network, and sees only its own deliveries.
func TestNotifierAccess(t *testing.T) {
	ts := newTestServer(t)
	op := ts.client(ts.operatorToken())
	ctx := context.Background()
	opN, err := op.NotifierService.CreateNotifier(ctx, &fleetscanv1.CreateNotifierRequest{Notifier: &fleetscanv1.Notifier{
		Name: "ops", Kind: fleetscanv1.NotifierKind_NOTIFIER_KIND_SLACK, Url: "https://hooks.slack.example/services/T000/B000/SECRETPART"}})
	if err != nil {
		t.Fatal(err)
	}
	if opN.Secret != "" || strings.Contains(opN.Notifier.Url, "SECRETPART") {
		t.Errorf("a Slack notifier: secret %q, url %q shown", opN.Secret, opN.Notifier.Url)
	}
	acme := ts.client(tenantToken(t, op, "acme"))
	for _, tc := range []struct {
		url  string
		code codes.Code
	}{
		{"http://127.0.0.1:9/x", codes.InvalidArgument},
		{"https://127.0.0.1/x", codes.InvalidArgument},
		{"https://169.254.169.254/latest/meta-data", codes.InvalidArgument},
		{"https://10.0.0.8/hook", codes.InvalidArgument},
		{"https://localhost/hook", codes.InvalidArgument},
		{"https://[::1]/hook", codes.InvalidArgument},
		{"ftp://example.com/hook", codes.InvalidArgument},
		{"https://hooks.acme.example/fleetscan", codes.OK},
	} {
		_, err := acme.NotifierService.CreateNotifier(ctx, &fleetscanv1.CreateNotifierRequest{Notifier: &fleetscanv1.Notifier{
			Name: fmt.Sprintf("acme-%d", len(tc.url)), Kind: fleetscanv1.NotifierKind_NOTIFIER_KIND_WEBHOOK, Url: tc.url}})
		if status.Code(err) != tc.code {
			t.Errorf("tenant's notifier to %s: %v, want %v", tc.url, err, tc.code)
		}
	}
	if _, err := acme.NotifierService.CreateNotifier(ctx, &fleetscanv1.CreateNotifierRequest{Notifier: &fleetscanv1.Notifier{
		Name: "other", Kind: fleetscanv1.NotifierKind_NOTIFIER_KIND_WEBHOOK, Url: "https://hooks.acme.example/x", Tenant: "globex"}}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("a tenant's notifier of another tenant: %v", err)
	}
	list, err := acme.NotifierService.ListNotifiers(ctx, &fleetscanv1.ListNotifiersRequest{})
	if err != nil || len(list.Notifiers) != 1 || list.Notifiers[0].Tenant != "acme" || list.Notifiers[0].OwnerTenant != "acme" {
		t.Fatalf("acme lists %v, %v; want its one notifier", list, err)
	}
	if _, err := acme.NotifierService.DeleteNotifier(ctx, &fleetscanv1.DeleteNotifierRequest{NotifierId: opN.Notifier.Id}); status.Code(err) != codes.NotFound {
		t.Errorf("acme deletes the operators' notifier: %v", err)
	}
	if _, err := acme.NotifierService.TestNotifier(ctx, &fleetscanv1.TestNotifierRequest{NotifierId: opN.Notifier.Id}); status.Code(err) != codes.NotFound {
		t.Errorf("acme tests the operators' notifier: %v", err)
	}
	if _, err := acme.NotifierService.ListDeliveries(ctx, &fleetscanv1.ListDeliveriesRequest{NotifierId: opN.Notifier.Id}); status.Code(err) != codes.NotFound {
		t.Errorf("acme lists the deliveries of the operators' notifier: %v", err)
	}
	all, err := op.NotifierService.ListNotifiers(ctx, &fleetscanv1.ListNotifiersRequest{})
	if err != nil || len(all.Notifiers) != 2 {
		t.Errorf("the operator lists %v, %v; want both", all, err)
	}
	for _, bad := range []*fleetscanv1.Notifier{
		{Name: "Bad Name", Kind: fleetscanv1.NotifierKind_NOTIFIER_KIND_WEBHOOK, Url: "https://x.example/"},
		{Name: "nokind", Url: "https://x.example/"},
		{Name: "drop", Kind: fleetscanv1.NotifierKind_NOTIFIER_KIND_WEBHOOK, Url: "https://x.example/", ScoreDrop: 101},
		{Name: "offline", Kind: fleetscanv1.NotifierKind_NOTIFIER_KIND_WEBHOOK, Url: "https://x.example/", OfflineAfter: durationpb.New(time.Second)},
		{Name: "test", Kind: fleetscanv1.NotifierKind_NOTIFIER_KIND_WEBHOOK, Url: "https://x.example/", Events: []fleetscanv1.EventType{fleetscanv1.EventType_EVENT_TYPE_TEST}},
		{Name: "ops", Kind: fleetscanv1.NotifierKind_NOTIFIER_KIND_WEBHOOK, Url: "https://x.example/"},
	} {
		if _, err := op.NotifierService.CreateNotifier(ctx, &fleetscanv1.CreateNotifierRequest{Notifier: bad}); status.Code(err) != codes.InvalidArgument && status.Code(err) != codes.AlreadyExists {
			t.Errorf("notifier %v: %v, want refused", bad, err)
		}
	}
}

// TestTestNotifier: a test event is sent at once, signed, and recorded;
// a receiver that refuses it makes it FAILED with the receiver's answer.
func TestTestNotifier(t *testing.T) {
	rcv := newReceiver(t)
	ts := newTestServer(t)
	op := ts.client(ts.operatorToken())
	ctx := context.Background()
	created, err := op.NotifierService.CreateNotifier(ctx, &fleetscanv1.CreateNotifierRequest{Notifier: &fleetscanv1.Notifier{
		Name: "hook", Kind: fleetscanv1.NotifierKind_NOTIFIER_KIND_WEBHOOK, Url: rcv.url()}})
	if err != nil {
		t.Fatal(err)
	}
	rcv.mu.Lock()
	rcv.secret = created.Secret
	rcv.mu.Unlock()
	resp, err := op.NotifierService.TestNotifier(ctx, &fleetscanv1.TestNotifierRequest{NotifierId: created.Notifier.Id})
	if err != nil || resp.Delivery.State != fleetscanv1.DeliveryState_DELIVERY_STATE_DELIVERED || resp.Delivery.LastStatus != http.StatusNoContent {
		t.Fatalf("test: %v %v", resp, err)
	}
	if got := rcv.requests(); len(got) != 1 || got[0].ceType != "dev.fleetscan.test" || got[0].id != resp.Delivery.Id {
		t.Errorf("the receiver got %v", got)
	}
	rcv.mu.Lock()
	rcv.fail = 1
	rcv.mu.Unlock()
	resp, err = op.NotifierService.TestNotifier(ctx, &fleetscanv1.TestNotifierRequest{NotifierId: created.Notifier.Id})
	if err != nil || resp.Delivery.State != fleetscanv1.DeliveryState_DELIVERY_STATE_FAILED || resp.Delivery.LastStatus != 500 || !strings.Contains(resp.Delivery.LastError, "500") {
		t.Fatalf("test to a failing receiver: %v %v", resp, err)
	}
	list, err := op.NotifierService.ListDeliveries(ctx, &fleetscanv1.ListDeliveriesRequest{NotifierId: created.Notifier.Id, State: fleetscanv1.DeliveryState_DELIVERY_STATE_FAILED})
	if err != nil || len(list.Deliveries) != 1 || list.Deliveries[0].Id != resp.Delivery.Id {
		t.Errorf("failed deliveries: %v %v", list, err)
	}
	del, err := op.NotifierService.DeleteNotifier(ctx, &fleetscanv1.DeleteNotifierRequest{NotifierId: created.Notifier.Id})
	if err != nil || del.AbandonedDeliveries != 0 {
		t.Errorf("delete: %v %v", del, err)
	}
}

func newTestServer(t *testing.T) *testServer {
	t.Helper()
	ts := &testServer{t: t, dataDir: t.TempDir()}
	ts.start()
	t.Cleanup(ts.shutdown)
	return ts
}

// tenantToken mints a token of a tenant.
func tenantToken(t *testing.T, op *client.Client, tenant string) string {
	t.Helper()
	resp, err := op.TokenService.CreateToken(context.Background(), &fleetscanv1.CreateTokenRequest{Name: tenant + "-notify", Role: fleetscanv1.TokenRole_TOKEN_ROLE_TENANT, Tenant: tenant})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Secret
}
