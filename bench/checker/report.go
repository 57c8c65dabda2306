package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// secs3 shows a duration around a second to the millisecond.
func secs3(d time.Duration) string {
	if d < 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f s", d.Seconds())
}

func secs(d time.Duration) string {
	switch {
	case d < 0:
		return "-"
	case d >= 100*time.Second:
		return fmt.Sprintf("%.0f s", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.0f ms", float64(d)/1e6)
	case d >= time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.0f µs", float64(d)/1e3)
}

// never is a detection that did not happen within the bound.
const never = time.Duration(math.MaxInt64)

// detectQ is a quantile of the detection latencies, the missed ones
// counting as never.
func (p *phase) detectQ(q float64) time.Duration {
	all := append([]time.Duration(nil), p.detect...)
	for range p.missed {
		all = append(all, never)
	}
	return quantile(all, q)
}

func (p *phase) detectStr(q float64) string {
	d := p.detectQ(q)
	if d == never {
		return "> " + secs(p.bound)
	}
	return secs(d)
}

func mb(b int64) string { return fmt.Sprintf("%d MB", (b+1<<19)>>20) }

func ratioStr(a, b time.Duration) string {
	switch {
	case a == never && b == never:
		return "?"
	case a == never:
		return "∞"
	case b <= 0:
		return "-"
	}
	return fmt.Sprintf("%.1f×", float64(a)/float64(b))
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT MET"
}

func report(w io.Writer, results, floors []*result, o opts) {
	for _, r := range results {
		if r.how != "" {
			fmt.Fprintf(w, "ldirectord's fake ipvsadm: %s.\n", r.how)
			break
		}
	}
	var failed []string
	for _, r := range results {
		if r.err != nil {
			failed = append(failed, fmt.Sprintf("%s at %d: %v", r.tool, r.n, r.err))
		}
	}

	fmt.Fprintf(w, "\nStart, from an empty table: time until every server was checked once (counted by the servers, from the\n"+
		"tool's exec; lvsmon's own count from checker.Apply), the CPU used until then, and the writers' work\n")
	fmt.Fprintf(w, "%-20s %7s %12s %11s %10s %13s %17s\n", "", "servers", "first round", "from Apply", "CPU", "ipvsadm runs", "reconcile rounds")
	for _, r := range results {
		if r.firstRound == 0 && r.err != nil {
			continue
		}
		runs, rounds := "-", "-"
		if r.ipvsadmFirst >= 0 {
			runs = fmt.Sprint(r.ipvsadmFirst)
		}
		if r.rounds > 0 {
			rounds = fmt.Sprintf("%d (+1 s)", r.rounds)
		}
		fmt.Fprintf(w, "%-20s %7d %12s %11s %10s %13s %17s\n", r.tool, r.n, secs3(r.firstRound), secs3(r.firstRoundIn),
			secs(r.startCPU), runs, rounds)
	}

	table := func(title string, ph func(r *result) *phase) {
		fmt.Fprintf(w, "\n%s\n", title)
		fmt.Fprintf(w, "%-20s %7s %16s %8s %8s %8s %9s %14s %9s %9s\n", "", "servers", "checks/s (want)", "period",
			"longest", "CPU", "CPU/check", "memory (procs)", "detect", "detect")
		fmt.Fprintf(w, "%-20s %7s %16s %8s %8s %8s %9s %14s %9s %9s\n", "", "", "", "median", "gap", "% core", "",
			"PSS", "median", "max")
		for _, r := range results {
			p := ph(r)
			if p.window == 0 {
				continue
			}
			period, gap := secs(p.periodMed), secs(p.periodMax)
			if p.twice < r.n {
				// Some servers were checked less than twice in the window:
				// the period is longer than the window for them.
				period = fmt.Sprintf("≈%s", secs(time.Duration(float64(r.n)/p.rate*float64(time.Second))))
				gap = "> " + secs(p.window)
				if p.rate == 0 {
					period = "> " + secs(p.window)
				}
			}
			fmt.Fprintf(w, "%-20s %7d %16s %8s %8s %7.1f%% %9s %14s %9s %9s\n", r.tool, r.n,
				fmt.Sprintf("%.0f (%.0f)", p.rate, p.wanted), period, gap, 100*p.cpuShare(), secs(p.cpuPerCheck()),
				fmt.Sprintf("%s (%d)", mb(p.pss), p.procs), p.detectStr(0.5), p.detectStr(1))
		}
	}
	k := 10
	if len(results) > 0 {
		k = results[0].k
	}
	table(fmt.Sprintf("Every server healthy (window %s); detection: %d+ servers start answering 503 at once", o.window, k),
		func(r *result) *phase { return &r.healthy })
	table(fmt.Sprintf("10%% of the servers tarpitted (accept, never answer); detection: %d+ more servers break at once, half 503, half tarpits", k),
		func(r *result) *phase { return &r.tarpit })
	fmt.Fprintf(w, "\nperiod: each server's mean time between two checks (median over the servers; ≈ servers ÷ checks/s when some\n"+
		"were checked less than twice in the window); longest gap: the longest any server waited; CPU: the tool's process\n"+
		"tree, ipvsadm runs and forked children included; detection: from the break until the tool's table had weight 0.\n")
	for _, r := range results {
		for _, p := range []*phase{&r.healthy, &r.tarpit} {
			if p.probes >= 0 && p.checks > 0 && math.Abs(float64(p.probes-p.checks)) > 0.02*float64(p.checks)+5 {
				fmt.Fprintf(w, "note: %s at %d: %d probes by lvsmon's count, %d checks by the servers'\n", r.tool, r.n, p.probes, p.checks)
			}
		}
	}

	if len(floors) > 0 {
		fmt.Fprintf(w, "\nFloor: a bare Go loop on lvsmon's schedule (a goroutine per server, a fresh connection, a fixed GET, the\n"+
			"answer read, close; no parsing, no state, no reconciler): what the kernel and the Go runtime cost here\n")
		fmt.Fprintf(w, "%-20s %7s %16s %8s %8s %9s %14s\n", "", "servers", "checks/s (want)", "period", "CPU", "CPU/check", "memory")
		for _, r := range floors {
			p := &r.healthy
			if r.err != nil || p.window == 0 {
				fmt.Fprintf(w, "%-20s %7d failed: %v\n", r.tool, r.n, r.err)
				continue
			}
			fmt.Fprintf(w, "%-20s %7d %16s %8s %7.1f%% %9s %14s\n", r.tool, r.n, fmt.Sprintf("%.0f (%.0f)", p.rate, p.wanted),
				secs(p.periodMed), 100*p.cpuShare(), secs(p.cpuPerCheck()), mb(p.pss))
		}
	}

	find := func(tool string, n int) *result {
		for _, r := range results {
			if r.tool == tool && r.n == n && r.err == nil {
				return r
			}
		}
		return nil
	}

	// Ratios.
	var ratioLines []string
	for _, r := range results {
		if r.tool == "lvsmon" || r.err != nil {
			continue
		}
		lv := find("lvsmon", r.n)
		if lv == nil {
			continue
		}
		ratioLines = append(ratioLines, fmt.Sprintf("%-20s %7d %10s %10s %12s %12s %12s", r.tool, r.n,
			ratioStr(r.healthy.cpuPerCheck(), lv.healthy.cpuPerCheck()), ratioStr(r.tarpit.cpuPerCheck(), lv.tarpit.cpuPerCheck()),
			ratioStr(r.tarpit.detectQ(0.5), lv.tarpit.detectQ(0.5)), ratioStr(r.tarpit.detectQ(1), lv.tarpit.detectQ(1)),
			ratioStr(r.firstRound, lv.firstRound)))
	}
	if len(ratioLines) > 0 {
		fmt.Fprintf(w, "\nldirectord ÷ lvsmon, same run, same servers (higher: lvsmon better)\n")
		fmt.Fprintf(w, "%-20s %7s %10s %10s %12s %12s %12s\n", "", "servers", "CPU/check", "CPU/check", "detection", "detection", "first full")
		fmt.Fprintf(w, "%-20s %7s %10s %10s %12s %12s %12s\n", "", "", "healthy", "tarpits", "median, tp", "max, tp", "round")
		for _, l := range ratioLines {
			fmt.Fprintln(w, l)
		}
	}

	// Targets.
	fmt.Fprintf(w, "\nTargets (lvsmon)\n")
	bound := o.interval*time.Duration(o.fall) + o.timeout + 100*time.Millisecond
	for _, r := range results {
		if r.tool != "lvsmon" || r.err != nil {
			continue
		}
		var sched []string
		ok := true
		for _, c := range []struct {
			name string
			p    *phase
		}{{"healthy", &r.healthy}, {"tarpits", &r.tarpit}} {
			good := c.p.rate >= 0.98*c.p.wanted && c.p.twice == r.n && c.p.periodMed <= o.interval*102/100
			ok = ok && good
			sched = append(sched, fmt.Sprintf("%s %.0f/s of %.0f, period %s, longest gap %s", c.name, c.p.rate, c.p.wanted,
				secs(c.p.periodMed), secs(c.p.periodMax)))
		}
		fmt.Fprintf(w, "  %5d servers checked on schedule (≥98%% of the checks, median period ≤ 1.02 × interval): %s (%s)\n",
			r.n, verdict(ok), strings.Join(sched, "; "))
	}
	if lv := find("lvsmon", 500); lv != nil {
		fl := ""
		for _, f := range floors {
			if f.n == 500 && f.err == nil {
				fl = fmt.Sprintf("; the bare loop's floor: %.1f%%", 100*f.healthy.cpuShare())
			}
		}
		fmt.Fprintf(w, "  500 servers under 5%% of one core: %s (%.1f%% healthy, %.1f%% with tarpits%s)\n",
			verdict(lv.healthy.cpuShare() < 0.05), 100*lv.healthy.cpuShare(), 100*lv.tarpit.cpuShare(), fl)
	}
	for _, r := range results {
		if r.tool != "lvsmon" || r.err != nil {
			continue
		}
		fmt.Fprintf(w, "  %5d servers, first full round within one interval (%s): %s (%s from Apply, %s from exec)\n",
			r.n, o.interval, verdict(r.firstRoundIn >= 0 && r.firstRoundIn <= o.interval), secs3(r.firstRoundIn), secs3(r.firstRound))
	}
	for _, r := range results {
		if r.tool != "lvsmon" || r.err != nil {
			continue
		}
		worst := max(r.healthy.detectQ(1), r.tarpit.detectQ(1))
		fmt.Fprintf(w, "  %5d servers, detection within interval × fall + timeout + 100 ms = %s: %s (max %s healthy, %s with tarpits)\n",
			r.n, secs(bound), verdict(worst <= bound), r.healthy.detectStr(1), r.tarpit.detectStr(1))
	}
	for _, r := range results {
		if r.tool == "lvsmon" || r.err != nil {
			continue
		}
		lv := find("lvsmon", r.n)
		if lv == nil {
			continue
		}
		med := float64(r.tarpit.detectQ(0.5)) / float64(lv.tarpit.detectQ(0.5))
		mx := float64(r.tarpit.detectQ(1)) / float64(lv.tarpit.detectQ(1))
		fmt.Fprintf(w, "  %5d servers, detection with tarpits ≥10× lower than %s's: %s (median %s vs %s, max %s vs %s)\n",
			r.n, r.tool, verdict(med >= 10 && mx >= 10), lv.tarpit.detectStr(0.5), r.tarpit.detectStr(0.5),
			lv.tarpit.detectStr(1), r.tarpit.detectStr(1))
	}
	if len(failed) > 0 {
		fmt.Fprintf(w, "\nRuns that failed:\n")
		for _, f := range failed {
			fmt.Fprintf(w, "  %s\n", f)
		}
	}
}
