package webhook_test

import (
	"testing"

	"github.com/fleetscan/fleetscan/client/webhook"
)

// TestSignVector: the signature is the Standard Webhooks one, checked
// against a value computed apart from this code, with
//
//	printf 'msg_1.1700000000.{"a":1}' | openssl dgst -sha256 -hmac 'fleetscan-test-key-0123456789abc' -binary | base64
func TestSignVector(t *testing.T) {
	key, err := webhook.ParseSecret(webhook.SecretPrefix + "ZmxlZXRzY2FuLXRlc3Qta2V5LTAxMjM0NTY3ODlhYmM=") // base64 of the key
	if err != nil {
		t.Fatal(err)
	}
	if string(key) != "fleetscan-test-key-0123456789abc" {
		t.Fatalf("ParseSecret = %q", key)
	}
	if got, want := webhook.Sign(key, "msg_1", 1700000000, []byte(`{"a":1}`)), "v1,0HThZaRYzd12isLG1mHzzxyqaxANaarTIlhc0yKyRko="; got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}
