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
