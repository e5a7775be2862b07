package checks

import (
	"reflect"
	"testing"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name string
		argv []string
		want flagSet
	}{
		{"equals form", []string{"kube-apiserver", "--a=1", "--b="}, flagSet{"a": {"1"}, "b": {""}}},
		{"space form", []string{"--a", "1", "--b", "x,y"}, flagSet{"a": {"1"}, "b": {"x,y"}}},
		{"repeated", []string{"--m=Node", "--m", "RBAC"}, flagSet{"m": {"Node", "RBAC"}}},
		{"bare flag before a flag", []string{"--x", "--y=2"}, flagSet{"x": {"true"}, "y": {"2"}}},
		{"bare flag at the end", []string{"--x"}, flagSet{"x": {"true"}}},
		{"boolean takes no separate value", []string{"--profiling", "false"}, flagSet{"profiling": {"true"}}},
		{"single dash", []string{"-v=2"}, flagSet{"v": {"2"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseFlags(tt.argv); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseFlags(%q) = %v, want %v", tt.argv, got, tt.want)
			}
		})
	}
	fs := parseFlags([]string{"--plugins=A,B", "--plugins", " C ,", "--on=yes"})
	if got := fs.list("plugins"); !reflect.DeepEqual(got, []string{"A", "B", "C"}) {
		t.Errorf("list = %q", got)
	}
	if got := fs.list("absent", "D"); !reflect.DeepEqual(got, []string{"D"}) {
		t.Errorf("list default = %q", got)
	}
	if fs.bool("on", false) || !fs.bool("absent", true) {
		t.Error("bool: an unparsable value or an absent flag must give the default")
	}
	if fs.value("plugins", "") != " C ," {
		t.Errorf("value takes the last occurrence, got %q", fs.value("plugins", ""))
	}
}

func FuzzParseFlags(f *testing.F) {
	f.Add("--a=1 --b 2 --c --profiling false")
	f.Fuzz(func(t *testing.T, line string) {
		fs := parseFlags([]string{line, "--" + line, line + "=x"})
		_ = fs.list(line)
		_ = fs.bool(line, true)
	})
}
