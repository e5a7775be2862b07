package checks

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// TestMayNameCredential holds the prefilter to what it stands for: a name
// it turns away never matches credentialName, so SEC-002 and the
// ConfigMap checks find what they found without it.
func TestMayNameCredential(t *testing.T) {
	named := []string{
		"DB_PASSWORD", "db_passwd", "PWD", "x-pwd", "SECRET", "apiKey", "Access-Key",
		"PRIVATE_KEY", "client_credentials", "db.key", "GITHUB_TOKEN", "Token",
		"\u212Aey", "ſecret", // Kelvin sign, long s: (?i) folds them
	}
	for _, n := range named {
		if !mayNameCredential(n) {
			t.Errorf("mayNameCredential(%q) = false, want true", n)
		}
	}
	for _, n := range []string{"LOG_LEVEL", "PORT", "JAVA_OPTS", "replicas", "HOME"} {
		if mayNameCredential(n) {
			t.Errorf("mayNameCredential(%q) = true, want false", n)
		}
		if credentialName.MatchString(n) {
			t.Fatalf("test name %q matches credentialName", n)
		}
	}
	// Random names over letters of the stems, separators and digits, in
	// both cases: the filter never hides a match.
	const alphabet = "passwordPASSWORDtokenTOKENsecretSECRETkeyKEYcredentialpwdPWD_-.0129"
	rng := rand.New(rand.NewPCG(1, 2))
	matched := 0
	for range 200_000 {
		var b strings.Builder
		for range 1 + rng.IntN(14) {
			b.WriteByte(alphabet[rng.IntN(len(alphabet))])
		}
		n := b.String()
		m := credentialName.MatchString(n)
		if m {
			matched++
		}
		if m && !mayNameCredential(n) {
			t.Fatalf("mayNameCredential(%q) = false, but credentialName matches", n)
		}
	}
	if matched == 0 {
		t.Fatal("no random name matched credentialName: the test checks nothing")
	}
}
