package api

import (
	"bytes"
	"encoding/base64"
	"errors"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	"github.com/fleetscan/fleetscan/server/internal/auth"
)

func TestPageTokenBinding(t *testing.T) {
	op := auth.Principal{Role: auth.RoleOperator, Name: "op"}
	pages := NewPageTokens([]byte("0123456789abcdef0123456789abcdef"))
	bind := pages.bind(op, "ListFindings", "filter-a")
	token := encodePageToken([]byte("key-17"), bind)
	got, err := decodePageToken(token, bind)
	if err != nil || !bytes.Equal(got, []byte("key-17")) {
		t.Fatalf("round trip: %q, %v", got, err)
	}
	for name, other := range map[string]pageBinding{
		"other filter": pages.bind(op, "ListFindings", "filter-b"),
		"other caller": pages.bind(auth.Principal{Role: auth.RoleTenant, Tenant: "acme"}, "ListFindings", "filter-a"),
		"other method": pages.bind(op, "ListScans", "filter-a"),
		"other server": NewPageTokens([]byte("another key of 32 bytes, exactly")).bind(op, "ListFindings", "filter-a"),
		// Filters are length-prefixed: moving a boundary is another
		// binding.
		"other split": pages.bind(op, "ListFindings", "filter", "-a"),
	} {
		if _, err := decodePageToken(token, other); !errors.Is(err, errInvalid) {
			t.Errorf("%s: token accepted (%v)", name, err)
		}
	}
	if got, err := decodePageToken("", bind); got != nil || err != nil {
		t.Errorf("empty token: %q %v, want the first page", got, err)
	}
	if encodePageToken(nil, bind) != "" {
		t.Error("the last page has a next token")
	}
	// A position the server did not hand out is refused: the MAC covers
	// it, so a client cannot forge one for the same request.
	forged := &storagev1.PageToken{}
	raw, _ := base64.RawURLEncoding.DecodeString(token)
	if err := proto.Unmarshal(raw, forged); err != nil {
		t.Fatal(err)
	}
	forged.After = []byte("key-99")
	raw, _ = proto.Marshal(forged)
	if _, err := decodePageToken(base64.RawURLEncoding.EncodeToString(raw), bind); !errors.Is(err, errInvalid) {
		t.Errorf("forged position accepted (%v)", err)
	}
}

// FuzzDecodePageToken: any token a client sends is either decoded or
// refused as invalid; it never panics.
func FuzzDecodePageToken(f *testing.F) {
	bind := NewPageTokens(make([]byte, 32)).bind(auth.Principal{Role: auth.RoleOperator}, "ListFindings")
	f.Add(encodePageToken([]byte("abc"), bind))
	f.Add("!!")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		after, err := decodePageToken(token, bind)
		if err != nil && !errors.Is(err, errInvalid) {
			t.Fatalf("error %v is not an invalid-argument", err)
		}
		if err == nil && token != "" && len(after) == 0 {
			t.Fatal("a non-empty token decoded to the first page")
		}
	})
}

func TestPageAfter(t *testing.T) {
	asc := []string{"a", "b", "c", "d", "e"}
	id := func(s string) string { return s }
	for _, tc := range []struct {
		name  string
		all   []string
		after string
		desc  bool
		page  []string
		next  string
	}{
		{"first page", asc, "", false, []string{"a", "b"}, "b"},
		{"middle", asc, "b", false, []string{"c", "d"}, "d"},
		{"last page", asc, "c", false, []string{"d", "e"}, ""},
		{"resume after an id that left the list", []string{"a", "c", "d"}, "b", false, []string{"c", "d"}, ""},
		{"past the end", asc, "z", false, nil, ""},
		{"descending", []string{"e", "d", "c", "b", "a"}, "d", true, []string{"c", "b"}, "b"},
	} {
		page, next := pageAfter(tc.all, tc.after, 2, id, tc.desc)
		if len(page) != len(tc.page) || (len(page) > 0 && !slices.Equal(page, tc.page)) || next != tc.next {
			t.Errorf("%s: got %v next %q, want %v next %q", tc.name, page, next, tc.page, tc.next)
		}
	}
}
