package app

import (
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/collector"
	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/graphs"
	"github.com/lvsmon/lvsmon/internal/testutil"
	"github.com/lvsmon/lvsmon/lvs"
	"github.com/lvsmon/lvsmon/web"
)

// TestBadGraphRequests: requests a client gets wrong reach the real
// renderer through the web and are answered 4xx with the reason; none of
// them leaves an ERROR line in the log, and good ones still draw.
func TestBadGraphRequests(t *testing.T) {
	var logBuf testutil.SyncBuffer
	log := slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	store, err := graphs.NewStore(graphs.StoreOptions{Dir: filepath.Join(t.TempDir(), "rrd"), Step: 10 * time.Second, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	svc := lvs.AddrKey(lvs.TCP, netip.MustParseAddr("192.0.2.10"), 80)
	rs := lvs.DestKey{Addr: netip.MustParseAddr("10.0.1.1"), Port: 80}
	now := time.Now().Truncate(10 * time.Second)
	for i := 60; i >= 0; i-- {
		tab := lvs.Table{Services: []lvs.Service{{Key: svc, Dests: []lvs.Dest{{Key: rs, Weight: 1, Stats: lvs.Stats{Conns: uint64(100 * (60 - i))}}}}}}
		tab.SumTotals()
		store.Update(&lvs.Snapshot{Time: now.Add(-time.Duration(i) * 10 * time.Second), Table: tab})
	}
	cfg, err := config.Parse("t.yaml", []byte("ipvs: {backend: fake}\nvirtual_services:\n  - {name: web, address: 192.0.2.10, port: 80, real_servers: [{address: 10.0.1.1}]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	coll := collector.New(lvs.NewFake(lvs.Table{}), time.Second, log)
	h := web.New(web.Source{Snapshot: coll.Snapshot, Health: coll.Health, Config: func() *config.Config { return cfg }, Version: "t",
		Graphs: grapher{graphs.NewRenderer(store, nil)}}, log).Handler()
	srv := "/graphs/server/tcp_192.0.2.10_80__10.0.1.1_80/"
	for _, tc := range []struct {
		path string
		code int
		want string
	}{
		{srv + "conns.png?start=1&end=61", 400, `start "1" is out of range`},
		{srv + "conns.png?start=-100&end=100", 400, `start "-100" is out of range`},
		{srv + "conns.png?start=1800000000&end=1799999999", 400, "is not after start"},
		{srv + "conns.png?start=1800000000&end=1800000030", 400, "between 1 minute and 10 years"},
		{srv + "conns.png?start=2000-01-01T00:00:00Z&end=2099-01-01T00:00:00Z", 400, "between 1 minute and 10 years"},
		{srv + "conns.png?width=100000", 400, "width 100000 is outside"},
		{srv + "conns.png?width=-5&height=1", 400, "width -5 is outside"},
		{srv + "conns.png?height=99999", 400, "height 99999"},
		{srv + "conns.gif", 400, `format "gif"`},
		{srv + "pie.png", 400, `no graph "pie"`},
		{srv + "conns.png?range=decade", 400, "unknown range"},
		{"/graphs/service/tcp_192.0.2.10_80/weight.png", 400, `no graph "weight"`},
		{"/graphs/server/tcp_192.0.2.10_80__10.9.9.9_80/conns.png", 404, "no data"},
		{"/graphs/service/tcp_10.9.9.9_80/conns.png", 404, "no data"},
		{"/graphs/service/..%2f..%2fetc/conns.png", 404, ""},
		{"/graphs/service/a..b/conns.png", 400, "malformed service id"},
		{"/graphs/server/x__y%2Fz/conns.png", 404, ""},
		{"/graphs/director/conns.png?range=day&start=1", 400, "not both"},
		{srv + "conns.png?start=1800000000&end=1800003600&width=800", 200, ""},
		{srv + "weight.svg?range=hour", 200, ""},
		{"/graphs/director/conns.png?range=hour", 200, ""},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", tc.path, nil))
		var e struct{ Error string }
		json.Unmarshal(rec.Body.Bytes(), &e)
		if rec.Code != tc.code || !strings.Contains(e.Error, tc.want) {
			t.Errorf("GET %s: %d %.200q, want %d with %q", tc.path, rec.Code, rec.Body.String(), tc.code, tc.want)
		}
	}
	if strings.Contains(logBuf.String(), "level=ERROR") {
		t.Errorf("bad requests logged errors:\n%s", logBuf.String())
	}
}
