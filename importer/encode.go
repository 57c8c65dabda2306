package importer

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/lvsmon/lvsmon/config"
)

// encodeConfig writes cfg as lvsmon YAML with only what was set: a zero
// field is left out (so lvsmon's defaults apply), a pointer that is set is
// written even when it points at a zero (weight: 0 is not the default
// weight). Each virtual service gets a comment naming its source lines.
func encodeConfig(cfg *config.Config, format, source string, spans []string) ([]byte, error) {
	root := encodeValue(reflect.ValueOf(cfg).Elem())
	if root == nil {
		root = &yaml.Node{Kind: yaml.MappingNode}
	}
	root.HeadComment = fmt.Sprintf("lvsmon config imported from %s %s by lvsmon import.\nRead the import's report before using it: it says what changed meaning or was left out.", format, source)
	// The services are written one at a time: yaml's emitter takes
	// memory out of proportion for one document of thousands of them.
	var services *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "virtual_services" {
			services = root.Content[i+1]
			root.Content = slices.Delete(root.Content, i, i+2)
			break
		}
	}
	var b bytes.Buffer
	if err := encodeNode(&b, root, ""); err != nil {
		return nil, err
	}
	if services == nil {
		if len(root.Content) == 0 {
			b.WriteString("{}\n") // an empty config, which is valid
		}
		return b.Bytes(), nil
	}
	b.WriteString("virtual_services:\n")
	for j, item := range services.Content {
		if j < len(spans) && spans[j] != "" {
			item.HeadComment = "from " + spans[j]
		}
		if err := encodeNode(&b, &yaml.Node{Kind: yaml.SequenceNode, Content: []*yaml.Node{item}}, "  "); err != nil {
			return nil, err
		}
	}
	return b.Bytes(), nil
}

// encodeNode writes n as YAML, each line indented by indent.
func encodeNode(w *bytes.Buffer, n *yaml.Node, indent string) error {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if len(n.Content) == 0 && n.Kind == yaml.MappingNode && n.HeadComment != "" {
		// Nothing but the comment: the caller writes what follows.
		for _, l := range strings.Split(n.HeadComment, "\n") {
			w.WriteString(indent + "# " + l + "\n")
		}
		return nil
	}
	if err := enc.Encode(n); err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	for _, l := range strings.SplitAfter(b.String(), "\n") {
		if strings.TrimSpace(l) != "" {
			w.WriteString(indent)
		}
		w.WriteString(l)
	}
	return nil
}

var durationType = reflect.TypeFor[config.Duration]()

// encodeValue is v as a YAML node, nil when v is empty (left out).
func encodeValue(v reflect.Value) *yaml.Node {
	if v.Type() == durationType {
		if v.Int() == 0 {
			return nil
		}
		return scalar("!!str", formatDuration(time.Duration(v.Int())))
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		e := v.Elem()
		if n := encodeValue(e); n != nil {
			return n
		}
		// A pointer to a zero value is a choice: write it.
		switch e.Kind() {
		case reflect.Struct:
			return &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
		default:
			return zeroScalar(e)
		}
	case reflect.Struct:
		n := &yaml.Node{Kind: yaml.MappingNode}
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if !f.IsExported() || name == "-" || name == "" {
				continue
			}
			if c := encodeValue(v.Field(i)); c != nil {
				n.Content = append(n.Content, scalar("!!str", name), c)
			}
		}
		if len(n.Content) == 0 {
			return nil
		}
		return n
	case reflect.Slice:
		if v.Len() == 0 {
			return nil
		}
		n := &yaml.Node{Kind: yaml.SequenceNode}
		for i := range v.Len() {
			c := encodeValue(v.Index(i))
			if c == nil {
				c = &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
			}
			n.Content = append(n.Content, c)
		}
		return n
	case reflect.Map:
		if v.Len() == 0 {
			return nil
		}
		n := &yaml.Node{Kind: yaml.MappingNode}
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
		for _, k := range keys {
			c := encodeValue(v.MapIndex(k))
			if c == nil {
				c = scalar("!!str", "")
			}
			n.Content = append(n.Content, scalar("!!str", k.String()), c)
		}
		return n
	case reflect.String:
		if v.String() == "" {
			return nil
		}
		return scalar("!!str", v.String())
	case reflect.Bool:
		if !v.Bool() {
			return nil
		}
		return scalar("!!bool", "true")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if v.Int() == 0 {
			return nil
		}
		return scalar("!!int", strconv.FormatInt(v.Int(), 10))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if v.Uint() == 0 {
			return nil
		}
		return scalar("!!int", strconv.FormatUint(v.Uint(), 10))
	case reflect.Float32, reflect.Float64:
		if v.Float() == 0 {
			return nil
		}
		return scalar("!!float", strconv.FormatFloat(v.Float(), 'g', -1, 64))
	}
	// Derived fields (regexps, cert pools) carry yaml:"-" and never get
	// here; anything else is a type this encoder does not know.
	panic(fmt.Sprintf("importer: cannot encode a %s", v.Type()))
}

func zeroScalar(v reflect.Value) *yaml.Node {
	switch v.Kind() {
	case reflect.Bool:
		return scalar("!!bool", "false")
	case reflect.String:
		return scalar("!!str", "")
	case reflect.Float32, reflect.Float64:
		return scalar("!!float", "0")
	}
	return scalar("!!int", "0")
}

func scalar(tag, value string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: value}
}

// formatDuration writes a duration as an operator would: 60s, 6m, 1h,
// 1.5s.
func formatDuration(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	case d%time.Millisecond == 0:
		return strconv.FormatInt(int64(d/time.Millisecond), 10) + "ms"
	}
	return d.String()
}

// reflectOf is reflect.ValueOf, for callers that compare encoded values.
func reflectOf(v any) reflect.Value { return reflect.ValueOf(v) }

// nodeString is a node as YAML text.
func nodeString(n *yaml.Node) string {
	b, err := yaml.Marshal(n)
	if err != nil {
		return fmt.Sprintf("%v", err)
	}
	return string(b)
}
