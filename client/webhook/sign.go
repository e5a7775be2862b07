package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// SecretPrefix starts a notifier's secret, as in the Standard Webhooks
// scheme: "whsec_" and the key in base64.
const SecretPrefix = "whsec_"

// The headers of the Standard Webhooks scheme that a request carries.
const (
	// HeaderID is the event's id: the same on every attempt.
	HeaderID = "webhook-id"
	// HeaderTimestamp is when the attempt was signed, in Unix seconds.
	HeaderTimestamp = "webhook-timestamp"
	// HeaderSignature is "v1," and the signature; several, separated by
	// spaces, while a secret is rotated.
	HeaderSignature = "webhook-signature"
)

// DefaultTolerance is how far a request's timestamp may be from the
// receiver's clock: older requests are refused as replays.
const DefaultTolerance = 5 * time.Minute

// ParseSecret returns the key of a secret ("whsec_" and base64).
func ParseSecret(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, SecretPrefix))
	if err != nil || !strings.HasPrefix(secret, SecretPrefix) || len(key) == 0 {
		return nil, errors.New("the secret is not whsec_ and base64")
	}
	return key, nil
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
// ("whsec_..."), and that its timestamp is within tolerance of now.
func Verify(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	key, err := ParseSecret(secret)
	if err != nil {
		return err
	}
	id, ts, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
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
