package duration

import (
	"flag"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	day := 24 * time.Hour
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{in: "90d", want: 90 * day},
		{in: "2w", want: 14 * day},
		{in: "1w3d12h", want: 10*day + 12*time.Hour},
		{in: "1d12h30m", want: day + 12*time.Hour + 30*time.Minute},
		{in: "36h", want: 36 * time.Hour},
		{in: "15m", want: 15 * time.Minute},
		{in: "1.5h", want: 90 * time.Minute},
		{in: "0", want: 0},
		{in: " 7d ", want: 7 * day},
		{in: "", err: true},
		{in: "d", err: true},
		{in: "90", err: true},
		{in: "90days", err: true},
		{in: "-1d", err: true},
		{in: "1d-2h", err: true},
		{in: "99999999999999w", err: true},
		{in: "1y", err: true},
	} {
		got, err := Parse(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("Parse(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestFormatRoundTrips(t *testing.T) {
	for _, d := range []time.Duration{90 * 24 * time.Hour, 36 * time.Hour, 15 * time.Minute, 0} {
		got, err := Parse(Format(d))
		if err != nil || got != d {
			t.Errorf("Parse(Format(%v)) = %v, %v", d, got, err)
		}
	}
}

// TestFlag: a flag set takes the README's spellings, and --help shows the
// default in days.
func TestFlag(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	retention := Flag(fs, "retention", 90*24*time.Hour, "")
	if got := fs.Lookup("retention").DefValue; got != "90d" {
		t.Errorf("default shown as %q, want 90d", got)
	}
	if err := fs.Parse([]string{"-retention", "30d"}); err != nil || *retention != 30*24*time.Hour {
		t.Errorf("--retention 30d: %v, %v", *retention, err)
	}
	if err := fs.Parse([]string{"-retention", "soon"}); err == nil {
		t.Error("--retention soon was accepted")
	}
}
