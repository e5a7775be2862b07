// Package webhook is for receivers of fleetscan's webhook notifications:
// it verifies a request's Standard Webhooks signature against the
// notifier's secret and decodes its CloudEvent, whose data is one of the
// structs here. The server signs and builds its events with this package,
// so what it sends and what a receiver reads are the same definitions.
//
// A receiver answers 2xx once it has taken an event. Events are delivered
// at least once: an event whose answer was lost comes again with the same
// webhook-id, which is the event's id and the key to ignore it by.
//
//	body, _ := io.ReadAll(r.Body)
//	if err := webhook.Verify(secret, r.Header, body, time.Now(), webhook.DefaultTolerance); err != nil {
//		http.Error(w, err.Error(), http.StatusUnauthorized)
//		return
//	}
//	e, err := webhook.Parse(body)
//	...
//	if d, ok := e.Data.(webhook.NewFindingsData); ok { ... }
//
// fleetscan notifier receive is such a receiver, for trying notifiers out.
package webhook
