package collect

import (
	"bytes"
	"encoding"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// decodeTyped decodes a JSON document straight into the Go type its
// apiVersion and kind name, in one pass with a plan per type: what the
// strict serializer (decoder) does with two parses (apiVersion and kind,
// then the object) and encoding/json's generic machinery, which was a
// third of a scan's CPU once YAML was read in one pass.
//
// It declines (ok false) whatever it does not decode exactly as the
// serializer does: kinds not in the scheme, lists, unknown or duplicate
// fields (which the serializer reports), values of the wrong type, and
// field types it leaves to encoding/json ([]byte, interfaces, text
// unmarshalers). decodeDocument then takes the serializer's path, which
// says what is wrong. Where it returns ok, the object equals the
// serializer's (TestDecodeTypedAgrees, FuzzDecodeTyped).
func decodeTyped(js []byte) (runtime.Object, bool) {
	apiVersion, kind, ok := typeMeta(js)
	if !ok || kind == "List" {
		return nil, false
	}
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil || gv.Version == "" {
		return nil, false
	}
	obj, err := builtinKinds.New(gv.WithKind(kind))
	if err != nil {
		return nil, false
	}
	d := jsonDecoder{data: js}
	if !d.value(reflect.ValueOf(obj).Elem(), 0) {
		return nil, false
	}
	d.space()
	if d.i != len(d.data) {
		return nil, false
	}
	return obj, true
}

// typeMeta reads the top-level apiVersion and kind of a JSON object. It
// declines a document where either is missing, not a string, given twice,
// or where a key differs from them only in case (which the serializer's
// first, case-insensitive read would take).
func typeMeta(js []byte) (apiVersion, kind string, ok bool) {
	d := jsonDecoder{data: js}
	d.space()
	if !d.consume('{') {
		return "", "", false
	}
	var seenVersion, seenKind bool
	for first := true; ; first = false {
		d.space()
		if d.consume('}') {
			break
		}
		if !first && (!d.consume(',') || !d.spaceThen()) {
			return "", "", false
		}
		key, ok := d.key()
		if !ok {
			return "", "", false
		}
		d.space()
		if !d.consume(':') {
			return "", "", false
		}
		d.space()
		switch {
		case string(key) == "apiVersion" || string(key) == "kind":
			v, ok := d.str()
			if !ok {
				return "", "", false
			}
			if string(key) == "kind" {
				if seenKind {
					return "", "", false
				}
				kind, seenKind = v, true
			} else {
				if seenVersion {
					return "", "", false
				}
				apiVersion, seenVersion = v, true
			}
		case bytes.EqualFold(key, []byte("apiVersion")) || bytes.EqualFold(key, []byte("kind")):
			return "", "", false
		default:
			if !d.skip(0) {
				return "", "", false
			}
		}
	}
	return apiVersion, kind, seenVersion && seenKind && kind != ""
}

// jsonDecoder reads JSON from data at i.
type jsonDecoder struct {
	data []byte
	i    int
	buf  []byte
}

func (d *jsonDecoder) space() {
	for d.i < len(d.data) {
		switch d.data[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// spaceThen skips whitespace and reports that more follows.
func (d *jsonDecoder) spaceThen() bool {
	d.space()
	return d.i < len(d.data)
}

func (d *jsonDecoder) consume(c byte) bool {
	if d.i < len(d.data) && d.data[d.i] == c {
		d.i++
		return true
	}
	return false
}

func (d *jsonDecoder) peek() byte {
	if d.i < len(d.data) {
		return d.data[d.i]
	}
	return 0
}

// str reads a string, as encoding/json unquotes it; it declines invalid
// UTF-8 and surrogate escapes.
func (d *jsonDecoder) str() (string, bool) {
	if !d.consume('"') {
		return "", false
	}
	start := d.i
	for d.i < len(d.data) {
		c := d.data[d.i]
		switch {
		case c == '"':
			s := d.data[start:d.i]
			d.i++
			return string(s), true
		case c == '\\':
			return d.escapedStr(start)
		case c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(d.data[d.i:])
			if r == utf8.RuneError && size == 1 {
				return "", false
			}
			d.i += size
		default:
			d.i++
		}
	}
	return "", false
}

// key reads a string that names a field: its bytes in the input when it
// has no escapes or non-ASCII (a field's name never has), without
// allocating a string to look it up by.
func (d *jsonDecoder) key() ([]byte, bool) {
	start := d.i
	if !d.consume('"') {
		return nil, false
	}
	for d.i < len(d.data) {
		switch c := d.data[d.i]; {
		case c == '"':
			d.i++
			return d.data[start+1 : d.i-1], true
		case c == '\\' || c < 0x20 || c >= utf8.RuneSelf:
			d.i = start
			s, ok := d.str()
			return []byte(s), ok
		default:
			d.i++
		}
	}
	return nil, false
}

func (d *jsonDecoder) escapedStr(start int) (string, bool) {
	b := append(d.buf[:0], d.data[start:d.i]...)
	defer func() { d.buf = b[:0] }()
	for d.i < len(d.data) {
		c := d.data[d.i]
		switch {
		case c == '"':
			d.i++
			return string(b), true
		case c == '\\':
			if d.i+1 >= len(d.data) {
				return "", false
			}
			e := d.data[d.i+1]
			d.i += 2
			switch e {
			case '"', '\\', '/':
				b = append(b, e)
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				if d.i+4 > len(d.data) {
					return "", false
				}
				v, err := strconv.ParseUint(string(d.data[d.i:d.i+4]), 16, 16)
				if err != nil || utf16.IsSurrogate(rune(v)) {
					return "", false
				}
				b = utf8.AppendRune(b, rune(v))
				d.i += 4
			default:
				return "", false
			}
		case c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(d.data[d.i:])
			if r == utf8.RuneError && size == 1 {
				return "", false
			}
			b = append(b, d.data[d.i:d.i+size]...)
			d.i += size
		default:
			b = append(b, c)
			d.i++
		}
	}
	return "", false
}

// skipStr reads past a string that str would accept, without making it:
// a document's type is read by skipping all but two of its fields, and
// a value that decodes itself is found by skipping it.
func (d *jsonDecoder) skipStr() bool {
	if !d.consume('"') {
		return false
	}
	for d.i < len(d.data) {
		c := d.data[d.i]
		switch {
		case c == '"':
			d.i++
			return true
		case c == '\\':
			if d.i+1 >= len(d.data) {
				return false
			}
			e := d.data[d.i+1]
			d.i += 2
			switch e {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if d.i+4 > len(d.data) {
					return false
				}
				v, err := strconv.ParseUint(string(d.data[d.i:d.i+4]), 16, 16)
				if err != nil || utf16.IsSurrogate(rune(v)) {
					return false
				}
				d.i += 4
			default:
				return false
			}
		case c < 0x20:
			return false
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(d.data[d.i:])
			if r == utf8.RuneError && size == 1 {
				return false
			}
			d.i += size
		default:
			d.i++
		}
	}
	return false
}

// number returns the literal of a JSON number.
func (d *jsonDecoder) number() ([]byte, bool) {
	start := d.i
	d.consume('-')
	digits := func() int {
		n := 0
		for d.i < len(d.data) && d.data[d.i] >= '0' && d.data[d.i] <= '9' {
			d.i++
			n++
		}
		return n
	}
	if d.peek() == '0' {
		d.i++
	} else if digits() == 0 {
		return nil, false
	}
	if d.consume('.') && digits() == 0 {
		return nil, false
	}
	if c := d.peek(); c == 'e' || c == 'E' {
		d.i++
		if c := d.peek(); c == '+' || c == '-' {
			d.i++
		}
		if digits() == 0 {
			return nil, false
		}
	}
	return d.data[start:d.i], true
}

func (d *jsonDecoder) literal(s string) bool {
	if len(d.data)-d.i >= len(s) && string(d.data[d.i:d.i+len(s)]) == s {
		d.i += len(s)
		return true
	}
	return false
}

// skip reads past one value of any kind.
func (d *jsonDecoder) skip(depth int) bool {
	if depth > maxDepth {
		return false
	}
	switch c := d.peek(); {
	case c == '"':
		return d.skipStr()
	case c == '{' || c == '[':
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		d.i++
		d.space()
		if d.consume(end) {
			return true
		}
		for {
			if c == '{' {
				if !d.skipStr() {
					return false
				}
				d.space()
				if !d.consume(':') {
					return false
				}
				d.space()
			}
			if !d.skip(depth + 1) {
				return false
			}
			d.space()
			if d.consume(end) {
				return true
			}
			if !d.consume(',') {
				return false
			}
			d.space()
		}
	case c == 't':
		return d.literal("true")
	case c == 'f':
		return d.literal("false")
	case c == 'n':
		return d.literal("null")
	default:
		_, ok := d.number()
		return ok
	}
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// traits are what encoding/json asks of a type before decoding into it:
// whether it unmarshals itself, from JSON or from text. Asking reflect
// for every value was 6% of a scan's CPU.
type traits struct{ json, text bool }

var traitCache sync.Map // reflect.Type → traits

func traitsOf(t reflect.Type) traits {
	if tr, ok := traitCache.Load(t); ok {
		return tr.(traits)
	}
	p := reflect.PointerTo(t)
	tr := traits{json: p.Implements(jsonUnmarshaler), text: p.Implements(textUnmarshaler)}
	traitCache.Store(t, tr)
	return tr
}

// value decodes the next value into v as encoding/json would into a
// value of v's type, declining what decodeTyped says it declines.
func (d *jsonDecoder) value(v reflect.Value, depth int) bool {
	if depth > maxDepth {
		return false
	}
	t := v.Type()
	if d.peek() == 'n' {
		if !d.literal("null") {
			return false
		}
		switch t.Kind() {
		case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface:
			v.SetZero()
			return true
		}
		tr := traitsOf(t)
		if tr.json {
			return v.Addr().Interface().(json.Unmarshaler).UnmarshalJSON([]byte("null")) == nil
		}
		return !tr.text
	}
	if t.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		return d.value(v.Elem(), depth+1)
	}
	if tr := traitsOf(t); tr.json {
		start := d.i
		if !d.skip(depth) {
			return false
		}
		return v.Addr().Interface().(json.Unmarshaler).UnmarshalJSON(d.data[start:d.i]) == nil
	} else if tr.text {
		return false
	}
	switch t.Kind() {
	case reflect.Struct:
		return d.object(v, depth)
	case reflect.Map:
		return d.mapping(v, depth)
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return false // base64 in JSON
		}
		return d.array(v, depth)
	case reflect.String:
		s, ok := d.str()
		if ok {
			v.SetString(s)
		}
		return ok
	case reflect.Bool:
		switch {
		case d.literal("true"):
			v.SetBool(true)
		case d.literal("false"):
			v.SetBool(false)
		default:
			return false
		}
		return true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		lit, ok := d.number()
		if !ok {
			return false
		}
		n, err := strconv.ParseInt(string(lit), 10, 64)
		if err != nil || v.OverflowInt(n) {
			return false
		}
		v.SetInt(n)
		return true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		lit, ok := d.number()
		if !ok {
			return false
		}
		n, err := strconv.ParseUint(string(lit), 10, 64)
		if err != nil || v.OverflowUint(n) {
			return false
		}
		v.SetUint(n)
		return true
	case reflect.Float32, reflect.Float64:
		lit, ok := d.number()
		if !ok {
			return false
		}
		f, err := strconv.ParseFloat(string(lit), t.Bits())
		if err != nil || v.OverflowFloat(f) {
			return false
		}
		v.SetFloat(f)
		return true
	}
	return false // interfaces, arrays, channels: encoding/json's
}

func (d *jsonDecoder) array(v reflect.Value, depth int) bool {
	if !d.consume('[') {
		return false
	}
	v.SetLen(0)
	if v.IsNil() {
		v.Set(reflect.MakeSlice(v.Type(), 0, 0))
	}
	d.space()
	if d.consume(']') {
		return true
	}
	for n := 0; ; n++ {
		d.space()
		if n >= v.Cap() {
			v.Grow(1) // as encoding/json: a slice of one container is not sized for four
		}
		v.SetLen(n + 1)
		if !d.value(v.Index(n), depth+1) {
			return false
		}
		d.space()
		if d.consume(']') {
			return true
		}
		if !d.consume(',') {
			return false
		}
	}
}

func (d *jsonDecoder) mapping(v reflect.Value, depth int) bool {
	t := v.Type()
	if t.Key().Kind() != reflect.String || traitsOf(t.Key()).text {
		return false
	}
	if !d.consume('{') {
		return false
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(t))
	}
	d.space()
	if d.consume('}') {
		return true
	}
	elem := reflect.New(t.Elem()).Elem()
	for {
		d.space()
		key, ok := d.str()
		if !ok {
			return false
		}
		d.space()
		if !d.consume(':') {
			return false
		}
		d.space()
		k := reflect.ValueOf(key).Convert(t.Key())
		if v.MapIndex(k).IsValid() {
			return false // a duplicate: the serializer reports it
		}
		elem.SetZero()
		if !d.value(elem, depth+1) {
			return false
		}
		v.SetMapIndex(k, elem)
		d.space()
		if d.consume('}') {
			return true
		}
		if !d.consume(',') {
			return false
		}
	}
}

func (d *jsonDecoder) object(v reflect.Value, depth int) bool {
	plan := planOf(v.Type())
	if plan == nil || !d.consume('{') {
		return false
	}
	var seenSmall uint64
	var seen []bool
	if len(plan.fields) > 64 {
		seen = make([]bool, len(plan.fields))
	}
	d.space()
	if d.consume('}') {
		return true
	}
	for {
		d.space()
		key, ok := d.key()
		if !ok {
			return false
		}
		f, known := plan.byName[string(key)]
		if !known {
			return false // an unknown field: the serializer reports it
		}
		if seen != nil {
			if seen[f] {
				return false
			}
			seen[f] = true
		} else {
			if seenSmall&(1<<f) != 0 {
				return false // a duplicate: the serializer reports it
			}
			seenSmall |= 1 << f
		}
		d.space()
		if !d.consume(':') {
			return false
		}
		d.space()
		if !d.value(v.FieldByIndex(plan.fields[f]), depth+1) {
			return false
		}
		d.space()
		if d.consume('}') {
			return true
		}
		if !d.consume(',') {
			return false
		}
	}
}

// structPlan is how JSON names map to a struct's fields, embedded ones
// included.
type structPlan struct {
	byName map[string]int
	fields [][]int // index paths
}

var plans sync.Map // reflect.Type → *structPlan, or a nil *structPlan for a type declined

// planOf returns the plan of struct type t, or nil for a struct whose
// fields the decoder does not map as encoding/json does (an embedded
// pointer, two fields of one name).
func planOf(t reflect.Type) *structPlan {
	if p, ok := plans.Load(t); ok {
		return p.(*structPlan)
	}
	p := &structPlan{byName: map[string]int{}}
	if !p.add(t, nil) {
		p = nil
	}
	plans.Store(t, p)
	return p
}

func (p *structPlan) add(t reflect.Type, prefix []int) bool {
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(","+opts+",", ",string,") {
			return false // a number or boolean in quotes
		}
		index := append(append([]int(nil), prefix...), i)
		if sf.Anonymous && name == "" {
			if sf.Type.Kind() != reflect.Struct || !sf.IsExported() {
				return false // an embedded pointer, or fields reflection cannot set
			}
			if !p.add(sf.Type, index) {
				return false
			}
			continue
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		if _, dup := p.byName[name]; dup {
			return false
		}
		p.byName[name] = len(p.fields)
		p.fields = append(p.fields, index)
	}
	return true
}
