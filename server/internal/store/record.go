package store

import (
	"slices"
	"strings"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/worker/catalog"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
)

// A finding record is stored compact, since there are millions of them:
// what the catalog knows (category, party, severity when they are the
// check's defaults; the API version fleetscan reads the kind in) is left
// out, and the message's copies of the record's own fields are replaced by
// one-byte tokens. The strings that many records repeat — check ids,
// kinds, namespaces, sub-paths and the message templates that remain once
// the tokens are in — are stored once, in bucketStrings, and a record
// holds their ids (see shared.go). Decoding restores the record exactly.

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

// codec encodes finding records against a snapshot of the catalog: the
// one the database was first written with, kept in it (bucketCatalog), so
// that a later release changing a default or a title does not change how
// old records read.
type codec struct {
	checks map[string]catalogEntry
	kinds  map[string]string // kind → canonical API version
	shared *sharedStrings
}

type catalogEntry struct {
	title, titleLower, category string
	party                       fleetscanv1.ResponsibleParty
	severity                    fleetscanv1.Severity
}

// currentCodec is the codec of this binary's catalog, before any database
// snapshot is merged in.
func currentCodec() *codec {
	c := &codec{checks: map[string]catalogEntry{}, kinds: map[string]string{}, shared: newSharedStrings()}
	for _, m := range catalog.All() {
		c.checks[m.ID] = catalogEntry{title: m.Title, titleLower: strings.ToLower(m.Title), category: m.Category, party: m.Party, severity: m.Severity}
	}
	for _, kind := range []string{"Namespace", "Pod", "Service", "ServiceAccount", "ConfigMap", "Node", "LimitRange", "ResourceQuota",
		"Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob", "Role", "ClusterRole", "RoleBinding",
		"ClusterRoleBinding", "NetworkPolicy", "Ingress", "PodDisruptionBudget", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"} {
		if v := catalog.CanonicalAPIVersion(kind); v != "" {
			c.kinds[kind] = v
		}
	}
	return c
}

// messageFields are the values the tokens stand for, in token order.
func (c *codec) messageFields(rec *storagev1.FindingRecord) [tokLast - 1]string {
	r := rec.GetResource()
	e := c.checks[rec.CheckId]
	t := [2]string{e.title, e.titleLower}
	container := ""
	if sub := r.GetSubPath(); strings.HasPrefix(sub, "containers[") || strings.HasPrefix(sub, "initContainers[") || strings.HasPrefix(sub, "ephemeralContainers[") {
		if i, j := strings.IndexByte(sub, '['), strings.IndexByte(sub, ']'); i >= 0 && j > i {
			container = sub[i+1 : j]
		}
	}
	return [tokLast - 1]string{r.GetName(), r.GetNamespace(), r.GetKind(), container, t[1], t[0]}
}

// compactMessage returns the message with the fields replaced, longest
// value first, or "" when it cannot or need not be compacted. It runs for
// every new or changed finding, so it finds the spans first and builds the
// result once, rather than a string per field.
func (c *codec) compactMessage(rec *storagev1.FindingRecord) string {
	msg := rec.Message
	for i := 0; i < len(msg); i++ {
		if msg[i] > 0 && msg[i] < tokLast {
			return ""
		}
	}
	fields := c.messageFields(rec)
	order := [...]byte{tokTitle, tokTitleLower, tokName, tokNamespace, tokKind, tokContainer}
	// Longest values first, so that a short one does not split a long one.
	for i := 1; i < len(order); i++ {
		for j := i; j > 0 && len(fields[order[j]-1]) > len(fields[order[j-1]-1]); j-- {
			order[j], order[j-1] = order[j-1], order[j]
		}
	}
	type span struct {
		start, end int
		tok        byte
	}
	var buf [8]span
	spans := buf[:0]
	for _, tok := range order {
		v := fields[tok-1]
		if len(v) < 3 {
			continue
		}
		for from := 0; from+len(v) <= len(msg); {
			i := strings.Index(msg[from:], v)
			if i < 0 {
				break
			}
			start, end := from+i, from+i+len(v)
			free := true
			for _, s := range spans {
				if start < s.end && s.start < end {
					free = false
					break
				}
			}
			if !free {
				from = start + 1
				continue
			}
			spans = append(spans, span{start, end, tok})
			from = end
		}
	}
	if len(spans) == 0 {
		return ""
	}
	slices.SortFunc(spans, func(a, b span) int { return a.start - b.start })
	var b strings.Builder
	b.Grow(len(msg))
	at := 0
	for _, s := range spans {
		b.WriteString(msg[at:s.start])
		b.WriteByte(s.tok)
		at = s.end
	}
	b.WriteString(msg[at:])
	return b.String()
}

func (c *codec) expandMessage(rec *storagev1.FindingRecord) {
	if rec.MessageTemplate == "" {
		return
	}
	fields := c.messageFields(rec)
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
func (c *codec) encodeFinding(rec *storagev1.FindingRecord) ([]byte, error) {
	checkID, category, party, severity, message, suppression := rec.CheckId, rec.Category, rec.ResponsibleParty, rec.Severity, rec.Message, rec.SuppressionReason
	var res fleetscanv1.ResourceRef
	r := rec.GetResource()
	if r != nil {
		res.ApiVersion, res.Kind, res.Namespace, res.SubPath = r.ApiVersion, r.Kind, r.Namespace, r.SubPath
	}
	defer func() {
		rec.CheckId, rec.Category, rec.ResponsibleParty, rec.Severity, rec.Message, rec.MessageTemplate = checkID, category, party, severity, message, ""
		rec.SuppressionReason = suppression
		rec.Omitted, rec.Shared = 0, nil
		if r != nil {
			r.ApiVersion, r.Kind, r.Namespace, r.SubPath = res.ApiVersion, res.Kind, res.Namespace, res.SubPath
		}
	}()
	rec.Omitted, rec.Shared = 0, nil
	if t := c.compactMessage(rec); t != "" {
		rec.MessageTemplate, rec.Message = t, ""
	}
	if m, ok := c.checks[rec.CheckId]; ok {
		if rec.Category != "" && rec.Category == m.category {
			rec.Category, rec.Omitted = "", rec.Omitted|omitCategory
		}
		if rec.ResponsibleParty != 0 && rec.ResponsibleParty == m.party {
			rec.ResponsibleParty, rec.Omitted = 0, rec.Omitted|omitParty
		}
		if rec.Severity != 0 && rec.Severity == m.severity {
			rec.Severity, rec.Omitted = 0, rec.Omitted|omitSeverity
		}
	}
	if r != nil && r.ApiVersion != "" && r.ApiVersion == c.kinds[r.Kind] {
		r.ApiVersion, rec.Omitted = "", rec.Omitted|omitAPIVersion
	}
	// Last: the omissions and the template above read these fields.
	var ids [sharedFields]uint32
	c.shared.share(&ids, sharedFieldsOf(rec))
	rec.Shared = trimShared(ids[:])
	return marshal(rec)
}

// decodeFinding restores a record that encodeFinding wrote.
func (c *codec) decodeFinding(v []byte, rec *storagev1.FindingRecord) error {
	if err := protoUnmarshal(v, rec); err != nil {
		return err
	}
	if len(rec.Shared) > 0 {
		if err := c.shared.restore(rec.Shared, sharedFieldsOf(rec)); err != nil {
			return err
		}
		rec.Shared = nil
	}
	if m, ok := c.checks[rec.CheckId]; ok {
		if rec.Omitted&omitCategory != 0 {
			rec.Category = m.category
		}
		if rec.Omitted&omitParty != 0 {
			rec.ResponsibleParty = m.party
		}
		if rec.Omitted&omitSeverity != 0 {
			rec.Severity = m.severity
		}
	}
	if r := rec.GetResource(); r != nil && rec.Omitted&omitAPIVersion != 0 {
		r.ApiVersion = c.kinds[r.Kind]
	}
	rec.Omitted = 0
	c.expandMessage(rec)
	return nil
}

func (c *codec) getFinding(b *table, key []byte, rec *storagev1.FindingRecord) error {
	v := b.Get(key)
	if v == nil {
		return ErrNotFound
	}
	return c.decodeFinding(v, rec)
}

// putFinding encodes and stores rec. The write transaction must store the
// shared strings it took before it commits (shared.storeTx), once, after
// its last record: writePlannedTx does.
func (c *codec) putFinding(b *table, key []byte, rec *storagev1.FindingRecord) error {
	v, err := c.encodeFinding(rec)
	if err != nil {
		return err
	}
	return b.Put(key, v)
}

// loadCatalogTx keeps in the database the catalog entries it has not seen
// yet and returns the codec of the database's snapshot: entries already
// stored are never overwritten, so old records keep reading as written.
func loadCatalogTx(tx *txn) (*codec, error) {
	b := tx.bucket(bucketCatalog)
	cur := currentCodec()
	for id, e := range cur.checks {
		key := []byte("check/" + id)
		if b.Get(key) == nil {
			v, err := marshal(&storagev1.CatalogEntry{Title: e.title, Category: e.category, ResponsibleParty: e.party, Severity: e.severity})
			if err != nil {
				return nil, err
			}
			if err := b.Put(key, v); err != nil {
				return nil, err
			}
		}
	}
	for kind, v := range cur.kinds {
		if key := []byte("kind/" + kind); b.Get(key) == nil {
			if err := b.Put(key, []byte(v)); err != nil {
				return nil, err
			}
		}
	}
	return readCatalogTx(tx)
}

// readCatalogTx returns the codec of the database's catalog snapshot and
// shared strings.
func readCatalogTx(tx *txn) (*codec, error) {
	shared, err := readSharedTx(tx)
	if err != nil {
		return nil, err
	}
	c := &codec{checks: map[string]catalogEntry{}, kinds: map[string]string{}, shared: shared}
	err = tx.bucket(bucketCatalog).ForEach(func(k, v []byte) error {
		switch key := string(k); {
		case strings.HasPrefix(key, "check/"):
			e := &storagev1.CatalogEntry{}
			if err := protoUnmarshal(v, e); err != nil {
				return err
			}
			c.checks[key[len("check/"):]] = catalogEntry{title: e.Title, titleLower: strings.ToLower(e.Title), category: e.Category, party: e.ResponsibleParty, severity: e.Severity}
		case strings.HasPrefix(key, "kind/"):
			c.kinds[key[len("kind/"):]] = string(v)
		}
		return nil
	})
	return c, err
}
