package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// mergeBomb is the reviewer's 763-byte shape: levels of anchors, each
// merging the previous one twice, used where the config walk follows
// merge keys (a virtual service) or at the top level.
func mergeBomb(levels int, inService bool) string {
	var b strings.Builder
	if inService {
		b.WriteString("virtual_services:\n  - &a0 {name: w, address: 10.0.0.1, port: 80}\n")
		for i := 1; i <= levels; i++ {
			fmt.Fprintf(&b, "  - &a%d {<<: *a%d, <<: *a%d}\n", i, i-1, i-1)
		}
		return b.String()
	}
	b.WriteString("x0: &a0 {director: d}\n")
	for i := 1; i <= levels; i++ {
		fmt.Fprintf(&b, "x%d: &a%d {<<: *a%d, <<: *a%d}\n", i, i, i-1, i-1)
	}
	fmt.Fprintf(&b, "<<: *a%d\n", levels)
	return b.String()
}

// laughs is the classic billion laughs: 9 levels of lists of 9 aliases.
func laughs() string {
	var b strings.Builder
	b.WriteString(`a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]` + "\n")
	for c := 'b'; c <= 'i'; c++ {
		p := string(c - 1)
		fmt.Fprintf(&b, "%c: &%c [*%s,*%s,*%s,*%s,*%s,*%s,*%s,*%s,*%s]\n", c, c, p, p, p, p, p, p, p, p, p)
	}
	b.WriteString("virtual_services: [{name: w, address: 10.0.0.1, port: 80, check: {type: external, command: /bin/true, args: *i}}]\n")
	return b.String()
}

func chain(n int) string {
	var b strings.Builder
	b.WriteString("a0: &a0 [x]\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [*a%d]\n", i, i, i-1)
	}
	return b.String()
}

// TestAliasBombsAreRefused: a document whose aliases or merge keys
// expand without bound is refused with the line of the alias, after
// work linear in what is written. Before the bound, the 24-level merge
// bomb kept check-config and a reload busy for minutes, and an anchor
// merged into itself crashed lvsmon with a stack overflow.
func TestAliasBombsAreRefused(t *testing.T) {
	tests := []struct {
		name, doc string
		line      int
		msg       string
	}{
		{"24-level merge bomb", mergeBomb(24, false), 17, "alias *a15 (anchor &a15 at line 16) makes the document too large"},
		{"24-level merge bomb in a service", mergeBomb(24, true), 17, "alias *a14 (anchor &a14 at line 16) makes the document too large"},
		{"billion laughs", laughs(), 6, "alias *e (anchor &e at line 5) makes the document too large"},
		{"anchor merged into itself", "virtual_services:\n  - &a {name: x, <<: *a}\n", 2, "alias *a is inside the node its anchor &a (line 2) marks: its value would be infinite"},
		{"top-level self merge", "<<: &a {director: x, <<: *a}\n", 1, "alias *a is inside the node its anchor &a (line 1) marks"},
		{"list inside itself", "virtual_services: &l [*l]\n", 1, "alias *l is inside the node"},
		// Each anchor uses the previous one: the whole is quadratic.
		{"chain of 1500 anchors", chain(1500), 993, "alias *a991 (anchor &a991 at line 992) makes the document too large"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The check's own work, counted: linear in the nodes written.
			var root yaml.Node
			if err := yaml.Unmarshal([]byte(tc.doc), &root); err != nil {
				t.Fatal(err)
			}
			p, steps := checkExpansion("bomb.yaml", &root)
			if p == nil {
				t.Fatal("the document was accepted")
			}
			if written := countNodes(&root); steps > 3*written {
				t.Errorf("the check visited %d nodes for %d written", steps, written)
			}
			// And the whole of Parse refuses it with that one problem (a
			// deadline, not a speed test: before the bound this took minutes).
			done := make(chan error, 1)
			go func() { _, err := Parse("bomb.yaml", []byte(tc.doc)); done <- err }()
			var err error
			select {
			case err = <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("Parse still runs after 5s")
			}
			var errs Errors
			if !errors.As(err, &errs) || len(errs) != 1 {
				t.Fatalf("err = %v", err)
			}
			want := fmt.Sprintf("bomb.yaml:%d: %s", tc.line, tc.msg)
			if !strings.HasPrefix(errs[0].String(), want) {
				t.Errorf("problem = %q\nwant it to start %q", errs[0], want)
			}
		})
	}
}

// Anchors as operators use them (defined where first used, since every
// key must be one lvsmon knows): a shared check, real-server defaults, a
// merge from a list of templates, one real-server list shared by 100
// services. All are accepted, a key written beside a merge wins, and an
// unknown key in a merged template is still an error with its line.
func TestAliasesInRealConfigs(t *testing.T) {
	var b strings.Builder
	b.WriteString(`virtual_services:
  - name: s0
    <<: &sched {scheduler: wrr}
    address: 10.0.0.1
    port: 80
    check: &check {type: http, path: /health, interval: 2s}
    real_servers: &pool
      - &rs {address: 10.1.0.1, port: 80, forward: dr, weight: 2}
`)
	for i := 2; i <= 50; i++ {
		fmt.Fprintf(&b, "      - {<<: *rs, address: 10.1.0.%d}\n", i)
	}
	for i := 1; i < 100; i++ {
		fmt.Fprintf(&b, "  - {<<: [*sched], name: s%d, address: 10.0.%d.%d, port: 80, check: *check, real_servers: *pool}\n", i, i/250, i%250+1)
	}
	b.WriteString("  - {<<: *sched, scheduler: rr, name: own, address: 10.9.9.9, port: 80, real_servers: [{<<: *rs, weight: 5}]}\n")
	c, err := Parse("t.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(c.VirtualServices); n != 101 {
		t.Fatalf("%d services", n)
	}
	vs := c.VirtualServices[99]
	if vs.Scheduler != "wrr" || vs.Check.Path != "/health" || len(vs.Reals) != 50 || *vs.Reals[49].Weight != 2 || vs.Reals[49].Address != "10.1.0.50" {
		t.Errorf("service 99 = %+v", vs)
	}
	own := c.VirtualServices[100]
	if own.Scheduler != "rr" || *own.Reals[0].Weight != 5 {
		t.Errorf("keys written beside a merge: scheduler %s, weight %d", own.Scheduler, *own.Reals[0].Weight)
	}

	// An unknown key in a template merged from a list, and a bad value
	// written beside a merge: both with their own lines.
	_, err = Parse("t.yaml", []byte(`virtual_services:
  - name: a
    address: 10.0.0.1
    port: 80
    <<: &tmpl {scheduler: wrr, shceduler: wrr}
  - <<: [*tmpl]
    address: 10.0.0.2
    port: 80
    real_servers:
      - {address: 10.1.0.1, port: 80, forward: dr}
      - <<: {port: 80, forward: dr}
        address: 10.1.0.2
        weight: -1
`))
	for _, want := range []string{
		`t.yaml:5: virtual_services[0].shceduler: unknown key "shceduler" (did you mean "scheduler"?)`,
		`t.yaml:5: virtual_services[1].shceduler: unknown key "shceduler" (did you mean "scheduler"?)`,
		`t.yaml:13: virtual_services[1].real_servers[1].weight: weight -1 is out of range`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v\nwant %q", err, want)
		}
	}
}

func BenchmarkMergeBomb(b *testing.B) {
	data := []byte(mergeBomb(24, true))
	for b.Loop() {
		if _, err := Parse("bomb.yaml", data); err == nil {
			b.Fatal("accepted")
		}
	}
}
