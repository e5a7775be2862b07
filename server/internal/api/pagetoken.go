package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"slices"

	"google.golang.org/protobuf/proto"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	"github.com/fleetscan/fleetscan/server/internal/auth"
)

// Page sizes of List RPCs, documented in the protos.
const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

func pageSize(requested int32, def, max int) (int, error) {
	switch {
	case requested < 0:
		return 0, invalid("page_size: must not be negative")
	case requested == 0:
		return def, nil
	case int(requested) > max:
		return max, nil
	}
	return int(requested), nil
}

// PageTokens signs page tokens with a key the server keeps in its
// database, so that a client can neither forge a position nor replay a
// token for another caller, method or filter.
type PageTokens struct{ key []byte }

// NewPageTokens returns page tokens signed with key (at least 16 bytes).
func NewPageTokens(key []byte) *PageTokens {
	if len(key) < 16 {
		panic("api: page token key shorter than 16 bytes")
	}
	return &PageTokens{key: key}
}

// pageBinding is what a token is bound to: the caller and the request.
type pageBinding struct {
	key  []byte
	what []byte
}

// bind ties tokens to the caller and to the request's method and filters.
func (t *PageTokens) bind(p auth.Principal, method string, filters ...string) pageBinding {
	var what []byte
	for _, s := range append([]string{method, string(p.Role), p.Tenant, p.Name, p.ClusterID}, filters...) {
		what = binary.AppendUvarint(what, uint64(len(s)))
		what = append(what, s...)
	}
	return pageBinding{key: t.key, what: what}
}

// pageMACSize: 128 bits of HMAC-SHA256 are plenty against forgery and keep
// tokens short.
const pageMACSize = 16

func (b pageBinding) mac(after []byte) []byte {
	m := hmac.New(sha256.New, b.key)
	m.Write(b.what)
	m.Write(after)
	return m.Sum(nil)[:pageMACSize]
}

func encodePageToken(after []byte, bind pageBinding) string {
	if after == nil {
		return ""
	}
	b, _ := proto.Marshal(&storagev1.PageToken{After: after, Mac: bind.mac(after)})
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodePageToken returns the key to resume after, nil for the first page.
func decodePageToken(token string, bind pageBinding) ([]byte, error) {
	if token == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	pt := &storagev1.PageToken{}
	if err != nil || proto.Unmarshal(b, pt) != nil || len(pt.After) == 0 {
		return nil, invalid("page_token: malformed")
	}
	if !hmac.Equal(pt.Mac, bind.mac(pt.After)) {
		return nil, invalid("page_token: issued for other filters, another caller or another server; start again without it")
	}
	return pt.After, nil
}

// pageAfter pages through a list held whole in memory and sorted by id
// (ascending, or descending when desc): the page after the id `after`
// (from the start when empty), which need no longer be in the list, and
// the id to resume after, "" on the last page.
func pageAfter[T any](all []T, after string, size int, id func(T) string, desc bool) (page []T, next string) {
	start := 0
	if after != "" {
		start = slices.IndexFunc(all, func(t T) bool {
			if desc {
				return id(t) < after
			}
			return id(t) > after
		})
		if start < 0 {
			start = len(all)
		}
	}
	end := min(start+size, len(all))
	if end < len(all) {
		next = id(all[end-1])
	}
	return all[start:end], next
}
