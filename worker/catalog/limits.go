package catalog

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
// server refuses longer messages (server/internal/ingest.ValidateBatch).
const MaxMessageBytes = 4096

// MaxFieldBytes bounds the other strings of a finding: check ids,
// categories, the resource's names and sub-path, a suppression reason.
// Kubernetes names are at most 253 bytes; a sub-path names a container or
// a rule; a reason is an annotation's text.
const MaxFieldBytes = 1024

// MaxProblems bounds the problems a job reports (Inventory.Problems):
// past it, the last says how many more there were.
const MaxProblems = 100

// CapProblems returns problems bounded by MaxProblems entries of at most
// MaxFieldBytes each, the last saying how many were left out.
func CapProblems(problems []string) []string {
	return capList(problems[:min(len(problems), MaxProblems)], len(problems), "problems")
}

// CapUnchecked returns the documents no check read as strings (see
// Unchecked.String), bounded like CapProblems.
func CapUnchecked(unchecked []Unchecked) []string {
	items := make([]string, min(len(unchecked), MaxProblems))
	for i := range items {
		items[i] = unchecked[i].String()
	}
	return capList(items, len(unchecked), "documents not checked")
}

// CapList bounds a list of strings like CapProblems; noun names its
// entries in the count of those left out.
func CapList(items []string, noun string) []string {
	return capList(items[:min(len(items), MaxProblems)], len(items), noun)
}

// capList bounds the first items of a list of total entries, the last
// saying how many were left out.
func capList(items []string, total int, noun string) []string {
	if total == 0 {
		return nil
	}
	out := make([]string, 0, len(items))
	for i, p := range items {
		if i == MaxProblems-1 && total > MaxProblems {
			out = append(out, fmt.Sprintf("… and %d more %s", total-i, noun))
			break
		}
		out = append(out, capString(p, MaxFieldBytes))
	}
	return out
}

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
