package hazards

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxDocument bounds the size of a policy file or catalog.
const maxDocument = 1 << 20

// decoder turns a yaml.Node tree into Go values strictly: unknown keys,
// duplicate keys, wrong types, anchors and aliases are errors that carry the
// line and the key path. It records the line of every value it visits so
// that later validation can point at the right line too.
type decoder struct {
	file  string
	lines map[string]int
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// decodeDocument parses data (YAML or JSON) into v, which must be a pointer
// to a struct.
func decodeDocument(file string, data []byte, v any) (lines map[string]int, err error) {
	d := &decoder{file: file, lines: map[string]int{}}
	if len(data) > maxDocument {
		return nil, d.errAt(0, "", fmt.Sprintf("document is %d bytes, larger than the %d-byte limit", len(data), maxDocument))
	}
	defer func() {
		// The YAML parser must never take the process down on hostile input.
		if r := recover(); r != nil {
			err = d.errAt(0, "", fmt.Sprintf("parse YAML: %v", r))
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, d.errAt(0, "", "empty document")
		}
		return nil, d.syntaxError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, d.errAt(extra.Line, "", "more than one YAML document")
	} else if !errors.Is(err, io.EOF) {
		return nil, d.syntaxError(err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) != 1 {
			return nil, d.errAt(root.Line, "", "empty document")
		}
		root = root.Content[0]
	}
	if err := d.decode(root, reflect.ValueOf(v).Elem(), ""); err != nil {
		return nil, err
	}
	return d.lines, nil
}

func (d *decoder) syntaxError(err error) error {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &PolicyError{File: d.file, Line: line, Msg: "parse YAML: " + m[2], Err: err}
	}
	return &PolicyError{File: d.file, Msg: "parse YAML: " + strings.TrimPrefix(msg, "yaml: "), Err: err}
}

func (d *decoder) errAt(line int, key, msg string) *PolicyError {
	return &PolicyError{File: d.file, Line: line, Key: key, Msg: msg}
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!str":
			return fmt.Sprintf("string %q", n.Value)
		case "!!int":
			return "integer " + n.Value
		case "!!bool":
			return "boolean " + n.Value
		case "!!float":
			return "number " + n.Value
		case "!!null":
			return "null"
		}
		return fmt.Sprintf("%s %q", n.Tag, n.Value)
	}
	return "an empty node"
}

var textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) error {
	d.lines[path] = n.Line
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		return d.errAt(n.Line, path, "YAML anchors and aliases are not supported")
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		v.Set(reflect.Zero(v.Type()))
		return nil
	}
	if reflect.PointerTo(v.Type()).Implements(textUnmarshalerType) {
		if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
			return d.errAt(n.Line, path, "want a string, got "+nodeKind(n))
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)); err != nil {
			return &PolicyError{File: d.file, Line: n.Line, Key: path, Msg: err.Error(), Err: err}
		}
		return nil
	}
	switch v.Kind() {
	case reflect.Struct:
		return d.decodeStruct(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return d.errAt(n.Line, path, "want a list, got "+nodeKind(n))
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			if err := d.decode(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return d.errAt(n.Line, path, "want a mapping, got "+nodeKind(n))
		}
		m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || k.Tag != "!!str" || k.Anchor != "" {
				return d.errAt(k.Line, path, "want a string key, got "+nodeKind(k))
			}
			kp := joinKey(path, k.Value)
			if prev, dup := seen[k.Value]; dup {
				return d.errAt(k.Line, kp, fmt.Sprintf("duplicate key (first at line %d)", prev))
			}
			seen[k.Value] = k.Line
			elem := reflect.New(v.Type().Elem()).Elem()
			if err := d.decode(val, elem, kp); err != nil {
				return err
			}
			d.lines[kp] = k.Line
			m.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), elem)
		}
		v.Set(m)
		return nil
	case reflect.String:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
			return d.errAt(n.Line, path, "want a string, got "+nodeKind(n))
		}
		v.SetString(n.Value)
		return nil
	case reflect.Int, reflect.Int64:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
			return d.errAt(n.Line, path, "want an integer, got "+nodeKind(n))
		}
		var x int64
		if err := n.Decode(&x); err != nil {
			return d.errAt(n.Line, path, "want an integer, got "+nodeKind(n))
		}
		v.SetInt(x)
		return nil
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			return d.errAt(n.Line, path, "want true or false, got "+nodeKind(n))
		}
		var b bool
		if err := n.Decode(&b); err != nil {
			return d.errAt(n.Line, path, "want true or false, got "+nodeKind(n))
		}
		v.SetBool(b)
		return nil
	}
	return d.errAt(n.Line, path, fmt.Sprintf("internal error: cannot decode into %s", v.Type()))
}

// yamlFields maps the yaml tag names of a struct type to field indexes.
func yamlFields(t reflect.Type) (map[string]int, []string) {
	fields := map[string]int{}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = i
		names = append(names, name)
	}
	sort.Strings(names)
	return fields, names
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind != yaml.MappingNode {
		return d.errAt(n.Line, path, "want a mapping, got "+nodeKind(n))
	}
	fields, names := yamlFields(v.Type())
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			return d.errAt(k.Line, path, "YAML merge keys (<<) are not supported")
		}
		if k.Kind != yaml.ScalarNode || k.Tag != "!!str" || k.Anchor != "" {
			return d.errAt(k.Line, path, "want a string key, got "+nodeKind(k))
		}
		kp := joinKey(path, k.Value)
		idx, ok := fields[k.Value]
		if !ok {
			return d.errAt(k.Line, kp, fmt.Sprintf("unknown key %q (known: %s)", k.Value, strings.Join(names, ", ")))
		}
		if prev, dup := seen[k.Value]; dup {
			return d.errAt(k.Line, kp, fmt.Sprintf("duplicate key (first at line %d)", prev))
		}
		seen[k.Value] = k.Line
		if err := d.decode(val, v.Field(idx), kp); err != nil {
			return err
		}
		d.lines[kp] = k.Line
	}
	return nil
}

// lineOf returns the line recorded for path or for its closest ancestor.
func lineOf(lines map[string]int, path string) int {
	for {
		if l, ok := lines[path]; ok {
			return l
		}
		if path == "" {
			return 0
		}
		if i := strings.LastIndexAny(path, ".["); i >= 0 {
			path = path[:i]
		} else {
			path = ""
		}
	}
}
