package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestSortManyProblems: problems come out in line order, those of one
// line in the order found, for 60,000 problems found in the worst order
// for the insertion sort that was here (it took over a minute on a
// 60,000-problem config). The deadline is a guard against a hang, not a
// speed test: the sort is O(n log n).
func TestSortManyProblems(t *testing.T) {
	const n = 60_000
	ps := make(Errors, 0, n)
	for i := n; i > 0; i-- {
		ps = append(ps, Problem{File: "big.yaml", Line: (i + 1) / 2, Msg: fmt.Sprintf("problem %d", i)})
	}
	done := make(chan struct{})
	go func() { sortProblems(ps); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("sorting 60,000 problems still runs after 5s")
	}
	for i := 1; i < len(ps); i++ {
		a, b := ps[i-1], ps[i]
		if a.Line > b.Line {
			t.Fatalf("problem %d (line %d) after line %d", i, b.Line, a.Line)
		}
		// Same line: found first (the higher number, built first) first.
		if a.Line == b.Line && a.Msg < b.Msg && len(a.Msg) == len(b.Msg) {
			t.Fatalf("line %d: %q before %q, not in the order found", a.Line, a.Msg, b.Msg)
		}
	}
}

// bigConfig has 30,000 real servers with two problems each: an unknown
// key (found by the walk) and a port that dr cannot rewrite (found by
// validation), so the two kinds interleave when sorted.
func bigConfig(servers int) []byte {
	var b strings.Builder
	b.WriteString("virtual_services:\n  - name: web\n    address: 10.0.0.1\n    port: 80\n    real_servers:\n")
	for i := range servers {
		fmt.Fprintf(&b, "      - {address: 10.%d.%d.%d, port: 81, bogus: 1}\n", (i>>16)&255, (i>>8)&255, i&255)
	}
	return []byte(b.String())
}

func BenchmarkParse60kProblems(b *testing.B) {
	data := bigConfig(30_000)
	for b.Loop() {
		_, err := Parse("big.yaml", data)
		var errs Errors
		if !errors.As(err, &errs) || len(errs) != 60_000 {
			b.Fatalf("%d problems", len(errs))
		}
	}
}
