// Command graphs-bench measures lvsmon's collect+store cycle and graph
// rendering against the lvs-rrd way, in one run on one machine:
//
//   - one full cycle (read the table, write every RRD file) on fake tables
//     of 100×20, 500×20 and 1000×50 services × real servers, for lvsmon and
//     for "one rrdtool update process per real server" (lvs-rrd's method)
//     at the sizes that method can finish;
//   - a day graph of a 50-server service drawn in process, against the
//     same graph drawn by an `rrdtool graph` process.
//
// RRD files normally keep five resolutions from a day to five years (about
// 5 MB a file at a 10 s step): 51,000 of them do not fit on a test disk.
// The benchmark keeps the same RRAs (count, consolidation, data sources)
// with a hundredth of the rows. What an update costs depends on the RRAs
// written, not on their length, so the per-file cost is the one a full
// file has while its pages are cached; with files far larger than memory,
// a real director pays disk reads on top, for both methods alike.
//
// It prints one line per measurement and the ratios; each size runs in a
// child process so that its peak RSS is its own.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ziutek/rrd"

	"github.com/lvsmon/lvsmon/collector"
	"github.com/lvsmon/lvsmon/graphs"
	"github.com/lvsmon/lvsmon/lvs"
)

// result is what a child reports.
type result struct {
	Size       string  `json:"size"`
	Batch      int     `json:"batch"`
	Files      int     `json:"files"`
	CreateS    float64 `json:"create_s"`
	CycleS     float64 `json:"cycle_median_s"`
	CycleMaxS  float64 `json:"cycle_max_s"`
	ForkS      float64 `json:"fork_s,omitempty"` // lvs-rrd way, one cycle
	PeakRSSMB  float64 `json:"peak_rss_mb"`
	RenderMS   float64 `json:"render_ms,omitempty"`
	RrdtoolMS  float64 `json:"rrdtool_graph_ms,omitempty"`
	RenderSize string  `json:"render_size,omitempty"`
}

const step = 10 * time.Second

func main() {
	child := flag.String("size", "", "run one size (SxR) in this process and print JSON")
	fork := flag.Bool("fork", false, "with -size: also time the one-process-per-server way")
	batch := flag.Int("batch", 1, "with -size: steps per RRD write (graphs.write_every / step)")
	render := flag.Bool("render", false, "measure graph rendering of a 50-server service")
	dir := flag.String("dir", "", "work directory (default: a temporary one)")
	flag.Parse()
	if *dir == "" {
		d, err := os.MkdirTemp("", "lvsmon-graphs-bench-")
		if err != nil {
			fail(err)
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	switch {
	case *child != "":
		r := runSize(*child, *fork, *batch, *dir)
		json.NewEncoder(os.Stdout).Encode(r)
	case *render:
		r := runRender(*dir)
		json.NewEncoder(os.Stdout).Encode(r)
	default:
		parent(*dir)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "graphs-bench:", err)
	os.Exit(1)
}

// parent runs every measurement in a child and prints the table.
func parent(dir string) {
	self, err := os.Executable()
	if err != nil {
		fail(err)
	}
	fmt.Printf("graphs-bench: %d CPUs, step %s, RRAs as in production with 1/100 of the rows\n", runtime.NumCPU(), step)
	var rs []result
	for _, sz := range []struct {
		size  string
		fork  bool
		batch int
	}{{"100x20", true, 1}, {"500x20", true, 1}, {"1000x50", false, 1}, {"1000x50", false, 6}} {
		out, err := exec.Command(self, "-size", sz.size, "-fork="+strconv.FormatBool(sz.fork), "-batch", strconv.Itoa(sz.batch),
			"-dir", filepath.Join(dir, sz.size+"-"+strconv.Itoa(sz.batch))).Output()
		if err != nil {
			fail(fmt.Errorf("size %s: %w", sz.size, err))
		}
		var r result
		if err := json.Unmarshal(out, &r); err != nil {
			fail(err)
		}
		rs = append(rs, r)
		line := fmt.Sprintf("collect+store %-8s write every %d step(s)  files %6d  create %6.2fs  cycle median %6.3fs max %6.3fs  peak RSS %6.1f MB",
			r.Size, r.Batch, r.Files, r.CreateS, r.CycleS, r.CycleMaxS, r.PeakRSSMB)
		if r.ForkS > 0 {
			line += fmt.Sprintf("  | rrdtool-per-server %7.2fs  ratio %.0f×", r.ForkS, r.ForkS/r.CycleS)
		}
		fmt.Println(line)
	}
	out, err := exec.Command(self, "-render", "-dir", filepath.Join(dir, "render")).Output()
	if err != nil {
		fail(fmt.Errorf("render: %w", err))
	}
	var r result
	if err := json.Unmarshal(out, &r); err != nil {
		fail(err)
	}
	fmt.Printf("render day graph, 50-server service %s: in process %.1f ms, rrdtool graph process %.1f ms, ratio %.1f×, peak RSS %.1f MB\n",
		r.RenderSize, r.RenderMS, r.RrdtoolMS, r.RrdtoolMS/r.RenderMS, r.PeakRSSMB)
	big, batched := rs[2], rs[3]
	fmt.Printf("targets: 1000x50 cycle < 2 s: %.3f s writing every step (%s), %.3f s writing every minute (%s); ≥100× the fork way at 500x20: %.0f× (%s); render < 100 ms: %.1f ms (%s)\n",
		big.CycleS, verdict(big.CycleS < 2), batched.CycleS, verdict(batched.CycleS < 2),
		rs[1].ForkS/rs[1].CycleS, verdict(rs[1].ForkS/rs[1].CycleS >= 100), r.RenderMS, verdict(r.RenderMS < 100))
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

// table builds a fake table of s services with r real servers each.
func table(s, r int) lvs.Table {
	var t lvs.Table
	for i := range s {
		k := lvs.AddrKey(lvs.TCP, netip.AddrFrom4([4]byte{10, 100, byte(i >> 8), byte(i)}), 80)
		svc := lvs.Service{Key: k, Scheduler: "wrr"}
		for j := range r {
			svc.Dests = append(svc.Dests, lvs.Dest{Key: lvs.DestKey{Addr: netip.AddrFrom4([4]byte{10, 200 + byte(j>>8), byte(i), byte(j)}), Port: 80}, Weight: 1})
		}
		t.Services = append(t.Services, svc)
	}
	t.Sort()
	return t
}

func shortArchives() []graphs.Archive {
	var out []graphs.Archive
	for _, a := range graphs.DefaultArchives {
		a.Span /= 100
		out = append(out, a)
	}
	return out
}

func runSize(size string, fork bool, batch int, dir string) result {
	a, b, _ := strings.Cut(size, "x")
	ns, _ := strconv.Atoi(a)
	nr, _ := strconv.Atoi(b)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	fake := lvs.NewFake(table(ns, nr))
	sim := lvs.NewSim(fake, 1, time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC))
	for _, s := range table(ns, nr).Services {
		sim.SetProfile(s.Key, lvs.Profile{ConnsPerSec: 50, ConnDuration: time.Second, InPkts: 5, OutPkts: 6, InBytes: 600, OutBytes: 9000})
	}
	store, err := graphs.NewStore(graphs.StoreOptions{Dir: filepath.Join(dir, "rrd"), Step: step, Archives: shortArchives(), Batch: batch, Log: quiet})
	if err != nil {
		fail(err)
	}
	coll := collector.New(fake, step, quiet)
	ctx := context.Background()
	t0 := time.Now().Truncate(step).Add(-time.Hour)
	cycle := func(i int) time.Duration {
		sim.Advance(step)
		start := time.Now()
		s := coll.Sample(ctx)
		snap := *s
		snap.Time = t0.Add(time.Duration(i) * step) // one step apart, as in production
		store.Update(&snap)
		return time.Since(start)
	}
	r := result{Size: size, Batch: batch}
	r.CreateS = cycle(0).Seconds()
	r.Files = store.Health().Files
	var ds []float64
	for i := 1; i <= max(5, 2*batch); i++ {
		ds = append(ds, cycle(i).Seconds())
	}
	if h := store.Health(); h.Errors > 0 {
		fail(fmt.Errorf("store errors: %+v", h.FailingFiles))
	}
	sort.Float64s(ds)
	r.CycleS, r.CycleMaxS = ds[len(ds)/2], ds[len(ds)-1]
	if fork {
		r.ForkS = forkWay(filepath.Join(dir, "rrd"), t0.Add(6*step))
	}
	r.PeakRSSMB = peakRSS()
	return r
}

// forkWay updates every real server's file with one rrdtool process each,
// as lvs-rrd's update script does from cron.
func forkWay(root string, t time.Time) float64 {
	var files []string
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(p, ".rrd") && !strings.HasSuffix(p, "service.rrd") && !strings.HasSuffix(p, "director.rrd") {
			files = append(files, p)
		}
		return nil
	})
	start := time.Now()
	for i, f := range files {
		v := fmt.Sprintf("%d:%d:%d:1:%d:%d:%d:%d:%d", t.Unix(), i%50, i%7, 1000+i, 5000+i, 6000+i, 600000+i, 9000000+i)
		if out, err := exec.Command("rrdtool", "update", f, v).CombinedOutput(); err != nil {
			fail(fmt.Errorf("rrdtool update %s: %v: %s", f, err, out))
		}
	}
	return time.Since(start).Seconds()
}

// runRender fills a day of a 50-server service and times the day graph.
func runRender(dir string) result {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := graphs.NewStore(graphs.StoreOptions{Dir: filepath.Join(dir, "rrd"), Step: step, Log: quiet})
	if err != nil {
		fail(err)
	}
	tab := table(1, 50)
	end := time.Now().Truncate(step)
	start := end.Add(-24 * time.Hour)
	// Create the files with one update, then fill a day by batches.
	tab.SumTotals()
	store.Update(&lvs.Snapshot{Time: start, Table: tab})
	svc := tab.Services[0]
	fill := func(path string, k int) {
		u := rrd.NewUpdater(path)
		for t, n := start.Add(step), 0; !t.After(end); t, n = t.Add(step), n+1 {
			c := uint64(n * (k + 3))
			u.Cache(fmt.Sprintf("%d:%d:%d:1:%d:%d:%d:%d:%d", t.Unix(), 20+k+n%17, 5+n%5, c, 10*c, 12*c, 800*c, 9000*c))
		}
		if err := u.Update(); err != nil {
			fail(err)
		}
	}
	root := filepath.Join(dir, "rrd", svc.Key.ID())
	for j, d := range svc.Dests {
		fill(filepath.Join(root, d.Key.ID()+".rrd"), j)
	}
	fill(filepath.Join(root, "service.rrd"), 60)
	rend := graphs.NewRenderer(store, nil)
	var ds []float64
	for i := range 10 {
		// A new size each time defeats the cache: every draw is real.
		req := graphs.Request{Kind: graphs.ServiceFile, Service: svc.Key.ID(), Graph: graphs.GraphConns, Start: start, End: end, Width: 800 + i, Height: 300}
		t := time.Now()
		if _, err := rend.Render(req); err != nil {
			fail(err)
		}
		ds = append(ds, float64(time.Since(t).Microseconds())/1000)
	}
	sort.Float64s(ds)
	// The same graph through an rrdtool process.
	args := []string{"graph", filepath.Join(dir, "out.png"), "--start", strconv.FormatInt(start.Unix(), 10), "--end", strconv.FormatInt(end.Unix(), 10),
		"--width", "800", "--height", "300", "--full-size-mode", "--slope-mode", "--title", "active connections"}
	for j, d := range svc.Dests {
		v := "a" + strconv.Itoa(j)
		args = append(args, fmt.Sprintf("DEF:%s=%s:active:AVERAGE", v, filepath.Join(root, d.Key.ID()+".rrd")))
		area := fmt.Sprintf("AREA:%s#1f77b4:%s", v, strings.ReplaceAll(d.Key.String(), ":", "\\:"))
		if j > 0 {
			area += ":STACK"
		}
		args = append(args, area, fmt.Sprintf("VDEF:%s_l=%s,LAST", v, v), fmt.Sprintf("GPRINT:%s_l:last %%7.2lf%%s", v))
	}
	var ps []float64
	for range 5 {
		t := time.Now()
		if out, err := exec.Command("rrdtool", args...).CombinedOutput(); err != nil {
			fail(fmt.Errorf("rrdtool graph: %v: %s", err, out))
		}
		ps = append(ps, float64(time.Since(t).Microseconds())/1000)
	}
	sort.Float64s(ps)
	return result{Size: "1x50", RenderMS: ds[len(ds)/2], RrdtoolMS: ps[len(ps)/2], RenderSize: "800x300", PeakRSSMB: peakRSS()}
}

// peakRSS reads VmHWM of this process in MB.
func peakRSS() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			f := strings.Fields(l)
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}
