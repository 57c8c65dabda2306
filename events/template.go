package events

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/template"
	"time"
)

// Batch is events as lvsmon hands them to a receiver outside it (a
// webhook's body): the contract is the Event fields, never their
// messages. Its JSON is the default webhook body; a body template
// (ParseTemplate) renders it for receivers that want their own shape.
type Batch struct {
	// Version is BatchVersion; a change that breaks receivers bumps it.
	Version  int     `json:"version"`
	Director string  `json:"director"`
	Events   []Event `json:"events"`
	// ServiceNames maps the service ids of Events to their configured
	// names.
	ServiceNames map[string]string `json:"service_names,omitempty"`
}

// BatchVersion is the version of Batch's JSON.
const BatchVersion = 1

// templateFuncs are the functions a body template may call besides Go's
// own: json quotes a value as JSON (a string inside a JSON body), join
// joins strings.
var templateFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"join": strings.Join,
}

// sampleBatch is what ParseTemplate executes a template on: every field
// set, so a template that names a field Batch or Event lacks fails when
// the config is loaded rather than at the first delivery.
var sampleBatch = Batch{Version: BatchVersion, Director: "lvs1", ServiceNames: map[string]string{"tcp/192.0.2.10:80": "web"},
	Events: []Event{{Seq: 1, Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Kind: ServerDown, Service: "tcp/192.0.2.10:80",
		Server: "tcp/192.0.2.10:80/10.0.1.1:80", Instance: "VI_1", From: Up, To: Down, Reason: "connection refused",
		Actor: ActorChecker, Message: "web: 10.0.1.1:80 down"}}}

// MaxBody bounds what a body template may render for the sample batch.
const MaxBody = 1 << 20

// capped discards what is written and fails beyond max bytes, so a
// template that would render without end stops.
type capped struct{ n, max int }

func (c *capped) Write(p []byte) (int, error) {
	c.n += len(p)
	if c.n > c.max {
		return 0, fmt.Errorf("renders more than %d bytes for one event", c.max)
	}
	return len(p), nil
}

// ParseTemplate parses a body template (text/template over a Batch, with
// the json and join functions) and runs it once on a sample batch, so a
// template that cannot render fails here, named by name.
func ParseTemplate(name, text string) (*template.Template, error) {
	t, err := template.New(name).Option("missingkey=error").Funcs(templateFuncs).Parse(text)
	if err != nil {
		return nil, err
	}
	if err := t.Execute(&capped{max: MaxBody}, sampleBatch); err != nil {
		return nil, fmt.Errorf("the template does not render: %w", err)
	}
	return t, nil
}
