package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/fleetscan/fleetscan/client/webhook"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
)

// notifyCheck is a webhook receiver for the harness's notifier: it
// verifies every request and keeps each id's bodies, so that a round can
// check that every delivery the server made arrived, and duplicates only
// with their own id and body.
type notifyCheck struct {
	secret string
	srv    *http.Server
	url    string

	mu      sync.Mutex
	bodies  map[string][][]byte
	types   map[string]string
	refused []string
}

func startNotifyCheck() (*notifyCheck, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	n := &notifyCheck{url: "http://" + lis.Addr().String() + "/hook", bodies: map[string][][]byte{}, types: map[string]string{}}
	n.srv = &http.Server{Handler: n, ReadHeaderTimeout: 10 * time.Second}
	go n.srv.Serve(lis)
	return n, nil
}

func (n *notifyCheck) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := webhook.Verify(n.secret, r.Header, body, time.Now(), webhook.DefaultTolerance); err != nil {
		n.refused = append(n.refused, err.Error())
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	e, err := webhook.Parse(body)
	if err != nil {
		n.refused = append(n.refused, err.Error())
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	id := r.Header.Get(webhook.HeaderID)
	n.bodies[id] = append(n.bodies[id], body)
	n.types[id] = e.Type
	w.WriteHeader(http.StatusNoContent)
}

func (n *notifyCheck) close() { n.srv.Close() }

// createNotifier makes the notifier of the run: new findings of any
// severity, and failed jobs.
func (h *run) createNotifier(ctx context.Context) error {
	resp, err := h.op.NotifierService.CreateNotifier(ctx, &fleetscanv1.CreateNotifierRequest{Notifier: &fleetscanv1.Notifier{
		Name: "loadgen-" + h.runID, Kind: fleetscanv1.NotifierKind_NOTIFIER_KIND_WEBHOOK, Url: h.notify.url,
		MinSeverity: fleetscanv1.Severity_SEVERITY_INFO,
		Events:      []fleetscanv1.EventType{fleetscanv1.EventType_EVENT_TYPE_NEW_FINDINGS, fleetscanv1.EventType_EVENT_TYPE_JOB_FAILED},
	}})
	if err != nil {
		return fmt.Errorf("create the notifier: %w", err)
	}
	h.notify.mu.Lock()
	h.notify.secret = resp.Secret
	h.notify.mu.Unlock()
	return nil
}

// Notifications is what a round's notifications came to.
type Notifications struct {
	// Deliveries the server made in the round, new-findings events among
	// them, and how long after the scan ended the last was delivered.
	Deliveries, NewFindings int
	Drained                 time.Duration
	// Duplicates: requests that carried an id already received, with the
	// same body.
	Duplicates int
}

// checkNotifications waits until every delivery is made, then checks the
// round's: each one received, one new-findings event for each cluster
// with new findings in the round (all of them in the first, those with
// churn after), duplicates only with their own body, no request refused.
func (h *run) checkNotifications(ctx context.Context, round int, seen map[string]bool) (Notifications, error) {
	start := time.Now()
	var all []*fleetscanv1.Delivery
	for {
		all = all[:0]
		pending := 0
		token := ""
		for {
			resp, err := h.op.NotifierService.ListDeliveries(ctx, &fleetscanv1.ListDeliveriesRequest{PageSize: 1000, PageToken: token})
			if err != nil {
				return Notifications{}, fmt.Errorf("list deliveries: %w", err)
			}
			for _, d := range resp.Deliveries {
				switch d.State {
				case fleetscanv1.DeliveryState_DELIVERY_STATE_PENDING:
					pending++
				case fleetscanv1.DeliveryState_DELIVERY_STATE_FAILED:
					return Notifications{}, fmt.Errorf("delivery %s failed: %s", d.Id, d.LastError)
				}
			}
			all = append(all, resp.Deliveries...)
			if token = resp.NextPageToken; token == "" {
				break
			}
		}
		if pending == 0 {
			break
		}
		if time.Since(start) > h.cfg.Timeout {
			return Notifications{}, fmt.Errorf("%d deliveries still pending after %v", pending, h.cfg.Timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	n := Notifications{Drained: time.Since(start)}
	h.notify.mu.Lock()
	defer h.notify.mu.Unlock()
	if len(h.notify.refused) > 0 {
		return n, fmt.Errorf("the receiver refused %d requests, the first: %s", len(h.notify.refused), h.notify.refused[0])
	}
	clusters := map[string]int{}
	for _, d := range all {
		if seen[d.Id] {
			continue // an earlier round's
		}
		seen[d.Id] = true
		n.Deliveries++
		bodies := h.notify.bodies[d.Id]
		if len(bodies) == 0 {
			return n, fmt.Errorf("delivery %s (%s) never reached the receiver", d.Id, d.Summary)
		}
		for _, b := range bodies[1:] {
			if !bytes.Equal(b, bodies[0]) {
				return n, fmt.Errorf("delivery %s came twice with different bodies", d.Id)
			}
			n.Duplicates++
		}
		if d.EventType == fleetscanv1.EventType_EVENT_TYPE_NEW_FINDINGS {
			n.NewFindings++
			clusters[d.ClusterId]++
		}
	}
	for i := range h.fleet.clusters {
		want := 0
		if round == 1 || h.fleet.churnOf(i) > 0 {
			want = 1
		}
		if id := h.fleet.clusterID(i); clusters[id] != want {
			return n, fmt.Errorf("cluster %s: %d new-findings events in round %d, want %d", id, clusters[id], round, want)
		}
	}
	if len(clusters) > h.fleet.clusters {
		return n, errors.New("new-findings events of clusters not in the fleet")
	}
	return n, nil
}
