package catalog

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Resource identifies the object a finding is about; SubPath narrows it to
// a container, a volume or a rule.
type Resource struct {
	APIVersion string
	Kind       string
	Namespace  string
	Name       string
	SubPath    string
}

// FingerprintSize is the length in bytes of a fingerprint.
const FingerprintSize = 16

// Fingerprint identifies a finding across scans: a hash of the cluster, the
// check and the resource's identity. It deliberately leaves out the object's
// UID and its API version (only the group counts), so that a Deployment
// deleted and re-created, or served under a newer version, keeps its
// history.
func Fingerprint(clusterID, checkID string, r Resource) [FingerprintSize]byte {
	// Hashed from one buffer on the stack: a scan takes a fingerprint of
	// every finding, and a hash.Hash and its sum were two allocations.
	var buf [512]byte
	b := buf[:0]
	for _, part := range []string{clusterID, checkID, apiGroup(r.APIVersion), r.Kind, r.Namespace, r.Name, r.SubPath} {
		b = append(b, part...)
		b = append(b, 0)
	}
	sum := sha256.Sum256(b)
	var fp [FingerprintSize]byte
	copy(fp[:], sum[:])
	return fp
}

// FingerprintString is the form of a fingerprint in the API.
func FingerprintString(fp [FingerprintSize]byte) string {
	var b [2 * FingerprintSize]byte
	hex.Encode(b[:], fp[:])
	return string(b[:])
}

// ParseFingerprint reverses FingerprintString.
func ParseFingerprint(s string) ([FingerprintSize]byte, bool) {
	var fp [FingerprintSize]byte
	if len(s) != 2*FingerprintSize {
		return fp, false
	}
	if _, err := hex.Decode(fp[:], []byte(s)); err != nil {
		return fp, false
	}
	return fp, true
}

func apiGroup(apiVersion string) string {
	if i := strings.LastIndexByte(apiVersion, '/'); i >= 0 {
		return apiVersion[:i]
	}
	return "" // the core group: "v1"
}
