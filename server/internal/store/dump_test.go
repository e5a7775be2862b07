package store

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/protobuf/encoding/prototext"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
)

// dumpFindings is every finding record the store answers, open, resolved
// and suppressed, in full: what a change of the record codec must keep.
func dumpFindings(ctx context.Context, db *DB) (string, error) {
	var b strings.Builder
	for _, status := range []fleetscanv1.FindingStatus{fleetscanv1.FindingStatus_FINDING_STATUS_OPEN, fleetscanv1.FindingStatus_FINDING_STATUS_RESOLVED, fleetscanv1.FindingStatus_FINDING_STATUS_SUPPRESSED} {
		var after []byte
		for {
			page, next, err := db.ListFindings(ctx, FindingFilter{Status: status}, after, 100)
			if err != nil {
				return "", err
			}
			for _, v := range page {
				text, err := prototext.MarshalOptions{}.Marshal(v.Record)
				if err != nil {
					return "", err
				}
				fmt.Fprintf(&b, "%s %s %x last seen %d scan %s: %s\n", status, v.ClusterID, v.Fingerprint, v.LastSeenMs, v.ScanID, strings.Join(strings.Fields(string(text)), " "))
			}
			if next == nil {
				break
			}
			after = next
		}
	}
	return b.String(), nil
}
