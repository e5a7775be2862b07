package collect

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"
)

// errTooLarge stops a document whose aliases expand beyond reason (the
// "billion laughs" shape).
var errTooLarge = errors.New("document expands beyond the size limit (aliases?)")

// yamlToJSON converts one YAML document to JSON by walking its node tree
// and appending JSON directly. It is several times faster than decoding
// into maps and marshalling them, and allocates far less, which is most of
// the cost of loading a large snapshot. Scalars follow YAML 1.2 (the core
// schema): "yes" and "on" are strings, not booleans.
func yamlToJSON(doc []byte) ([]byte, error) {
	var n yaml.Node
	if err := yaml.Unmarshal(doc, &n); err != nil {
		return nil, err
	}
	if n.Kind == 0 {
		return []byte("null"), nil
	}
	w := jsonWriter{limit: MaxDocumentSize + 2*len(doc)}
	if err := w.node(&n, 0); err != nil {
		return nil, err
	}
	return w.b, nil
}

type jsonWriter struct {
	b     []byte
	limit int
}

const maxDepth = 1000

func (w *jsonWriter) node(n *yaml.Node, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("document nested deeper than %d levels", maxDepth)
	}
	if len(w.b) > w.limit {
		return errTooLarge
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			w.b = append(w.b, "null"...)
			return nil
		}
		return w.node(n.Content[0], depth+1)
	case yaml.AliasNode:
		return w.node(n.Alias, depth+1)
	case yaml.MappingNode:
		w.b = append(w.b, '{')
		for i := 0; i+1 < len(n.Content); i += 2 {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			key := n.Content[i]
			for key.Kind == yaml.AliasNode {
				key = key.Alias
			}
			if key.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: a mapping key must be a scalar", key.Line)
			}
			w.str(key.Value)
			w.b = append(w.b, ':')
			if err := w.node(n.Content[i+1], depth+1); err != nil {
				return err
			}
		}
		w.b = append(w.b, '}')
	case yaml.SequenceNode:
		w.b = append(w.b, '[')
		for i, c := range n.Content {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			if err := w.node(c, depth+1); err != nil {
				return err
			}
		}
		w.b = append(w.b, ']')
	case yaml.ScalarNode:
		return w.scalar(n)
	default:
		return fmt.Errorf("line %d: unexpected YAML node", n.Line)
	}
	return nil
}

func (w *jsonWriter) scalar(n *yaml.Node) error {
	switch n.ShortTag() {
	case "!!null":
		w.b = append(w.b, "null"...)
	case "!!bool":
		b, err := strconv.ParseBool(strings.ToLower(n.Value))
		if err != nil {
			return fmt.Errorf("line %d: %q is not a boolean", n.Line, n.Value)
		}
		w.b = strconv.AppendBool(w.b, b)
	case "!!int":
		v := strings.ReplaceAll(n.Value, "_", "")
		if strings.HasPrefix(v, "0o") || strings.HasPrefix(v, "-0o") || strings.HasPrefix(v, "+0o") {
			v = strings.Replace(v, "0o", "0", 1)
		}
		if i, err := strconv.ParseInt(v, 0, 64); err == nil {
			w.b = strconv.AppendInt(w.b, i, 10)
		} else if u, err := strconv.ParseUint(v, 0, 64); err == nil {
			w.b = strconv.AppendUint(w.b, u, 10)
		} else {
			return fmt.Errorf("line %d: %q is not an integer", n.Line, n.Value)
		}
	case "!!float":
		f, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			w.str(n.Value) // JSON has no infinities; let the typed decoder judge
			return nil
		}
		w.b = strconv.AppendFloat(w.b, f, 'g', -1, 64)
	default: // !!str, !!timestamp, !!binary and custom tags: text
		w.str(n.Value)
	}
	return nil
}

// str appends s as a JSON string.
func (w *jsonWriter) str(s string) {
	const hex = "0123456789abcdef"
	w.b = append(w.b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				w.b = append(w.b, '\\', c)
			case c == '\n':
				w.b = append(w.b, '\\', 'n')
			case c == '\t':
				w.b = append(w.b, '\\', 't')
			case c == '\r':
				w.b = append(w.b, '\\', 'r')
			case c < 0x20:
				w.b = append(w.b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				w.b = append(w.b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			w.b = append(w.b, `\ufffd`...)
		} else {
			w.b = append(w.b, s[i:i+size]...)
		}
		i += size
	}
	w.b = append(w.b, '"')
}
