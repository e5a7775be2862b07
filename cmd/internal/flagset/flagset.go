// Package flagset gives fleetscan-server and fleetscan-worker the flags
// of the fleetscan CLI: GNU style (pflag: --name value, --name=value, -o
// for the few short ones), each with an environment variable, and the
// single-dash spellings of earlier releases (-data-dir) still accepted.
package flagset

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/fleetscan/fleetscan/cmd/internal/duration"
)

// Set is a pflag.FlagSet whose flags each read an environment variable:
// PREFIX_NAME, with dashes as underscores (--data-dir of fleetscan-server
// is FLEETSCAN_SERVER_DATA_DIR). The command line wins over the
// environment, which wins over the default.
type Set struct {
	*pflag.FlagSet
	prefix string
	noEnv  map[string]bool
}

// New returns an empty Set; envPrefix is e.g. "FLEETSCAN_SERVER_".
func New(name, envPrefix string) *Set {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SortFlags = false
	return &Set{FlagSet: fs, prefix: envPrefix, noEnv: map[string]bool{"help": true, "version": true}}
}

// Duration defines a duration flag that also takes days and weeks (90d,
// 2w).
func (s *Set) Duration(name string, value time.Duration, usage string) *time.Duration {
	d := new(time.Duration)
	*d = value
	s.Var(duration.Var(d), name, usage)
	return d
}

// Env is the environment variable of a flag.
func (s *Set) Env(name string) string {
	return s.prefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Parse reads the environment, then the command line.
func (s *Set) Parse(args []string) error {
	var err error
	s.VisitAll(func(f *pflag.Flag) {
		if s.noEnv[f.Name] {
			return
		}
		env := s.Env(f.Name)
		f.Usage += " [$" + env + "]"
		if v, ok := os.LookupEnv(env); ok && err == nil {
			if serr := s.Set(f.Name, v); serr != nil {
				err = fmt.Errorf("$%s: %w", env, serr)
			}
		}
	})
	if err != nil {
		return err
	}
	return s.FlagSet.Parse(s.Normalize(args))
}

// Normalize rewrites the single-dash long flags of earlier releases
// (-data-dir x, -plaintext) as GNU ones (--data-dir x). An argument is
// rewritten only when its name is a flag's: -o stays a shorthand.
func (s *Set) Normalize(args []string) []string {
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		if len(a) > 2 && a[0] == '-' && a[1] != '-' {
			name, _, _ := strings.Cut(a[1:], "=")
			if len(name) > 1 && s.Lookup(name) != nil {
				a = "-" + a
			}
		}
		out = append(out, a)
	}
	return out
}
