package peers

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/events"
)

// fakeFetch answers pulls with what the test put in it.
type fakeFetch struct {
	r   *Remote
	err error
}

func (f *fakeFetch) pull(context.Context) (*Remote, error) { return f.r, f.err }
func (*fakeFetch) close()                                  {}

// TestMonitorTransitions walks a peer through unreachable, drifting,
// in sync and back, checking the events, the state and the metrics at
// each pull: an unreachable peer has no drift series and no "in sync".
func TestMonitorTransitions(t *testing.T) {
	local := side(nil)
	var evs []events.Event
	m := New(nil, func() Side { return local }, func(e events.Event) { evs = append(evs, e) }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	now := time.Date(2026, 12, 3, 14, 0, 0, 0, time.UTC)
	m.now = func() time.Time { return now }
	m.Apply([]config.Peer{{Name: "lvs2", URL: "http://192.0.2.2:9160", Timeout: config.Duration(time.Second), Interval: config.Duration(time.Second)}})
	f := &fakeFetch{}
	m.list()[0].fetch = f
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewMetrics(m))
	drifted := side(func(s Side) { s.Config[web].Scheduler = "rr"; s.Kernel[web].Reals[rs1] = 0 })

	for i, step := range []struct {
		r          *Remote
		err        error
		wantEvents []string
		up, known  bool
		drifts     int
		metrics    []string // lines the exposition must contain
		noMetrics  []string // and must not
	}{
		{err: errors.New("connection refused"), wantEvents: []string{"peer_unreachable"},
			metrics: []string{`lvsmon_peer_up{peer="lvs2"} 0`}, noMetrics: []string{"lvsmon_peer_drift{", "lvsmon_peer_last_success"}},
		{err: errors.New("connection refused")}, // still down: no second event
		{r: &Remote{Director: "lvs2", Side: drifted}, wantEvents: []string{"peer_reachable", "peer_drift"}, up: true, known: true, drifts: 2,
			metrics: []string{`lvsmon_peer_up{peer="lvs2"} 1`, `lvsmon_peer_drift{kind="scheduler",peer="lvs2",table="config"} 1`,
				`lvsmon_peer_drift{kind="weight",peer="lvs2",table="kernel"} 1`, `lvsmon_peer_drift{kind="check",peer="lvs2",table="config"} 0`,
				`lvsmon_peer_last_success_timestamp_seconds{peer="lvs2"} 1796306402`}},
		{r: &Remote{Director: "lvs2", Side: drifted}, up: true, known: true, drifts: 2}, // the same drift: no event
		{err: errors.New("timeout"), wantEvents: []string{"peer_unreachable"}, noMetrics: []string{"lvsmon_peer_drift{"},
			metrics: []string{`lvsmon_peer_last_success_timestamp_seconds{peer="lvs2"} 1796306403`}},
		{r: &Remote{Director: "lvs2", Side: drifted}, wantEvents: []string{"peer_reachable"}, up: true, known: true, drifts: 2}, // back, drift unchanged
		{r: &Remote{Director: "lvs2", Side: side(nil)}, wantEvents: []string{"peer_in_sync"}, up: true, known: true,
			metrics: []string{`lvsmon_peer_drift{kind="scheduler",peer="lvs2",table="config"} 0`}},
		{r: &Remote{Director: "lvs2", Side: side(nil)}, up: true, known: true},
	} {
		evs = nil
		f.r, f.err = step.r, step.err
		m.PollOnce(t.Context())
		var kinds []string
		for _, e := range evs {
			kinds = append(kinds, string(e.Kind))
			if e.Instance != "lvs2" || e.Message == "" {
				t.Errorf("step %d: event %+v", i, e)
			}
		}
		if !slices.Equal(kinds, step.wantEvents) {
			t.Errorf("step %d: events %v, want %v", i, kinds, step.wantEvents)
		}
		st := m.Status()[0]
		if st.Up != step.up || st.DriftKnown != step.known || len(st.Drift) != step.drifts {
			t.Errorf("step %d: up %v known %v drift %v", i, st.Up, st.DriftKnown, st.Drift)
		}
		if step.err != nil && st.LastError != step.err.Error() {
			t.Errorf("step %d: last error %q", i, st.LastError)
		}
		var b strings.Builder
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			for _, mm := range mf.GetMetric() {
				var ls []string
				for _, l := range mm.GetLabel() {
					ls = append(ls, l.GetName()+`="`+l.GetValue()+`"`)
				}
				b.WriteString(mf.GetName() + "{" + strings.Join(ls, ",") + "} " + strconv.FormatFloat(mm.GetGauge().GetValue(), 'f', -1, 64) + "\n")
			}
		}
		for _, want := range step.metrics {
			if !strings.Contains(b.String(), want+"\n") {
				t.Errorf("step %d: metrics lack %s:\n%s", i, want, b.String())
			}
		}
		for _, no := range step.noMetrics {
			if strings.Contains(b.String(), no) {
				t.Errorf("step %d: metrics have %s:\n%s", i, no, b.String())
			}
		}
		now = now.Add(time.Second)
	}
}

func TestApplyKeepsStateOfTheSamePeer(t *testing.T) {
	var evs []events.Event
	m := New([]config.Peer{{Name: "lvs2", URL: "http://192.0.2.2:9160", Timeout: config.Duration(time.Second), Interval: config.Duration(time.Second)}},
		func() Side { return side(nil) }, func(e events.Event) { evs = append(evs, e) }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	m.list()[0].fetch = &fakeFetch{err: errors.New("refused")}
	m.PollOnce(t.Context())
	m.Apply([]config.Peer{
		{Name: "lvs2", URL: "http://192.0.2.2:9160", Timeout: config.Duration(time.Second), Interval: config.Duration(time.Second)},
		{Name: "lvs3", URL: "http://192.0.2.3:9160", Timeout: config.Duration(time.Second), Interval: config.Duration(time.Second)},
	})
	st := m.Status()
	if len(st) != 2 || !st[0].Pulled || st[0].LastError != "refused" || st[1].Pulled {
		t.Errorf("after apply: %+v", st)
	}
	m.list()[0].fetch = &fakeFetch{err: errors.New("refused")}
	m.list()[1].fetch = &fakeFetch{r: &Remote{Side: side(nil)}}
	evs = nil
	m.PollOnce(t.Context())
	if len(evs) != 0 {
		t.Errorf("events after apply: %+v (lvs2 still down: no repeat; lvs3 in sync from the start: none)", evs)
	}
}
