package store

import (
	"strings"

	bolt "go.etcd.io/bbolt"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	"github.com/fleetscan/fleetscan/worker/checks"
)

// A finding record is stored compact, since there are millions of them:
// what the catalog knows (category, party, severity when they are the
// check's defaults; the API version fleetscan reads the kind in) is left
// out, and the message's copies of the record's own fields are replaced by
// one-byte tokens. Decoding restores the record exactly.

// Message tokens. A message that contains any of these bytes itself is
// stored as it is.
const (
	tokName byte = iota + 1
	tokNamespace
	tokKind
	tokContainer
	tokTitleLower
	tokTitle
	tokLast
)

// titles holds each catalog check's title as written and lower-cased.
var titles = func() map[string][2]string {
	m := map[string][2]string{}
	for _, c := range checks.All() {
		m[c.ID] = [2]string{c.Title, strings.ToLower(c.Title)}
	}
	return m
}()

// messageFields are the values the tokens stand for, in token order.
func messageFields(rec *storagev1.FindingRecord) [tokLast - 1]string {
	r := rec.GetResource()
	t := titles[rec.CheckId]
	container := ""
	if sub := r.GetSubPath(); strings.HasPrefix(sub, "containers[") || strings.HasPrefix(sub, "initContainers[") || strings.HasPrefix(sub, "ephemeralContainers[") {
		if i, j := strings.IndexByte(sub, '['), strings.IndexByte(sub, ']'); i >= 0 && j > i {
			container = sub[i+1 : j]
		}
	}
	return [tokLast - 1]string{r.GetName(), r.GetNamespace(), r.GetKind(), container, t[1], t[0]}
}

// compactMessage returns the message with the fields replaced, longest
// value first, or "" when it cannot or need not be compacted.
func compactMessage(rec *storagev1.FindingRecord) string {
	msg := rec.Message
	if strings.IndexFunc(msg, func(r rune) bool { return r > 0 && r < rune(tokLast) }) >= 0 {
		return ""
	}
	fields := messageFields(rec)
	order := []byte{tokTitle, tokTitleLower, tokName, tokNamespace, tokKind, tokContainer}
	// Longest values first, so that a short one does not split a long one.
	for i := 1; i < len(order); i++ {
		for j := i; j > 0 && len(fields[order[j]-1]) > len(fields[order[j-1]-1]); j-- {
			order[j], order[j-1] = order[j-1], order[j]
		}
	}
	out := msg
	for _, tok := range order {
		if v := fields[tok-1]; len(v) >= 3 && strings.Contains(out, v) {
			out = strings.ReplaceAll(out, v, string([]byte{tok}))
		}
	}
	if out == msg {
		return ""
	}
	return out
}

func expandMessage(rec *storagev1.FindingRecord) {
	if rec.MessageTemplate == "" {
		return
	}
	fields := messageFields(rec)
	var b strings.Builder
	for i := 0; i < len(rec.MessageTemplate); i++ {
		c := rec.MessageTemplate[i]
		if c > 0 && c < tokLast {
			b.WriteString(fields[c-1])
		} else {
			b.WriteByte(c)
		}
	}
	rec.Message, rec.MessageTemplate = b.String(), ""
}

// Bits of FindingRecord.omitted.
const (
	omitCategory uint32 = 1 << iota
	omitParty
	omitSeverity
	omitAPIVersion
)

// encodeFinding returns the compact bytes of rec. It edits rec in place
// to marshal it and restores it before returning: cloning every record
// would cost more than the rest of the encoding.
func encodeFinding(rec *storagev1.FindingRecord) ([]byte, error) {
	category, party, severity, message := rec.Category, rec.ResponsibleParty, rec.Severity, rec.Message
	var apiVersion string
	if r := rec.GetResource(); r != nil {
		apiVersion = r.ApiVersion
	}
	defer func() {
		rec.Category, rec.ResponsibleParty, rec.Severity, rec.Message, rec.MessageTemplate = category, party, severity, message, ""
		rec.Omitted = 0
		if r := rec.GetResource(); r != nil {
			r.ApiVersion = apiVersion
		}
	}()
	rec.Omitted = 0
	if t := compactMessage(rec); t != "" {
		rec.MessageTemplate, rec.Message = t, ""
	}
	if m, ok := checks.Lookup(rec.CheckId); ok {
		if rec.Category != "" && rec.Category == m.Category {
			rec.Category, rec.Omitted = "", rec.Omitted|omitCategory
		}
		if rec.ResponsibleParty != 0 && rec.ResponsibleParty == m.Party {
			rec.ResponsibleParty, rec.Omitted = 0, rec.Omitted|omitParty
		}
		if rec.Severity != 0 && rec.Severity == m.Severity {
			rec.Severity, rec.Omitted = 0, rec.Omitted|omitSeverity
		}
	}
	if r := rec.GetResource(); r != nil && r.ApiVersion != "" && r.ApiVersion == checks.CanonicalAPIVersion(r.Kind) {
		r.ApiVersion, rec.Omitted = "", rec.Omitted|omitAPIVersion
	}
	return marshal(rec)
}

// decodeFinding restores a record that encodeFinding wrote.
func decodeFinding(v []byte, rec *storagev1.FindingRecord) error {
	if err := protoUnmarshal(v, rec); err != nil {
		return err
	}
	if m, ok := checks.Lookup(rec.CheckId); ok {
		if rec.Omitted&omitCategory != 0 {
			rec.Category = m.Category
		}
		if rec.Omitted&omitParty != 0 {
			rec.ResponsibleParty = m.Party
		}
		if rec.Omitted&omitSeverity != 0 {
			rec.Severity = m.Severity
		}
	}
	if r := rec.GetResource(); r != nil && rec.Omitted&omitAPIVersion != 0 {
		r.ApiVersion = checks.CanonicalAPIVersion(r.Kind)
	}
	rec.Omitted = 0
	expandMessage(rec)
	return nil
}

func getFinding(b *bolt.Bucket, key []byte, rec *storagev1.FindingRecord) error {
	v := b.Get(key)
	if v == nil {
		return ErrNotFound
	}
	return decodeFinding(v, rec)
}

func putFinding(b *bolt.Bucket, key []byte, rec *storagev1.FindingRecord) error {
	v, err := encodeFinding(rec)
	if err != nil {
		return err
	}
	return b.Put(key, v)
}
