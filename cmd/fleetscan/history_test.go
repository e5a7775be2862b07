package main

import (
	"testing"
	"time"
)

func TestParseAge(t *testing.T) {
	for in, want := range map[string]time.Duration{"90d": 90 * 24 * time.Hour, "2w": 14 * 24 * time.Hour, "36h": 36 * time.Hour, "90m": 90 * time.Minute} {
		if got, err := parseAge(in); err != nil || got != want {
			t.Errorf("parseAge(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "0d", "-3d", "soon", "1y"} {
		if _, err := parseAge(in); err == nil {
			t.Errorf("parseAge(%q) accepted", in)
		}
	}
}

func TestSparkline(t *testing.T) {
	for _, tt := range []struct {
		in   []float64
		want string
	}{
		{[]float64{0, 7}, "▁█"},
		{[]float64{3, 3, 3}, "▅▅▅"},
		{[]float64{-1, 0, 10, 5}, " ▁█▅"},
		{nil, ""},
	} {
		if got := sparkline(tt.in); got != tt.want {
			t.Errorf("sparkline(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
