// Package bytesize parses sizes in bytes as people write them in flags:
// "8MiB", "512KiB", "1GiB", "4000000".
package bytesize

import (
	"fmt"
	"strconv"
	"strings"
)

// units are the suffixes accepted, binary and decimal, longest first so
// that "MiB" is not read as "B".
var units = []struct {
	suffix string
	factor int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
	{"B", 1},
}

// Parse reads a non-negative size: a whole number of bytes, optionally
// followed by one of B, KB, MB, GB, KiB, MiB, GiB (case-insensitive).
func Parse(s string) (int64, error) {
	s = strings.TrimSpace(s)
	num, factor := s, int64(1)
	for _, u := range units {
		if len(s) > len(u.suffix) && strings.EqualFold(s[len(s)-len(u.suffix):], u.suffix) {
			num, factor = strings.TrimSpace(s[:len(s)-len(u.suffix)]), u.factor
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("size %q: want a whole number of bytes, optionally with a unit (KiB, MiB, GiB, KB, MB, GB), e.g. 8MiB", s)
	}
	if n > (1<<62)/factor {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return n * factor, nil
}

// Format writes n with the largest binary unit that divides it.
func Format(n int64) string {
	for _, u := range []struct {
		suffix string
		factor int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.factor == 0 {
			return strconv.FormatInt(n/u.factor, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// Flag is a flag.Value holding a size in bytes.
type Flag struct{ N int64 }

func (f *Flag) String() string { return Format(f.N) }

// Type names the value in pflag's help.
func (f *Flag) Type() string { return "size" }

// Set parses a size.
func (f *Flag) Set(s string) error {
	n, err := Parse(s)
	if err != nil {
		return err
	}
	f.N = n
	return nil
}

// Human writes n for people: one decimal in the largest binary unit it
// reaches ("223.9 MiB"), plain bytes below 1 KiB.
func Human(n int64) string {
	for _, u := range []struct {
		suffix string
		factor int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.factor {
			return strconv.FormatFloat(float64(n)/float64(u.factor), 'f', 1, 64) + " " + u.suffix
		}
	}
	return strconv.FormatInt(n, 10) + " B"
}
