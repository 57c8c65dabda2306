package dashboards

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/lvsmon/lvsmon/alerting"
	"go.yaml.in/yaml/v3"
)

// goldenFiles are cmd/lvsmon's end-to-end /metrics outputs: what lvsmon
// exports, every family of every mode (node_exporter-compatible, procfs).
const goldenFiles = "../cmd/lvsmon/testdata/metrics/*.prom"

// exported returns every series name lvsmon exports, read from the TYPE
// lines of the golden files (histograms and summaries with their
// sub-series).
func exported(t *testing.T) map[string]bool {
	t.Helper()
	files, err := filepath.Glob(goldenFiles)
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden /metrics files at %s (%v)", goldenFiles, err)
	}
	names := map[string]bool{}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) != 4 || fields[0] != "#" || fields[1] != "TYPE" {
				continue
			}
			names[fields[2]] = true
			switch fields[3] {
			case "histogram":
				names[fields[2]+"_bucket"], names[fields[2]+"_sum"], names[fields[2]+"_count"] = true, true, true
			case "summary":
				names[fields[2]+"_sum"], names[fields[2]+"_count"] = true, true
			}
		}
		fh.Close()
	}
	return names
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Record      string            `yaml:"record,omitempty"`
	Alert       string            `yaml:"alert,omitempty"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for,omitempty"`
	Labels      map[string]string `yaml:"labels,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty"`
}

func readRules(t *testing.T) map[string][]rule {
	t.Helper()
	files, err := filepath.Glob("prometheus/rules/*.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no rule files (%v)", err)
	}
	out := map[string][]rule{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var rf ruleFile
		if err := yaml.Unmarshal(b, &rf); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, g := range rf.Groups {
			out[f] = append(out[f], g.Rules...)
		}
	}
	return out
}

// recorded returns the names the recording rules define.
func recorded(t *testing.T) map[string]bool {
	names := map[string]bool{}
	for _, rules := range readRules(t) {
		for _, r := range rules {
			if r.Record != "" {
				names[r.Record] = true
			}
		}
	}
	return names
}

var (
	// __name__=~"…" selects metrics by a pattern.
	nameMatcherRe = regexp.MustCompile(`__name__\s*=~?\s*"((?:[^"\\]|\\.)*)"`)
	stringRe      = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	// Recording rule names have a colon; no other PromQL identifier does.
	recordedRe = regexp.MustCompile(`\b[A-Za-z_][A-Za-z0-9_]*:[A-Za-z0-9_:]*`)
	// lvsmon's own families (and node_exporter's names it can export).
	ownRe = regexp.MustCompile(`\b(?:lvsmon|node_ipvs)_[A-Za-z0-9_]*`)
)

// unknownRefs lists what expr names that is neither exported (per the
// golden files) nor recorded by a rule.
func unknownRefs(expr string, exported, recorded map[string]bool) []string {
	var bad []string
	for _, m := range nameMatcherRe.FindAllStringSubmatch(expr, -1) {
		re, err := regexp.Compile("^(?:" + m[1] + ")$")
		if err != nil {
			bad = append(bad, fmt.Sprintf("__name__ pattern %q: %v", m[1], err))
			continue
		}
		hit := false
		for n := range exported {
			hit = hit || re.MatchString(n)
		}
		if !hit {
			bad = append(bad, fmt.Sprintf("__name__ pattern %q matches no exported metric", m[1]))
		}
	}
	rest := stringRe.ReplaceAllString(expr, `""`)
	for _, n := range recordedRe.FindAllString(rest, -1) {
		if !recorded[n] {
			bad = append(bad, "recording rule "+n+" is not defined in prometheus/rules")
		}
	}
	rest = recordedRe.ReplaceAllString(rest, "")
	for _, n := range ownRe.FindAllString(rest, -1) {
		if !exported[n] {
			bad = append(bad, "metric "+n+" is not in lvsmon's golden /metrics output")
		}
	}
	return bad
}

func TestUnknownRefs(t *testing.T) {
	exp := map[string]bool{"lvsmon_real_server_weight": true, "lvsmon_real_server_configured_weight": true}
	rec := map[string]bool{"service:lvsmon_x:count": true}
	tests := []struct {
		expr string
		bad  int
	}{
		{`lvsmon_real_server_weight{service="lvsmon_not_a_metric"}`, 0},
		{`rate(lvsmon_real_server_connections_total[5m])`, 1},
		{`service:lvsmon_x:count > 0`, 0},
		{`service:lvsmon_y:count`, 1},
		{`{__name__=~"lvsmon_real_server_(configured_)?weight"}`, 0},
		{`{__name__=~"lvsmon_real_server_(current_)?health"}`, 1},
		{`sum_over_time(lvsmon_real_server_weight[10m:1m])`, 0},
		{`node_ipvs_backend_weight`, 1},
	}
	for _, tc := range tests {
		if got := unknownRefs(tc.expr, exp, rec); len(got) != tc.bad {
			t.Errorf("unknownRefs(%s) = %q, want %d problems", tc.expr, got, tc.bad)
		}
	}
}

func TestRulesReferenceExportedMetrics(t *testing.T) {
	exp, rec := exported(t), recorded(t)
	for file, rules := range readRules(t) {
		for _, r := range rules {
			name := r.Record + r.Alert
			for _, bad := range unknownRefs(r.Expr, exp, rec) {
				t.Errorf("%s: %s: %s", file, name, bad)
			}
		}
	}
}

// TestAlerts holds the alerts to what an on-call reader needs.
func TestAlerts(t *testing.T) {
	seen := map[string]bool{}
	sections := runbookSections(t)
	for file, rules := range readRules(t) {
		for _, r := range rules {
			if r.Alert == "" {
				continue
			}
			if seen[r.Alert] {
				t.Errorf("%s: alert %s defined twice", file, r.Alert)
			}
			seen[r.Alert] = true
			if s := r.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("%s: %s: severity %q, want warning or critical", file, r.Alert, s)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: %s: needs a summary and a description", file, r.Alert)
			}
			if !strings.HasPrefix(r.Alert, "Lvsmon") {
				t.Errorf("%s: %s: alert names start with Lvsmon", file, r.Alert)
			}
			u := r.Annotations["runbook_url"]
			base, anchor, _ := strings.Cut(u, "#")
			switch {
			case base != runbookBase:
				t.Errorf("%s: %s: runbook_url %q, want %s#<section>", file, r.Alert, u, runbookBase)
			case !sections[anchor]:
				t.Errorf("%s: %s: runbook_url %q: RUNBOOK.md has no section #%s", file, r.Alert, u, anchor)
			}
		}
	}
	if len(seen) == 0 {
		t.Fatal("no alerts")
	}
	// lvsmon's own Alertmanager alerts have their sections too.
	for _, name := range alerting.AlertNames {
		if !sections[strings.ToLower(name)] {
			t.Errorf("RUNBOOK.md has no section for the Alertmanager alert %s", name)
		}
		seen[name] = true
	}
	// Every section is an alert's: a renamed alert leaves no orphan.
	for a := range sections {
		found := false
		for name := range seen {
			found = found || strings.ToLower(name) == a
		}
		if !found && a != "" {
			t.Errorf("RUNBOOK.md: section #%s is no shipped alert's", a)
		}
	}
}

// runbookBase is where the alerts' runbook_url points.
const runbookBase = "https://github.com/lvsmon/lvsmon/blob/main/RUNBOOK.md"

// runbookSections are the anchors of RUNBOOK.md's "## " headings, as
// GitHub makes them (lower case; the alert names have nothing else to
// change).
func runbookSections(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("../RUNBOOK.md")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if h, ok := strings.CutPrefix(line, "## "); ok {
			out[strings.ToLower(strings.TrimSpace(h))] = true
		}
	}
	return out
}

// Grafana dashboard JSON, the parts the lint reads.
type dashboard struct {
	UID           string   `json:"uid"`
	Title         string   `json:"title"`
	SchemaVersion int      `json:"schemaVersion"`
	Tags          []string `json:"tags"`
	Templating    struct {
		List []variable `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Definition string          `json:"definition"`
	Datasource *datasource     `json:"datasource"`
}

type panel struct {
	ID          int         `json:"id"`
	Type        string      `json:"type"`
	Title       string      `json:"title"`
	Description string      `json:"description"`
	Datasource  *datasource `json:"datasource"`
	GridPos     struct {
		X, Y, W, H int
	} `json:"gridPos"`
	Targets []struct {
		Expr       string      `json:"expr"`
		RefID      string      `json:"refId"`
		Datasource *datasource `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

var (
	varRefRe  = regexp.MustCompile(`\$\{?(\w+)(?::\w+)?\}?`)
	dashRefRe = regexp.MustCompile(`/d/([A-Za-z0-9_-]+)/`)
	// Variable queries: label_values(selector, label), query_result(expr).
	labelValuesRe = regexp.MustCompile(`^label_values\((.*),\s*(\w+)\)$`)
	queryResultRe = regexp.MustCompile(`^query_result\((.*)\)$`)
)

// concrete replaces Grafana variables with values PromQL parses.
func concrete(expr string) string {
	return varRefRe.ReplaceAllStringFunc(expr, func(m string) string {
		name := varRefRe.FindStringSubmatch(m)[1]
		if strings.HasPrefix(name, "__") {
			return "5m" // $__rate_interval, $__interval, $__range
		}
		return "x"
	})
}

func loadDashboards(t *testing.T) map[string]dashboard {
	t.Helper()
	files, err := filepath.Glob("grafana/dashboards/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards (%v)", err)
	}
	out := map[string]dashboard{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard
		dec := json.NewDecoder(strings.NewReader(string(b)))
		if err := dec.Decode(&d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[f] = d
	}
	return out
}

// TestDashboards lints every dashboard: structure, data source, layout,
// variables, links, and every query's metrics (exported or recorded).
// TestDashboardQueriesWithPromtool (lab tier) has promtool parse the
// queries too.
func TestDashboards(t *testing.T) {
	lintDashboards(t)
}

// lintDashboards is TestDashboards; it returns every query (variables'
// and panels') as a recording rule, for promtool to parse.
func lintDashboards(t *testing.T) []rule {
	t.Helper()
	exp, rec := exported(t), recorded(t)
	dashboards := loadDashboards(t)
	uids := map[string]string{}
	for f, d := range dashboards {
		if prev, ok := uids[d.UID]; ok {
			t.Errorf("%s: uid %q also used by %s", f, d.UID, prev)
		}
		uids[d.UID] = f
	}
	var exprs []rule
	for f, d := range dashboards {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if want := strings.TrimSuffix(filepath.Base(f), ".json"); d.UID != want {
				t.Errorf("uid %q, want the file name %q (links use it)", d.UID, want)
			}
			if d.Title == "" || d.SchemaVersion < 39 {
				t.Errorf("title %q, schemaVersion %d (want a title and 39 or newer)", d.Title, d.SchemaVersion)
			}
			if !slices.Contains(d.Tags, "lvsmon") {
				t.Error("no lvsmon tag: the dashboards' links list dashboards by that tag")
			}
			vars := map[string]bool{}
			for _, v := range d.Templating.List {
				vars[v.Name] = true
				if v.Type == "datasource" {
					continue
				}
				if v.Datasource == nil || v.Datasource.UID != "${datasource}" {
					t.Errorf("variable %s: data source %+v, want ${datasource}", v.Name, v.Datasource)
				}
				q := v.Definition
				var sel string
				if m := labelValuesRe.FindStringSubmatch(q); m != nil {
					sel = m[1]
				} else if m := queryResultRe.FindStringSubmatch(q); m != nil {
					sel = m[1]
				} else {
					t.Errorf("variable %s: query %q is neither label_values nor query_result", v.Name, q)
					continue
				}
				for _, bad := range unknownRefs(sel, exp, rec) {
					t.Errorf("variable %s: %s", v.Name, bad)
				}
				exprs = append(exprs, rule{Record: fmt.Sprintf("dashboard:%s_var_%s:check", strings.ReplaceAll(d.UID, "-", "_"), v.Name), Expr: concrete(sel)})
			}
			if !vars["datasource"] {
				t.Error("no datasource variable: the dashboard must work with any Prometheus")
			}
			ids := map[int]bool{}
			var boxes []panel
			queries := 0
			var walk func(ps []panel)
			walk = func(ps []panel) {
				for _, p := range ps {
					if ids[p.ID] {
						t.Errorf("panel id %d used twice", p.ID)
					}
					ids[p.ID] = true
					g := p.GridPos
					if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
						t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, g)
					}
					for _, o := range boxes {
						og := o.GridPos
						if g.X < og.X+og.W && og.X < g.X+g.W && g.Y < og.Y+og.H && og.Y < g.Y+g.H {
							t.Errorf("panels %q and %q overlap", p.Title, o.Title)
						}
					}
					boxes = append(boxes, p)
					if p.Type == "row" {
						walk(p.Panels)
						continue
					}
					if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
						t.Errorf("panel %q: data source %+v, want ${datasource}", p.Title, p.Datasource)
					}
					if p.Description == "" {
						t.Errorf("panel %q: no description (the (i) an operator hovers over)", p.Title)
					}
					if len(p.Targets) == 0 {
						t.Errorf("panel %q: no queries", p.Title)
					}
					refs := map[string]bool{}
					for i, tg := range p.Targets {
						if refs[tg.RefID] || tg.RefID == "" {
							t.Errorf("panel %q: refId %q empty or repeated", p.Title, tg.RefID)
						}
						refs[tg.RefID] = true
						if tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
							t.Errorf("panel %q %s: data source %+v", p.Title, tg.RefID, tg.Datasource)
						}
						for _, m := range varRefRe.FindAllStringSubmatch(tg.Expr, -1) {
							if !vars[m[1]] && !strings.HasPrefix(m[1], "__") {
								t.Errorf("panel %q: $%s is not a variable of this dashboard", p.Title, m[1])
							}
						}
						for _, bad := range unknownRefs(tg.Expr, exp, rec) {
							t.Errorf("panel %q: %s", p.Title, bad)
						}
						queries++
						exprs = append(exprs, rule{Record: fmt.Sprintf("dashboard:%s_panel_%d_%d:check", strings.ReplaceAll(d.UID, "-", "_"), p.ID, i), Expr: concrete(tg.Expr)})
					}
				}
			}
			walk(d.Panels)
			if queries == 0 {
				t.Error("no queries")
			}
			raw, _ := os.ReadFile(f)
			for _, m := range dashRefRe.FindAllStringSubmatch(string(raw), -1) {
				if _, ok := uids[m[1]]; !ok {
					t.Errorf("link to dashboard %q, which does not exist", m[1])
				}
			}
		})
	}
	return exprs
}

// TestGrafanaProvisioning checks that the provisioning files point where
// docker-compose.yml puts things.
func TestGrafanaProvisioning(t *testing.T) {
	compose := readCompose(t)
	graf := compose.Services["grafana"]
	mounts := map[string]string{} // repo path -> container path
	for _, v := range graf.Volumes {
		src, dst, _ := strings.Cut(v, ":")
		dst, _, _ = strings.Cut(dst, ":")
		mounts[filepath.Clean(src)] = dst
	}

	var ds struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Type string `yaml:"type"`
			URL  string `yaml:"url"`
		} `yaml:"datasources"`
	}
	readYAML(t, "grafana/provisioning/datasources/prometheus.yml", &ds)
	if ds.APIVersion != 1 || len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" {
		t.Errorf("datasources: %+v", ds)
	} else if _, ok := compose.Services["prometheus"]; !ok || ds.Datasources[0].URL != "http://prometheus:9090" {
		t.Errorf("datasource URL %q, want the compose service http://prometheus:9090", ds.Datasources[0].URL)
	}

	var prov struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Type    string `yaml:"type"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, "grafana/provisioning/dashboards/lvsmon.yml", &prov)
	if prov.APIVersion != 1 || len(prov.Providers) != 1 || prov.Providers[0].Type != "file" {
		t.Fatalf("dashboard providers: %+v", prov)
	}
	if got, want := prov.Providers[0].Options.Path, mounts["dashboards/grafana/dashboards"]; got != want || got == "" {
		t.Errorf("provider reads %q, compose mounts the dashboards at %q", got, want)
	}
	for dir, want := range map[string]string{
		"dashboards/grafana/provisioning/datasources": "/etc/grafana/provisioning/datasources",
		"dashboards/grafana/provisioning/dashboards":  "/etc/grafana/provisioning/dashboards",
	} {
		if mounts[dir] != want {
			t.Errorf("compose mounts %s at %q, want %s", dir, mounts[dir], want)
		}
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
