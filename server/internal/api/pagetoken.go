package api

import (
	"encoding/base64"
	"hash/fnv"
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

// binding ties a page token to the caller and to the request's filters, so
// that a token cannot be replayed by someone else or with other filters.
func binding(p auth.Principal, method string, filters ...string) uint64 {
	h := fnv.New64a()
	for _, s := range append([]string{method, string(p.Role), p.Tenant, p.Name, p.ClusterID}, filters...) {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

func encodePageToken(after []byte, bind uint64) string {
	if after == nil {
		return ""
	}
	b, _ := proto.Marshal(&storagev1.PageToken{After: after, Binding: bind})
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodePageToken returns the key to resume after, nil for the first page.
func decodePageToken(token string, bind uint64) ([]byte, error) {
	if token == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	pt := &storagev1.PageToken{}
	if err != nil || proto.Unmarshal(b, pt) != nil || len(pt.After) == 0 {
		return nil, invalid("page_token: malformed")
	}
	if pt.Binding != bind {
		return nil, invalid("page_token: issued for other filters or another caller; start again without it")
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
