package main

import (
	"bytes"
	"strings"
	"testing"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
)

// TestScanGetShowsWhatWasNotJudged: scan get lists, per cluster, what its
// worker could not read (the job is incomplete) and the documents no
// check reads (it is not), each under its own heading.
func TestScanGetShowsWhatWasNotJudged(t *testing.T) {
	jobs := []*fleetscanv1.Job{
		{ClusterId: "shop", Problems: []string{"shop.yaml:9: not YAML"}, Unchecked: []string{"shop.yaml:1: v1 Secret shop/db: no check reads this kind"}},
		{ClusterId: "clean"},
	}
	var out bytes.Buffer
	printProblems(&out, jobs)
	printUnchecked(&out, jobs)
	got := out.String()
	for _, want := range []string{
		"Not scanned on shop (1, the job is incomplete):\n  shop.yaml:9: not YAML\n",
		"Not checked on shop (documents that no check reads):\n  shop.yaml:1: v1 Secret shop/db: no check reads this kind\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "clean") {
		t.Errorf("a cluster with nothing to say is listed:\n%s", got)
	}
}

// TestNotAssessableIsGrouped: checks not assessable for the same reason on
// the same clusters are one line, runs of ids as ranges.
func TestNotAssessableIsGrouped(t *testing.T) {
	managed := "the control plane is managed"
	var na []*fleetscanv1.CheckNotAssessable
	for _, id := range []string{"CP-001", "CP-002", "CP-003", "CP-004", "ETCD-001", "ETCD-002"} {
		na = append(na, &fleetscanv1.CheckNotAssessable{CheckId: id, Reason: managed})
	}
	na = append(na, &fleetscanv1.CheckNotAssessable{CheckId: "IMG-003", Reason: "no allow-list"})
	jobs := []*fleetscanv1.Job{{ClusterId: "a", NotAssessable: na}, {ClusterId: "b", NotAssessable: na[:6]}}
	var out bytes.Buffer
	if err := printNotAssessable(&out, jobs); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{"Not assessable (7 checks", "CP-001…CP-004, ETCD-001, ETCD-002", "all", managed, "IMG-003", "no allow-list"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "\n"); n != 5 {
		t.Errorf("%d lines, want a heading, a header and two rows:\n%s", n, got)
	}
}
