package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lvsmon/lvsmon/collector"
	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/events"
	"github.com/lvsmon/lvsmon/graphs"
	"github.com/lvsmon/lvsmon/web"
)

// grapher adapts the graphs package's renderer to the web's Grapher, so
// that neither package imports the other.
type grapher struct{ r *graphs.Renderer }

var graphKinds = map[string]graphs.Kind{"director": graphs.DirectorFile, "service": graphs.ServiceFile, "server": graphs.ServerFile}

func graphRequest(req web.GraphRequest) (graphs.Request, error) {
	kind, ok := graphKinds[req.Kind]
	if !ok {
		return graphs.Request{}, fmt.Errorf("%w: kind %q", web.ErrBadGraphRequest, req.Kind)
	}
	return graphs.Request{Kind: kind, Service: req.Service, Server: req.Server, Graph: req.Graph, Range: req.Range,
		Start: req.Start, End: req.End, Width: req.Width, Height: req.Height, Format: req.Format}, nil
}

func (g grapher) Cached(req web.GraphRequest) ([]byte, string, bool) {
	gr, err := graphRequest(req)
	if err != nil {
		return nil, "", false
	}
	img, ok := g.r.Cached(gr)
	if !ok {
		return nil, "", false
	}
	_ = gr.Validate() // fills the default format for the content type
	return img, gr.ContentType(), true
}

func (g grapher) Graph(ctx context.Context, req web.GraphRequest) ([]byte, string, error) {
	gr, err := graphRequest(req)
	if err != nil {
		return nil, "", err
	}
	img, err := g.r.RenderContext(ctx, gr)
	switch {
	case errors.Is(err, graphs.ErrBusy):
		return nil, "", fmt.Errorf("%w: %w", web.ErrGraphBusy, err)
	case errors.Is(err, graphs.ErrBadRequest):
		return nil, "", fmt.Errorf("%w: %w", web.ErrBadGraphRequest, err)
	case errors.Is(err, graphs.ErrNoData):
		return nil, "", fmt.Errorf("%w: %w", web.ErrNoGraphData, err)
	case err != nil:
		return nil, "", err
	}
	_ = gr.Validate() // fills the default format for the content type
	return img, gr.ContentType(), nil
}

func (g grapher) Names(kind string) []string { return graphs.Graphs[graphKinds[kind]] }

func (g grapher) Ranges() []string { return graphs.RangeNames }

// startGraphs opens the RRD store under the data dir, feeds it from the
// collector and schedules the archive job. The returned renderer draws
// from it.
func startGraphs(ctx context.Context, cfg *config.Config, cur func() *config.Config, coll *collector.Collector, ev *events.Log, log *slog.Logger, goFn func(func())) (*graphs.Store, *graphs.Renderer, error) {
	store, err := graphs.NewStore(graphs.StoreOptions{
		Dir: filepath.Join(cfg.DataDir, "rrd"), Step: cfg.Step.D(), Rrdcached: cfg.Graphs.Rrdcached, Batch: cfg.Batch(), Log: log,
	})
	if err != nil {
		return nil, nil, err
	}
	goFn(func() { store.Run(ctx, coll.Subscribe) })
	goFn(func() {
		if err := store.RunArchiver(ctx, cfg.Graphs.ArchiveSchedule, cfg.Graphs.ArchiveAfter.D(), log); err != nil {
			log.Error("the RRD archive job cannot run", "err", err)
		}
	})
	r := graphs.NewRenderer(store, ev)
	r.Name = func(id string) string {
		for _, vs := range cur().VirtualServices {
			if vs.Key.ID() == id {
				return vs.Name
			}
		}
		return ""
	}
	return store, r, nil
}

// rrdMetrics exports the RRD store's health: a damaged or unwritable
// file is logged and shown in the status, and counted here for alerts.
// With the renderer, also its image cache and draws.
type rrdMetrics struct {
	s                               *graphs.Store
	r                               *graphs.Renderer
	files, updates, errors, failing *prometheus.Desc
	cacheBytes, graphRequests       *prometheus.Desc
}

func newRRDMetrics(s *graphs.Store, r *graphs.Renderer) *rrdMetrics {
	return &rrdMetrics{s: s, r: r,
		cacheBytes: prometheus.NewDesc("lvsmon_graph_cache_bytes", "Bytes of graph images cached (bounded by web.graph_cache_mb).", nil, nil),
		graphRequests: prometheus.NewDesc("lvsmon_graph_requests_total",
			"Graph images asked for, by answer: cached, stale (cached of an earlier step, every draw slot busy), shared (another request's draw of the same image), drawn, failed (librrd error).", []string{"answer"}, nil),
		files:   prometheus.NewDesc("lvsmon_rrd_files", "RRD files the store writes (director, services, real servers).", nil, nil),
		updates: prometheus.NewDesc("lvsmon_rrd_updates_total", "Rows accepted into RRD files.", nil, nil),
		errors:  prometheus.NewDesc("lvsmon_rrd_update_errors_total", "Failed RRD file updates or creations; each failing file is in the status API.", nil, nil),
		failing: prometheus.NewDesc("lvsmon_rrd_failing_files", "RRD files whose last update failed (damaged, unwritable, disk full).", nil, nil),
	}
}

func (m *rrdMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.files
	ch <- m.updates
	ch <- m.errors
	ch <- m.failing
	if m.r != nil {
		ch <- m.cacheBytes
		ch <- m.graphRequests
	}
}

func (m *rrdMetrics) Collect(ch chan<- prometheus.Metric) {
	h := m.s.Health()
	ch <- prometheus.MustNewConstMetric(m.files, prometheus.GaugeValue, float64(h.Files))
	ch <- prometheus.MustNewConstMetric(m.updates, prometheus.CounterValue, float64(h.Updates))
	ch <- prometheus.MustNewConstMetric(m.errors, prometheus.CounterValue, float64(h.Errors))
	ch <- prometheus.MustNewConstMetric(m.failing, prometheus.GaugeValue, float64(len(h.FailingFiles)))
	if m.r == nil {
		return
	}
	st := m.r.Stats()
	ch <- prometheus.MustNewConstMetric(m.cacheBytes, prometheus.GaugeValue, float64(st.Bytes))
	for _, a := range []struct {
		answer string
		n      uint64
	}{{"cached", st.Hits}, {"stale", st.Stale}, {"shared", st.Shared}, {"drawn", st.Draws}, {"failed", st.DrawErrors}} {
		ch <- prometheus.MustNewConstMetric(m.graphRequests, prometheus.CounterValue, float64(a.n), a.answer)
	}
}
