package flagset

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func newTestSet() (*Set, *string, *bool, *time.Duration, *string) {
	s := New("test", "FLEETSCAN_TEST_")
	dir := s.String("data-dir", "default-dir", "data")
	plain := s.Bool("plaintext", false, "plain")
	ret := s.Duration("retention", 90*24*time.Hour, "keep")
	out := s.StringP("output", "o", "table", "format")
	return s, dir, plain, ret, out
}

// TestSpellings: GNU flags, the single-dash spellings of earlier
// releases, and the environment, in that order of precedence.
func TestSpellings(t *testing.T) {
	for _, tt := range []struct {
		name  string
		env   map[string]string
		args  []string
		dir   string
		plain bool
		ret   time.Duration
		out   string
	}{
		{"defaults", nil, nil, "default-dir", false, 90 * 24 * time.Hour, "table"},
		{"GNU", nil, []string{"--data-dir", "d", "--plaintext", "--retention=2w", "-o", "json"}, "d", true, 14 * 24 * time.Hour, "json"},
		{"single dash, as before", nil, []string{"-data-dir", "d", "-plaintext", "-retention=30d", "-o=yaml"}, "d", true, 30 * 24 * time.Hour, "yaml"},
		{"environment", map[string]string{"FLEETSCAN_TEST_DATA_DIR": "env-dir", "FLEETSCAN_TEST_PLAINTEXT": "true", "FLEETSCAN_TEST_RETENTION": "1d"}, nil, "env-dir", true, 24 * time.Hour, "table"},
		{"the command line wins", map[string]string{"FLEETSCAN_TEST_DATA_DIR": "env-dir"}, []string{"--data-dir", "flag-dir"}, "flag-dir", false, 90 * 24 * time.Hour, "table"},
		{"after --, nothing is a flag", nil, []string{"--", "-data-dir"}, "default-dir", false, 90 * 24 * time.Hour, "table"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			s, dir, plain, ret, out := newTestSet()
			if err := s.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			if *dir != tt.dir || *plain != tt.plain || *ret != tt.ret || *out != tt.out {
				t.Errorf("got %q %v %v %q, want %q %v %v %q", *dir, *plain, *ret, *out, tt.dir, tt.plain, tt.ret, tt.out)
			}
		})
	}
}

// TestBadEnvironmentNamesTheVariable: a value the flag refuses, from the
// environment, is an error that names the variable.
func TestBadEnvironmentNamesTheVariable(t *testing.T) {
	t.Setenv("FLEETSCAN_TEST_RETENTION", "90 days")
	s, _, _, _, _ := newTestSet()
	err := s.Parse(nil)
	if err == nil || !strings.Contains(err.Error(), "$FLEETSCAN_TEST_RETENTION") {
		t.Fatalf("bad environment value: %v", err)
	}
}

// TestUnknownAndHelp: an unknown flag is an error; --help is ErrHelp, and
// the help names each flag's variable.
func TestUnknownAndHelp(t *testing.T) {
	s, _, _, _, _ := newTestSet()
	if err := s.Parse([]string{"--frobnicate"}); err == nil {
		t.Error("an unknown flag was accepted")
	}
	s, _, _, _, _ = newTestSet()
	var help strings.Builder
	s.SetOutput(&help)
	if err := s.Parse([]string{"--help"}); !errors.Is(err, pflag.ErrHelp) {
		t.Errorf("--help: %v, want ErrHelp", err)
	}
	if !strings.Contains(help.String(), "[$FLEETSCAN_TEST_DATA_DIR]") {
		t.Errorf("help does not name the variables:\n%s", help.String())
	}
}
