package collect

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// fastYAMLToJSON converts a document written in the block style that
// manifests are written in (kubectl's, Helm's and every generator's output)
// to JSON in one pass over its bytes, appending to out, without the node
// tree that yamlToJSON builds: on a snapshot that tree was most of the
// scan's allocation and a third of its CPU.
//
// It declines (ok false) a document that uses anything outside that
// subset: anchors, aliases, tags, directives, folded or kept block
// scalars, scalars or flow collections over several lines, tabs where
// YAML separates, and anything malformed. yamlToJSON converts those, and
// reports what is wrong with the malformed ones. Where it returns ok, its
// output equals yamlToJSON's byte for byte (TestFastYAMLAgrees,
// FuzzFastYAML).
func fastYAMLToJSON(doc, out []byte) (_ []byte, ok bool) {
	if !fastCharset(doc) {
		return out, false
	}
	p := fastYAML{src: doc, w: jsonWriter{b: out}}
	p.nextContent()
	if p.i == len(p.src) {
		return append(p.w.b, "null"...), true
	}
	if p.src[p.i] == '%' || p.bad {
		return out, false // a directive or a document marker
	}
	if !p.block(p.col()) || p.i != len(p.src) || p.bad {
		return out, false
	}
	return p.w.b, true
}

// fastCharset reports whether doc holds only what the fast path reads as
// yaml.v3 does: no carriage returns, no control characters, none of the
// characters YAML 1.1 counts as line breaks (NEL, LS, PS), no byte order
// mark and no invalid UTF-8. yaml.v3 rejects or reads specially each of
// these; the slow path handles them.
func fastCharset(doc []byte) bool {
	for i := 0; i < len(doc); {
		c := doc[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\n' && c != '\t' || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(doc[i:])
		switch {
		case r == utf8.RuneError && size == 1, r < 0xa0, r == 0x2028, r == 0x2029, r == 0xfeff, r >= 0xd800 && r < 0xe000, r == 0xfffe, r == 0xffff:
			return false
		}
		i += size
	}
	return true
}

// fastYAML is the state of one conversion. ls is where the current line
// starts and i where reading is; a node's column is i-ls.
type fastYAML struct {
	src     []byte
	i, ls   int
	w       jsonWriter
	depth   int
	scratch []byte
	bad     bool // a line the fast path does not read, seen in passing
}

func (p *fastYAML) col() int { return p.i - p.ls }

func (p *fastYAML) at(i int) byte {
	if i < len(p.src) {
		return p.src[i]
	}
	return '\n'
}

func (p *fastYAML) startsWith(s string) bool {
	return len(p.src)-p.i >= len(s) && string(p.src[p.i:p.i+len(s)]) == s
}

// nextContent moves from the start of a line to the first character of
// the next line that is neither blank nor only a comment, or to the end
// of the document. A tab in a line's indentation leaves i on the tab,
// which no caller accepts: yaml.v3 rejects some of those lines.
func (p *fastYAML) nextContent() {
	for p.i < len(p.src) {
		p.ls = p.i
		for p.i < len(p.src) && p.src[p.i] == ' ' {
			p.i++
		}
		switch p.at(p.i) {
		case '\n':
			p.i = min(p.i+1, len(p.src))
			continue
		case '#':
			p.skipLine()
			continue
		}
		if p.i == p.ls && (p.startsWith("---") || p.startsWith("...")) {
			p.bad = true // a document marker
		}
		return
	}
	p.ls = p.i
}

// skipLine moves to the start of the next line.
func (p *fastYAML) skipLine() {
	for p.i < len(p.src) && p.src[p.i] != '\n' {
		p.i++
	}
	if p.i < len(p.src) {
		p.i++
	}
}

// endOfLine accepts the rest of the line when it is blank or a comment
// (which must follow a space), and moves to the next content line. The
// fast path declines tabs outside quoted and block scalars: YAML
// separates with them in some places and not in others.
func (p *fastYAML) endOfLine() bool {
	spaced := p.i > 0 && p.src[p.i-1] == ' '
	for p.i < len(p.src) && p.src[p.i] == ' ' {
		p.i++
		spaced = true
	}
	switch c := p.at(p.i); {
	case c == '\n':
	case c == '#' && spaced:
	default:
		return false
	}
	p.skipLine()
	p.nextContent()
	return true
}

// isEntry says whether i starts a sequence entry: "-" before a space or
// the end of the line.
func (p *fastYAML) isEntry(i int) bool {
	return p.at(i) == '-' && (p.at(i+1) == ' ' || p.at(i+1) == '\n')
}

// block reads the block node starting at i, in column c.
func (p *fastYAML) block(c int) bool {
	if p.depth++; p.depth > maxDepth {
		return false
	}
	defer func() { p.depth-- }()
	if p.isEntry(p.i) {
		return p.sequence(c)
	}
	return p.mapping(c)
}

// sequence reads the block sequence whose entries start in column c.
func (p *fastYAML) sequence(c int) bool {
	p.w.b = append(p.w.b, '[')
	for first := true; ; first = false {
		if !first {
			p.w.b = append(p.w.b, ',')
		}
		p.i++ // the "-"
		if !p.spaces() {
			return false
		}
		switch {
		case p.at(p.i) == '\n' || p.at(p.i) == '#':
			if !p.endOfLine() {
				return false
			}
			if p.i < len(p.src) && p.col() > c {
				if !p.block(p.col()) {
					return false
				}
			} else {
				p.w.b = append(p.w.b, "null"...)
			}
		case p.isEntry(p.i):
			if !p.block(p.col()) {
				return false
			}
		default:
			if _, isKey := p.key(); isKey {
				if !p.block(p.col()) {
					return false
				}
			} else if !p.value(c) {
				return false
			}
		}
		if p.i == len(p.src) || p.col() < c {
			break
		}
		if p.col() > c {
			return false
		}
		if !p.isEntry(p.i) {
			break // the end of a sequence that is a mapping's value
		}
	}
	p.w.b = append(p.w.b, ']')
	return true
}

// spaces skips the spaces after an indicator; a tab there is declined.
func (p *fastYAML) spaces() bool {
	for p.i < len(p.src) && p.src[p.i] == ' ' {
		p.i++
	}
	return p.at(p.i) != '\t'
}

// mapping reads the block mapping whose keys start in column c.
func (p *fastYAML) mapping(c int) bool {
	p.w.b = append(p.w.b, '{')
	for first := true; ; first = false {
		end, ok := p.key()
		if !ok {
			return false
		}
		if !first {
			p.w.b = append(p.w.b, ',')
		}
		if !p.writeKey(end) {
			return false
		}
		p.w.b = append(p.w.b, ':')
		if !p.spaces() {
			return false
		}
		if p.at(p.i) == '\n' || p.at(p.i) == '#' {
			if !p.endOfLine() {
				return false
			}
			switch {
			case p.i < len(p.src) && p.col() > c:
				if !p.block(p.col()) {
					return false
				}
			case p.i < len(p.src) && p.col() == c && p.isEntry(p.i):
				if !p.block(c) { // a sequence in the key's column
					return false
				}
			default:
				p.w.b = append(p.w.b, "null"...)
			}
		} else if p.isEntry(p.i) || !p.value(c) {
			return false
		}
		if p.i == len(p.src) || p.col() < c {
			break
		}
		if p.col() > c || p.isEntry(p.i) {
			return false
		}
	}
	p.w.b = append(p.w.b, '}')
	return true
}

// key finds the mapping key that starts at i: it returns where its ":"
// is, or false when the line does not start with a key the fast path
// reads.
func (p *fastYAML) key() (colon int, ok bool) {
	switch c := p.at(p.i); c {
	case '"', '\'':
		end, ok := p.quotedEnd(p.i)
		if !ok {
			return 0, false
		}
		j := end
		for p.at(j) == ' ' {
			j++
		}
		if p.at(j) != ':' || p.at(j+1) != ' ' && p.at(j+1) != '\n' {
			return 0, false
		}
		return j, true
	default:
		if !plainStart(c) {
			return 0, false
		}
	}
	for j := p.i; j < len(p.src); j++ {
		switch p.src[j] {
		case '\n', '\t':
			return 0, false
		case ':':
			switch p.at(j + 1) {
			case ' ', '\n':
				return j, true
			}
		case '#':
			if b := p.src[j-1]; b == ' ' || b == '\t' {
				return 0, false
			}
		}
	}
	return 0, false
}

// writeKey writes the key from i to its colon and moves past the colon.
// YAML limits an implicit key to 1024 characters; the fast path takes
// keys of up to 1000 bytes.
func (p *fastYAML) writeKey(colon int) bool {
	if colon-p.i > 1000 {
		return false
	}
	if q := p.src[p.i]; q == '"' || q == '\'' {
		s, ok := p.quoted()
		if !ok {
			return false
		}
		p.w.str(s)
	} else {
		end := colon
		for end > p.i && (p.src[end-1] == ' ' || p.src[end-1] == '\t') {
			end--
		}
		p.w.str(string(p.src[p.i:end]))
	}
	p.i = colon + 1
	return true
}

// plainStart says whether c may start a plain scalar the fast path reads:
// not an indicator of YAML's (a "-" before a non-space is checked by the
// caller's isEntry).
func plainStart(c byte) bool {
	switch c {
	case '[', ']', '{', '}', ',', '#', '&', '*', '!', '|', '>', '\'', '"', '%', '@', '`', '?', ':', ' ', '\t', '\n':
		return false
	}
	return true
}

// value reads the scalar or flow collection that follows a mapping key or
// a sequence's "-" on the same line, whose parent is in column c, and
// moves to the next content line.
func (p *fastYAML) value(c int) bool {
	switch p.src[p.i] {
	case '|':
		return p.literal(c)
	case '"', '\'':
		s, ok := p.quoted()
		if !ok {
			return false
		}
		p.w.str(s)
	case '[', '{':
		if !p.flow() {
			return false
		}
	default:
		if !plainStart(p.src[p.i]) {
			return false
		}
		start := p.i
		end := p.i
		for p.i < len(p.src) && p.src[p.i] != '\n' {
			switch b := p.src[p.i]; {
			case b == '#' && p.src[p.i-1] == ' ':
				goto done
			case b == ':' && (p.at(p.i+1) == ' ' || p.at(p.i+1) == '\n'):
				return false // "a: b: c" is not YAML
			case b == '\t':
				return false // YAML separates with tabs in places
			case b != ' ':
				end = p.i + 1
			}
			p.i++
		}
	done:
		if string(p.src[start:end]) == "-" {
			return false
		}
		if !p.plain(string(p.src[start:end])) {
			return false
		}
	}
	return p.endOfLine()
}

// plain writes a plain scalar as yaml.v3 resolves it (YAML 1.2's core
// schema, as yamlToJSON writes it): null, a boolean, an integer, a float,
// or a string. It declines the binary and octal forms that yaml.v3 reads
// as integers and yamlToJSON then rejects ("0o+0").
func (p *fastYAML) plain(s string) bool {
	switch s {
	case "~", "null", "Null", "NULL":
		p.w.b = append(p.w.b, "null"...)
		return true
	case "true", "True", "TRUE":
		p.w.b = append(p.w.b, "true"...)
		return true
	case "false", "False", "FALSE":
		p.w.b = append(p.w.b, "false"...)
		return true
	}
	c := s[0]
	switch {
	case c == '.':
		if _, err := strconv.ParseFloat(s, 64); err == nil {
			p.float(s)
			return true
		}
	case c >= '0' && c <= '9' || c == '-' || c == '+':
		if timestampShaped(s) {
			break
		}
		if p.number(s) {
			return true
		}
		t := strings.TrimPrefix(s, "-")
		if strings.HasPrefix(t, "0b") || strings.HasPrefix(t, "0o") {
			return false
		}
	}
	p.w.str(s)
	return true
}

// timestampShaped: four digits and a dash, the start yaml.v3 reads as a
// timestamp, which yamlToJSON writes as text.
func timestampShaped(s string) bool {
	if len(s) < 5 || s[4] != '-' {
		return false
	}
	for _, c := range []byte(s[:4]) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// number writes s when it is an integer or a YAML-style float, as
// yaml.v3's resolver reads those.
func (p *fastYAML) number(s string) bool {
	plain := s
	for i := 0; i < len(plain); i++ {
		if plain[i] == '_' {
			plain = string(dropUnderscores(s))
			break
		}
	}
	if integerShaped(plain) {
		if i, err := strconv.ParseInt(plain, 0, 64); err == nil {
			p.w.b = strconv.AppendInt(p.w.b, i, 10)
			return true
		}
		if u, err := strconv.ParseUint(plain, 0, 64); err == nil {
			p.w.b = strconv.AppendUint(p.w.b, u, 10)
			return true
		}
	}
	if yamlFloat(plain) {
		if _, err := strconv.ParseFloat(plain, 64); err == nil {
			p.float(s)
			return true
		}
	}
	return false
}

// integerShaped reports whether s has only what strconv.ParseInt reads
// with base 0 (a sign, digits, base prefixes): quantities such as 100m or
// 1Gi start with digits, and a failed parse allocates its error.
func integerShaped(s string) bool {
	if s != "" && (s[0] == '-' || s[0] == '+') {
		s = s[1:]
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
		case c == 'x', c == 'X', c == 'o', c == 'O':
		default:
			return false
		}
	}
	return s != ""
}

func dropUnderscores(s string) []byte {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '_' {
			b = append(b, s[i])
		}
	}
	return b
}

// float writes a float scalar as yamlToJSON does: JSON has no infinities,
// so those are text.
func (p *fastYAML) float(s string) {
	if g, err := strconv.ParseFloat(string(dropUnderscores(s)), 64); err == nil && g == g && g-g == 0 {
		p.w.b = strconv.AppendFloat(p.w.b, g, 'g', -1, 64)
		return
	}
	p.w.str(s)
}

// yamlFloat matches [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?.
func yamlFloat(s string) bool {
	i := 0
	digits := func() int {
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		i++
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	} else {
		if digits() == 0 {
			return false
		}
		if i < len(s) && s[i] == '.' {
			i++
			digits()
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '-' || s[i] == '+') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

// quotedEnd returns where the quoted scalar starting at i ends (past its
// closing quote), or false when it does not end on its line.
func (p *fastYAML) quotedEnd(i int) (int, bool) {
	q := p.src[i]
	for j := i + 1; j < len(p.src); j++ {
		switch p.src[j] {
		case '\n':
			return 0, false
		case '\\':
			if q == '"' {
				j++
			}
		case q:
			if q == '\'' && p.at(j+1) == '\'' {
				j++
				continue
			}
			return j + 1, true
		}
	}
	return 0, false
}

// quoted reads the quoted scalar at i, on one line, and moves past it.
func (p *fastYAML) quoted() (string, bool) {
	q := p.src[p.i]
	b := p.scratch[:0]
	defer func() { p.scratch = b[:0] }()
	for j := p.i + 1; j < len(p.src); j++ {
		c := p.src[j]
		switch {
		case c == '\n':
			return "", false
		case c == q && q == '\'':
			if p.at(j+1) == '\'' {
				b = append(b, '\'')
				j++
				continue
			}
			p.i = j + 1
			return string(b), true
		case c == q:
			p.i = j + 1
			return string(b), true
		case c == '\\' && q == '"':
			j++
			var ok bool
			if b, j, ok = p.escape(b, j); !ok {
				return "", false
			}
		default:
			b = append(b, c)
		}
	}
	return "", false
}

// simpleEscapes are the one-letter escapes of double-quoted scalars.
var simpleEscapes = map[byte]string{
	'0': "\x00", 'a': "\a", 'b': "\b", 't': "\t", '\t': "\t", 'n': "\n", 'v': "\v", 'f': "\f",
	'r': "\r", 'e': "\x1b", ' ': " ", '"': "\"", '\'': "'", '\\': "\\",
	'N': "\u0085", '_': "\u00a0", 'L': "\u2028", 'P': "\u2029",
}

// escape appends what the escape whose letter is at j stands for, and
// returns where it ends.
func (p *fastYAML) escape(b []byte, j int) ([]byte, int, bool) {
	c := p.at(j)
	if s, ok := simpleEscapes[c]; ok {
		return append(b, s...), j, true
	}
	var n int
	switch c {
	case 'x':
		n = 2
	case 'u':
		n = 4
	case 'U':
		n = 8
	default:
		return b, j, false
	}
	if j+n >= len(p.src) {
		return b, j, false
	}
	v, err := strconv.ParseUint(string(p.src[j+1:j+1+n]), 16, 32)
	if err != nil || v >= 0xd800 && v < 0xe000 || v > 0x10ffff {
		return b, j, false
	}
	return utf8.AppendRune(b, rune(v)), j + n, true
}

// literal reads a literal block scalar ("|" or "|-") whose parent is in
// column c; its lines are those indented more than c.
func (p *fastYAML) literal(c int) bool {
	p.i++
	strip := false
	switch p.at(p.i) {
	case '-':
		strip = true
		p.i++
	case ' ', '\n', '#':
	default:
		return false // kept (+) or with an indentation indicator
	}
	// Only a comment may follow on the line.
	spaced := false
	for p.at(p.i) == ' ' {
		p.i++
		spaced = true
	}
	if ch := p.at(p.i); ch != '\n' && !(ch == '#' && spaced) {
		return false
	}
	p.skipLine()
	b := p.scratch[:0]
	indent, leading := -1, 0
	pending := 0 // empty lines not yet written
	for p.i < len(p.src) {
		ls := p.i
		n := 0
		for p.at(ls+n) == ' ' {
			n++
		}
		if p.at(ls+n) == '\n' {
			if ls+n == len(p.src) {
				if n > 0 {
					return false // spaces without a newline at the end
				}
				break
			}
			if indent < 0 {
				leading = max(leading, n)
			} else if n > indent {
				return false // spaces that are content, on a blank line
			}
			pending++
			p.i = ls + n + 1
			continue
		}
		if indent < 0 {
			if n <= c {
				break // an empty scalar
			}
			if leading > n || p.at(ls+n) == '\t' {
				return false
			}
			indent = n
		}
		if n < indent {
			break
		}
		for ; pending > 0; pending-- {
			b = append(b, '\n')
		}
		end := ls + n
		for end < len(p.src) && p.src[end] != '\n' {
			end++
		}
		b = append(b, p.src[ls+indent:end]...)
		if end == len(p.src) {
			return false // a last line without a newline
		}
		b = append(b, p.src[end])
		p.i = end + 1
	}
	if strip && len(b) > 0 {
		b = b[:len(b)-1]
	}
	p.scratch = b[:0]
	p.w.str(string(b))
	// Where the scalar ended is the start of a line.
	p.ls = p.i
	p.nextContent()
	return true
}

// flow reads a flow sequence or mapping that closes on its line.
func (p *fastYAML) flow() bool {
	if p.depth++; p.depth > maxDepth {
		return false
	}
	defer func() { p.depth-- }()
	open := p.src[p.i]
	close := byte(']')
	if open == '{' {
		close = '}'
	}
	p.w.b = append(p.w.b, open)
	p.i++
	p.flowSpaces()
	if p.at(p.i) == close {
		p.i++
		p.w.b = append(p.w.b, close)
		return true
	}
	for first := true; ; first = false {
		if !first {
			p.w.b = append(p.w.b, ',')
		}
		if open == '{' {
			quotedKey := p.at(p.i) == '"' || p.at(p.i) == '\''
			if !p.flowScalar(true) {
				return false
			}
			p.flowSpaces()
			if p.at(p.i) != ':' {
				return false
			}
			p.i++
			if !quotedKey && p.at(p.i) != ' ' {
				return false
			}
			p.w.b = append(p.w.b, ':')
			p.flowSpaces()
		}
		switch p.at(p.i) {
		case '[', '{':
			if !p.flow() {
				return false
			}
		default:
			if !p.flowScalar(false) {
				return false
			}
		}
		p.flowSpaces()
		switch p.at(p.i) {
		case ',':
			p.i++
			p.flowSpaces()
			if ch := p.at(p.i); ch == ']' || ch == '}' {
				return false // a trailing comma
			}
		case close:
			p.i++
			p.w.b = append(p.w.b, close)
			return true
		default:
			return false
		}
	}
}

// flowPlain says whether c is one of the characters the fast path takes
// in a plain scalar inside a flow collection: the verbs, names and
// capabilities such lists hold. Anything else is left to yaml.v3.
func flowPlain(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._/=+", c) >= 0
}

func (p *fastYAML) flowSpaces() {
	for p.at(p.i) == ' ' {
		p.i++
	}
}

// flowScalar writes the quoted or plain scalar at i inside a flow
// collection; a key is written as text.
func (p *fastYAML) flowScalar(key bool) bool {
	switch c := p.at(p.i); {
	case c == '"' || c == '\'':
		s, ok := p.quoted()
		if !ok {
			return false
		}
		p.w.str(s)
		return true
	case !plainStart(c) || c == '-' && p.at(p.i+1) == ' ':
		return false
	}
	start, end := p.i, p.i
scan:
	for ; ; p.i++ {
		switch c := p.at(p.i); {
		case c == ':':
			if key && p.at(p.i+1) == ' ' {
				break scan
			}
			return false
		case c == ',' || c == ']' || c == '}':
			if key {
				return false
			}
			break scan
		case c == ' ':
		case flowPlain(c):
			end = p.i + 1
		default:
			return false
		}
	}
	if key {
		p.w.str(string(p.src[start:end]))
	} else if !p.plain(string(p.src[start:end])) {
		return false
	}
	p.i = end
	return true
}
