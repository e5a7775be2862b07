package store

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
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
				fmt.Fprintf(&b, "%s %s %x last seen %d scan %s: %s\n", status, v.ClusterID, v.Fingerprint, v.LastSeenMs, v.ScanID, recordText(v.Record))
			}
			if next == nil {
				break
			}
			after = next
		}
	}
	return b.String(), nil
}

// recordText writes every field that rec has, in a form that, unlike
// prototext's, does not change from one build to the next.
func recordText(rec *storagev1.FindingRecord) string {
	var b strings.Builder
	writeMessage(&b, rec.ProtoReflect())
	return b.String()
}

func writeMessage(b *strings.Builder, m protoreflect.Message) {
	fields := m.Descriptor().Fields()
	first := true
	for i := range fields.Len() {
		fd := fields.Get(i)
		if !m.Has(fd) {
			continue
		}
		if !first {
			b.WriteByte(' ')
		}
		first = false
		b.WriteString(string(fd.Name()) + "=")
		if fd.IsList() {
			l := m.Get(fd).List()
			b.WriteByte('[')
			for j := range l.Len() {
				if j > 0 {
					b.WriteByte(' ')
				}
				writeValue(b, fd, l.Get(j))
			}
			b.WriteByte(']')
			continue
		}
		writeValue(b, fd, m.Get(fd))
	}
}

func writeValue(b *strings.Builder, fd protoreflect.FieldDescriptor, v protoreflect.Value) {
	switch fd.Kind() {
	case protoreflect.MessageKind:
		b.WriteByte('{')
		writeMessage(b, v.Message())
		b.WriteByte('}')
	case protoreflect.StringKind:
		fmt.Fprintf(b, "%q", v.String())
	case protoreflect.BytesKind:
		fmt.Fprintf(b, "%x", v.Bytes())
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			b.WriteString(string(ev.Name()))
		} else {
			fmt.Fprintf(b, "%d", v.Enum())
		}
	default:
		fmt.Fprintf(b, "%v", v.Interface())
	}
}
