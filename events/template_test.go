package events

import (
	"strings"
	"testing"
)

func TestParseTemplate(t *testing.T) {
	for _, tc := range []struct {
		text, want, err string
	}{
		{`{{.Director}}: {{len .Events}}`, "lvs1: 1", ""},
		{`{{range .Events}}{{.Kind}} {{.Server}} {{.From}}->{{.To}} ({{.Reason}}) by {{.Actor}}{{end}}`,
			"server_down tcp/192.0.2.10:80/10.0.1.1:80 up->down (connection refused) by checker", ""},
		{`{"text": {{json (index .Events 0).Message}}}`, `{"text": "web: 10.0.1.1:80 down"}`, ""},
		{`{{index .ServiceNames (index .Events 0).Service}} {{join (slice "a" "b") ","}}`, "", `error calling slice`},
		{`{{range .Events}}{{.Nope}}{{end}}`, "", "can't evaluate field Nope"},
		{`{{.Director`, "", "unclosed action"},
		{`{{nofunc .}}`, "", `function "nofunc" not defined`},
	} {
		tm, err := ParseTemplate("alerting.webhooks[0].body_template", tc.text)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: %v, want %q", tc.text, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.text, err)
			continue
		}
		var b strings.Builder
		if err := tm.Execute(&b, sampleBatch); err != nil || b.String() != tc.want {
			t.Errorf("%q renders %q (%v), want %q", tc.text, b.String(), err, tc.want)
		}
	}
}

// Any text either parses and renders the sample or is refused with an
// error; none panics.
func FuzzParseTemplate(f *testing.F) {
	for _, s := range []string{`{{.Director}}`, `{{range .Events}}{{json .}}{{end}}`, `{{join (index .Events 0).Kind}}`, `{{`, `{{template "x"}}`, `{{define "x"}}{{template "x"}}{{end}}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := ParseTemplate("fuzz", s)
		if err == nil && tm == nil {
			t.Fatal("no template and no error")
		}
	})
}
