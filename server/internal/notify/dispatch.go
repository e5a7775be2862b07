package notify

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server/internal/store"
)

// Outbox is what the Dispatcher reads and updates.
type Outbox interface {
	DueDeliveries(ctx context.Context, nowMs int64, limit int) ([]store.Delivery, int64, error)
	UpdateDelivery(ctx context.Context, id ulid.ULID, change func(*storagev1.DeliveryRecord)) (*storagev1.DeliveryRecord, error)
	ListNotifiers(ctx context.Context, keep func(*storagev1.NotifierRecord) bool) ([]*storagev1.NotifierRecord, error)
}

// Dispatcher delivers the outbox: each due delivery is attempted, and
// tried again with exponential backoff until its receiver takes it, it is
// refused for good, or RetryFor has passed since the event. A delivery
// is marked delivered only after its receiver answered 2xx, so a server
// killed between the two sends it again, with the same id: at least once.
type Dispatcher struct {
	Outbox Outbox
	Sender *Sender
	Log    *slog.Logger
	Now    func() time.Time
	// RetryFor is how long an event is tried (default a day): a receiver
	// down for less gets everything once it is back.
	RetryFor time.Duration
	// MinBackoff and MaxBackoff bound the wait between attempts (default
	// 2 s and 5 min); it doubles from one attempt to the next, ±20%.
	MinBackoff, MaxBackoff time.Duration
	// Parallel is how many deliveries are attempted at once (default 4).
	Parallel int
	// OnAttempt, if set, hears of each attempt's outcome (metrics).
	OnAttempt func(fleetscanv1.DeliveryState)

	wakeOnce sync.Once
	wake     chan struct{}
}

func (d *Dispatcher) init() {
	d.wakeOnce.Do(func() {
		d.wake = make(chan struct{}, 1)
		if d.Now == nil {
			d.Now = time.Now
		}
		if d.RetryFor <= 0 {
			d.RetryFor = 24 * time.Hour
		}
		if d.MinBackoff <= 0 {
			d.MinBackoff = 2 * time.Second
		}
		if d.MaxBackoff <= 0 {
			d.MaxBackoff = 5 * time.Minute
		}
		if d.Parallel <= 0 {
			d.Parallel = 4
		}
		if d.Log == nil {
			d.Log = slog.New(slog.DiscardHandler)
		}
	})
}

// Wake tells the Dispatcher that deliveries were added.
func (d *Dispatcher) Wake() {
	d.init()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// maxIdle is the longest the Dispatcher sleeps without a wake: it also
// looks on its own, in case a wake was missed.
const maxIdle = 30 * time.Second

// Run delivers until ctx ends.
func (d *Dispatcher) Run(ctx context.Context) {
	d.init()
	for {
		wait := maxIdle
		due, next, err := d.Outbox.DueDeliveries(ctx, d.Now().UnixMilli(), 1000)
		due = fairShare(due, perNotifier, perRound)
		if err != nil {
			d.Log.Error("read the outbox", "err", err)
		} else if len(due) > 0 {
			wait = 0
			if !d.attempt(ctx, due) {
				// The store refused the results: look again in a while,
				// not at once, or a failing disk would be spun on.
				wait = time.Second
			}
		} else if next > 0 {
			wait = min(wait, time.Until(time.UnixMilli(next)))
		}
		if wait <= 0 {
			if ctx.Err() != nil {
				return
			}
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-d.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// A round attempts at most perRound deliveries, at most perNotifier of
// each notifier's: a receiver that hangs until the timeout holds up its
// own events, not everybody's.
const (
	perRound    = 64
	perNotifier = 2
)

// fairShare keeps, in order, at most per deliveries of each notifier and
// at most total in all.
func fairShare(due []store.Delivery, per, total int) []store.Delivery {
	taken := map[string]int{}
	out := due[:0:0]
	for _, d := range due {
		if len(out) == total {
			break
		}
		if taken[d.Record.NotifierId] < per {
			taken[d.Record.NotifierId]++
			out = append(out, d)
		}
	}
	return out
}

// attempt tries each delivery once, Parallel at a time, and reports
// whether every result was recorded.
func (d *Dispatcher) attempt(ctx context.Context, due []store.Delivery) bool {
	notifiers, err := d.Outbox.ListNotifiers(ctx, nil)
	if err != nil {
		d.Log.Error("read the notifiers", "err", err)
		return false
	}
	byID := map[string]*storagev1.NotifierRecord{}
	for _, n := range notifiers {
		byID[n.Id] = n
	}
	sem := make(chan struct{}, d.Parallel)
	var wg sync.WaitGroup
	var unrecorded atomic.Int32
	for _, dl := range due {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if !d.one(ctx, dl, byID[dl.Record.NotifierId]) {
				unrecorded.Add(1)
			}
		}()
	}
	wg.Wait()
	return unrecorded.Load() == 0
}

// one attempts a delivery and records the result; false when the store
// could not record it.
func (d *Dispatcher) one(ctx context.Context, dl store.Delivery, n *storagev1.NotifierRecord) bool {
	var r Result
	if n == nil {
		r = Result{Err: fmt.Errorf("notifier deleted"), Permanent: true}
	} else {
		r = d.Sender.Send(ctx, n, dl.ID.String(), dl.Record.Event)
		if ctx.Err() != nil && r.Err != nil {
			return true // shutting down: the attempt does not count
		}
	}
	now := d.Now()
	rec, err := d.Outbox.UpdateDelivery(context.WithoutCancel(ctx), dl.ID, func(rec *storagev1.DeliveryRecord) {
		Record(rec, r, now, d.RetryFor, d.backoff)
	})
	if err != nil {
		d.Log.Error("record a delivery attempt", "delivery", dl.ID.String(), "err", err)
		return false
	}
	if d.OnAttempt != nil {
		d.OnAttempt(rec.State)
	}
	switch rec.State {
	case fleetscanv1.DeliveryState_DELIVERY_STATE_FAILED:
		d.Log.Warn("gave up a notification", "delivery", dl.ID.String(), "notifier", rec.NotifierId, "attempts", rec.Attempts, "err", rec.LastError)
	case fleetscanv1.DeliveryState_DELIVERY_STATE_PENDING:
		d.Log.Info("a notification failed; it is tried again", "delivery", dl.ID.String(), "notifier", rec.NotifierId,
			"attempts", rec.Attempts, "next", time.UnixMilli(rec.NextAttemptMs).UTC().Format(time.RFC3339), "err", rec.LastError)
	}
	return true
}

// Record writes an attempt's result into a delivery: delivered, given up,
// or due again after backoff(attempts). A delivery that is no longer
// pending was ended while the attempt was under way (its notifier
// deleted): it stays as it ended, rather than coming back to life.
func Record(rec *storagev1.DeliveryRecord, r Result, now time.Time, retryFor time.Duration, backoff func(attempts int32) time.Duration) {
	if rec.State != fleetscanv1.DeliveryState_DELIVERY_STATE_PENDING {
		return
	}
	rec.Attempts++
	rec.LastAttemptMs, rec.LastStatus = now.UnixMilli(), int32(r.Status)
	rec.LastError = ""
	if r.Err != nil {
		rec.LastError = r.Err.Error()
	}
	switch {
	case r.Err == nil:
		rec.State, rec.DeliveredMs, rec.NextAttemptMs = fleetscanv1.DeliveryState_DELIVERY_STATE_DELIVERED, now.UnixMilli(), 0
	case r.Permanent:
		rec.State, rec.NextAttemptMs = fleetscanv1.DeliveryState_DELIVERY_STATE_FAILED, 0
	default:
		next := now.Add(backoff(rec.Attempts))
		if next.Sub(time.UnixMilli(rec.CreateMs)) > retryFor {
			rec.State, rec.NextAttemptMs = fleetscanv1.DeliveryState_DELIVERY_STATE_FAILED, 0
			rec.LastError = fmt.Sprintf("gave up after %d attempts in %v: %s", rec.Attempts, retryFor, rec.LastError)
			return
		}
		rec.State, rec.NextAttemptMs = fleetscanv1.DeliveryState_DELIVERY_STATE_PENDING, next.UnixMilli()
	}
}

// backoff is the wait after the nth failed attempt: MinBackoff doubled
// n-1 times, at most MaxBackoff, ±20% so that receivers coming back are
// not hit by every sender at once.
func (d *Dispatcher) backoff(attempts int32) time.Duration {
	b := d.MinBackoff
	for i := int32(1); i < attempts && b < d.MaxBackoff; i++ {
		b *= 2
	}
	b = min(b, d.MaxBackoff)
	return time.Duration(float64(b) * (0.8 + 0.4*rand.Float64()))
}
