package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fleetscan/fleetscan/client/webhook"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
)

// holdingReceiver is a webhook receiver that holds the first request it
// gets until released, and records every request.
type holdingReceiver struct {
	t       *testing.T
	secret  string
	mu      sync.Mutex
	bodies  map[string][][]byte
	held    chan string // the id of the request held
	release chan struct{}
	once    sync.Once
}

func (r *holdingReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	id := req.Header.Get("webhook-id")
	r.mu.Lock()
	if err := webhook.Verify(r.secret, req.Header, body, time.Now(), 5*time.Minute); err != nil {
		r.t.Errorf("delivery %s: %v", id, err)
	}
	r.bodies[id] = append(r.bodies[id], body)
	r.mu.Unlock()
	first := false
	r.once.Do(func() { first = true })
	if first {
		r.held <- id
		<-r.release
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// TestServerKilledMidDelivery kills the server with SIGKILL while the
// receiver holds a notification, restarts it on the same database, and
// expects every event delivered: the one whose delivery was cut short
// arrives again, with the same id and body, the others once.
func TestServerKilledMidDelivery(t *testing.T) {
	f := newFleet(t, 3, 20)
	rcv := &holdingReceiver{t: t, bodies: map[string][][]byte{}, held: make(chan string, 1), release: make(chan struct{})}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: rcv}
	go srv.Serve(lis)
	t.Cleanup(func() { srv.Close() })
	ctx := context.Background()
	created, err := f.op.NotifierService.CreateNotifier(ctx, &fleetscanv1.CreateNotifierRequest{Notifier: &fleetscanv1.Notifier{
		Name: "ops", Kind: fleetscanv1.NotifierKind_NOTIFIER_KIND_WEBHOOK, Url: "http://" + lis.Addr().String() + "/hook",
		Events: []fleetscanv1.EventType{fleetscanv1.EventType_EVENT_TYPE_NEW_FINDINGS}}})
	if err != nil {
		t.Fatal(err)
	}
	rcv.mu.Lock()
	rcv.secret = created.Secret
	rcv.mu.Unlock()
	for _, id := range f.clusters {
		f.startWorker(id)
	}
	scanID := f.startScan()
	f.waitFor(scanID, "the scan", 60*time.Second, func(s *fleetscanv1.Scan) bool { return s.State == fleetscanv1.ScanState_SCAN_STATE_SUCCEEDED })

	var held string
	select {
	case held = <-rcv.held:
	case <-time.After(time.Minute):
		t.Fatal("no notification reached the receiver")
	}
	f.server.kill()
	close(rcv.release)
	f.startServer()

	var deliveries []*fleetscanv1.Delivery
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		resp, err := f.op.NotifierService.ListDeliveries(ctx, &fleetscanv1.ListDeliveriesRequest{})
		if err == nil && len(resp.Deliveries) == len(f.clusters) && !slices.ContainsFunc(resp.Deliveries, func(d *fleetscanv1.Delivery) bool {
			return d.State != fleetscanv1.DeliveryState_DELIVERY_STATE_DELIVERED
		}) {
			deliveries = resp.Deliveries
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries after the restart: %v %v", resp.GetDeliveries(), err)
		}
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	for _, d := range deliveries {
		bodies := rcv.bodies[d.Id]
		switch {
		case d.Id == held && len(bodies) < 2:
			t.Errorf("the delivery cut short by the kill (%s) came %d time(s), want again after the restart", d.Id, len(bodies))
		case d.Id != held && len(bodies) != 1:
			t.Errorf("delivery %s came %d times, want once", d.Id, len(bodies))
		}
		for _, b := range bodies[1:] {
			if !bytes.Equal(b, bodies[0]) {
				t.Errorf("delivery %s came with different bodies:\n%s\n%s", d.Id, bodies[0], b)
			}
		}
	}
	if len(rcv.bodies) != len(deliveries) {
		t.Errorf("the receiver got %d ids, the server made %d deliveries", len(rcv.bodies), len(deliveries))
	}
}
