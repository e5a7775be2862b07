package webhook

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestSign: the signature is the Standard Webhooks one. The expected
// value was computed apart from this code, with
//
//	printf 'msg_1.1700000000.{"a":1}' | openssl dgst -sha256 -hmac 'fleetscan-test-key-0123456789abc' -binary | base64
func TestSign(t *testing.T) {
	key := []byte("fleetscan-test-key-0123456789abc")
	if got, want := Sign(key, "msg_1", 1700000000, []byte(`{"a":1}`)), "v1,0HThZaRYzd12isLG1mHzzxyqaxANaarTIlhc0yKyRko="; got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
	secret := SecretPrefix + "ZmxlZXRzY2FuLXRlc3Qta2V5LTAxMjM0NTY3ODlhYmM=" // base64 of the key
	at := time.Unix(1700000000, 0)
	header := func(id, ts, sig string) http.Header {
		h := http.Header{}
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", ts)
		h.Set("webhook-signature", sig)
		return h
	}
	good := "v1,0HThZaRYzd12isLG1mHzzxyqaxANaarTIlhc0yKyRko="
	for _, tc := range []struct {
		name string
		h    http.Header
		body string
		now  time.Time
		ok   bool
	}{
		{"valid", header("msg_1", "1700000000", good), `{"a":1}`, at, true},
		{"one of several signatures", header("msg_1", "1700000000", "v1,bm90IGl0 "+good), `{"a":1}`, at.Add(4 * time.Minute), true},
		{"body changed", header("msg_1", "1700000000", good), `{"a":2}`, at, false},
		{"another id", header("msg_2", "1700000000", good), `{"a":1}`, at, false},
		{"replayed later", header("msg_1", "1700000000", good), `{"a":1}`, at.Add(6 * time.Minute), false},
		{"no signature", header("msg_1", "1700000000", ""), `{"a":1}`, at, false},
	} {
		err := Verify(secret, tc.h, []byte(tc.body), tc.now, 5*time.Minute)
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if _, printable := NewSecret(); !strings.HasPrefix(printable, SecretPrefix) || len(printable) != len(SecretPrefix)+44 {
		t.Errorf("NewSecret gave %q", printable)
	}
}
