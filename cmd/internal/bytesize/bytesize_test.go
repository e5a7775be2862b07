package bytesize

import "testing"

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"8MiB", 8 << 20, true},
		{"8mib", 8 << 20, true},
		{"512 KiB", 512 << 10, true},
		{"1GiB", 1 << 30, true},
		{"4000000", 4000000, true},
		{"16MB", 16000000, true},
		{"100B", 100, true},
		{"0", 0, true},
		{"", 0, false},
		{"MiB", 0, false},
		{"-1MiB", 0, false},
		{"1.5MiB", 0, false},
		{"8 parsecs", 0, false},
		{"99999999999999GiB", 0, false},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("Parse(%q) = %d, %v; want %d, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestFormatRoundTrips(t *testing.T) {
	for _, n := range []int64{0, 1, 1000, 64 << 10, 8 << 20, 3 << 30, 1<<20 + 1} {
		var f Flag
		if err := f.Set(Format(n)); err != nil || f.N != n {
			t.Errorf("Format(%d) = %q, parsed back as %d, %v", n, Format(n), f.N, err)
		}
	}
	if got := Format(8 << 20); got != "8MiB" {
		t.Errorf("Format(8 MiB) = %q", got)
	}
}

func TestHuman(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 234_881_024: "224.0 MiB", 240_000_000: "228.9 MiB", 3 << 30: "3.0 GiB"} {
		if got := Human(n); got != want {
			t.Errorf("Human(%d) = %q, want %q", n, got, want)
		}
	}
}
