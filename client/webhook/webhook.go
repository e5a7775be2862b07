// Package webhook signs and verifies the notifications a fleetscan server
// sends to webhook receivers, per the Standard Webhooks scheme: headers
// webhook-id (the event's id, the same on every retry: the idempotency
// key), webhook-timestamp (Unix seconds of the attempt) and
// webhook-signature ("v1," and the base64 of HMAC-SHA256 over
// "id.timestamp.body" with the notifier's secret). A receiver written in
// Go verifies a request with Verify; docs/notifications.md shows the same
// in a few lines of other languages.
package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// SecretPrefix starts a webhook secret, as in the Standard Webhooks
// scheme: "whsec_" and the key in base64.
const SecretPrefix = "whsec_"

// NewSecret makes a webhook signing key and its printable form.
func NewSecret() (key []byte, printable string) {
	key = make([]byte, 32)
	rand.Read(key)
	return key, SecretPrefix + base64.StdEncoding.EncodeToString(key)
}

// Sign is the Standard Webhooks signature of a body: "v1," and the base64
// of HMAC-SHA256(key, id + "." + timestamp + "." + body).
func Sign(key []byte, id string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%d.", id, timestamp)
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Verify checks a request's Standard Webhooks headers against the secret
// ("whsec_..."), and that its timestamp is within tolerance of now: what a
// receiver does (fleetscan notifier receive does).
func Verify(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, SecretPrefix))
	if err != nil || !strings.HasPrefix(secret, SecretPrefix) {
		return errors.New("the secret is not whsec_ and base64")
	}
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return errors.New("webhook-id, webhook-timestamp or webhook-signature missing")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("webhook-timestamp %q: not Unix seconds", ts)
	}
	if at := time.Unix(sec, 0); at.Before(now.Add(-tolerance)) || at.After(now.Add(tolerance)) {
		return fmt.Errorf("webhook-timestamp %s is more than %v away from now: a replay, or a clock that is wrong", at.UTC().Format(time.RFC3339), tolerance)
	}
	want := Sign(key, id, sec, body)
	for _, sig := range strings.Fields(sigs) {
		if hmac.Equal([]byte(sig), []byte(want)) {
			return nil
		}
	}
	return errors.New("no signature matches: a wrong secret, or a body changed on the way")
}
