package checks

import (
	"fmt"
	"unicode/utf8"
)

// MaxMessageBytes bounds a finding's message. A finding is one line of a
// report and one row of a table; a message that lists everything it saw
// (every binding, every container) makes a finding, a batch and a stored
// record grow with the cluster, which is how a large cluster once produced
// gRPC messages the server refused. Checks say the worst case and a count;
// this cap is the backstop for the rest, custom CEL messages included. The
// server refuses longer messages (see ValidateFinding).
const MaxMessageBytes = 4096

// MaxFieldBytes bounds the other strings of a finding: check ids,
// categories, the resource's names and sub-path, a suppression reason.
// Kubernetes names are at most 253 bytes; a sub-path names a container or
// a rule; a reason is an annotation's text.
const MaxFieldBytes = 1024

// CapMessage returns msg cut to at most MaxMessageBytes, at a rune
// boundary, saying how much was left out.
func CapMessage(msg string) string { return capString(msg, MaxMessageBytes) }

func capString(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	// The marker's own length depends on the count it prints: reserve
	// room for the widest count a string of this length can need.
	marker := fmt.Sprintf(" … [%d more bytes]", len(s))
	cut := limit - len(marker)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf(" … [%d more bytes]", len(s)-cut)
}
