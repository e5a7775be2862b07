// Package duration parses durations as people write them in flags: Go's
// forms ("36h", "15m", "1h30m") and days and weeks ("90d", "2w", "1w3d12h"),
// which time.ParseDuration does not know.
package duration

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"
)

const (
	day  = 24 * time.Hour
	week = 7 * day
)

// Parse reads a duration: a sequence of whole numbers of weeks (w) or days
// (d) followed by anything time.ParseDuration reads, e.g. "90d", "2w",
// "1d12h", "15m", "0". A day is 24 hours: calendar days of another length
// (daylight saving) are not what a TTL or a retention means.
func Parse(s string) (time.Duration, error) {
	in := strings.TrimSpace(s)
	rest, total := in, time.Duration(0)
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 || i == len(rest) || (rest[i] != 'd' && rest[i] != 'w') {
			break
		}
		n, err := strconv.ParseInt(rest[:i], 10, 64)
		unit := day
		if rest[i] == 'w' {
			unit = week
		}
		if err != nil || n > int64(1<<62)/int64(unit) {
			return 0, fmt.Errorf("duration %q: too long", s)
		}
		total += time.Duration(n) * unit
		rest = rest[i+1:]
	}
	if rest == "" && in != "" {
		return total, nil
	}
	d, err := time.ParseDuration(rest)
	if err != nil {
		return 0, fmt.Errorf("duration %q: want e.g. 90d, 2w, 36h, 15m or 1d12h", s)
	}
	if (d < 0) != (total < 0) && total != 0 {
		return 0, fmt.Errorf("duration %q: want e.g. 90d, 2w, 36h, 15m or 1d12h", s)
	}
	return total + d, nil
}

// Format writes d the way Parse reads it, in days where it is whole days
// ("90d"), else as Go does ("36h0m0s").
func Format(d time.Duration) string {
	if d != 0 && d%day == 0 {
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	return d.String()
}

// Value is a duration flag that Parse reads, for the flag package and
// for pflag (cobra).
type Value struct{ d *time.Duration }

var _ flag.Value = Value{}

// Var returns a Value that stores into d, which keeps its current value
// as the default.
func Var(d *time.Duration) Value { return Value{d} }

// Set parses s.
func (v Value) Set(s string) error {
	d, err := Parse(s)
	if err != nil {
		return err
	}
	*v.d = d
	return nil
}

// String formats the current value; zero is "0", which pflag's help
// takes for no default.
func (v Value) String() string {
	if v.d == nil || *v.d == 0 {
		return "0"
	}
	return Format(*v.d)
}

// Type names the value in pflag's help.
func (v Value) Type() string { return "duration" }

// FlagVar defines a duration flag on fs that accepts days and weeks.
func FlagVar(fs *flag.FlagSet, d *time.Duration, name string, value time.Duration, usage string) {
	*d = value
	fs.Var(Var(d), name, usage)
}

// Flag is FlagVar returning the variable.
func Flag(fs *flag.FlagSet, name string, value time.Duration, usage string) *time.Duration {
	d := new(time.Duration)
	FlagVar(fs, d, name, value, usage)
	return d
}
