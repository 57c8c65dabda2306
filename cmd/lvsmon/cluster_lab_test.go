//go:build lab

// Lab tier (README, Tests): the lvsmon binary on a real heartbeat pair and
// a real corosync + pacemaker pair in network namespaces; needs root and
// the daemons.

package main

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/internal/hblab"
	"github.com/lvsmon/lvsmon/internal/netlab"
	"github.com/lvsmon/lvsmon/internal/pcmklab"
	"github.com/lvsmon/lvsmon/web"
)

// roleAPI follows one HA instance through a running lvsmon's status API.
type roleAPI struct {
	t        *testing.T
	d        *daemon
	base     string
	instance string
}

// role is the status API's role section.
func (a *roleAPI) role() *web.Role {
	var st web.Status
	getJSON(a.t, a.base+"/api/v1/status", &st)
	return st.Role
}

// wait polls the status API until cond holds for the instance, and
// returns how long that took from start. It fails the test after 30s.
func (a *roleAPI) wait(what string, start time.Time, cond func(r *web.Role, in *web.RoleInstance) bool) time.Duration {
	a.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := a.role()
		var in *web.RoleInstance
		if r != nil {
			for i := range r.Instances {
				if r.Instances[i].Instance == a.instance {
					in = &r.Instances[i]
				}
			}
		}
		if in != nil && cond(r, in) {
			took := time.Since(start)
			a.t.Logf("%s: after %v (state %s by %s, vips %+v, disagreements %v, acting %v)", what, took.Round(time.Millisecond), in.State, in.Source, in.VIPs, in.Disagreements, r.Acting)
			return took
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("%s: not seen within 30s; role %+v\nlvsmon log:\n%s", what, r, a.d.logText())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// roleEvents are the role_* events in the log, as "kind: message".
func (a *roleAPI) roleEvents() string {
	var ev struct {
		Events []struct{ Kind, Message string } `json:"events"`
	}
	getJSON(a.t, a.base+"/api/v1/events?limit=100", &ev)
	var got []string
	for _, e := range ev.Events {
		if strings.HasPrefix(e.Kind, "role_") {
			got = append(got, e.Kind+": "+e.Message)
		}
	}
	return strings.Join(got, "\n")
}

// expectEvents logs the role events and fails the test for each of want
// that none of them contains. It returns the events.
func (a *roleAPI) expectEvents(want ...string) string {
	a.t.Helper()
	events := a.roleEvents()
	a.t.Logf("role events:\n%s", events)
	for _, w := range want {
		if !strings.Contains(events, w) {
			a.t.Errorf("role events lack %q", w)
		}
	}
	return events
}

// startClusterDirector starts lvsmon with act_only_on: master, watching
// vip in netns with the given role source section (YAML under ha:).
func startClusterDirector(t *testing.T, netns string, vip netip.Addr, source, instance string) *roleAPI {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "lvsmon.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`director: lvs-a
data_dir: %s
step: 1s
ipvs: {backend: fake}
ha:
  act_only_on: master
  netns: %s
  vips: [%s]
%s`, filepath.Join(dir, "data"), netns, vip, source)), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "run", "--config", cfg, "--listen", "127.0.0.1:0")
	return &roleAPI{t: t, d: d, base: d.url(t), instance: instance}
}

func vipHere(in *web.RoleInstance) bool { return len(in.VIPs) == 1 && in.VIPs[0].Present }

// TestHeartbeatDirector runs the lvsmon binary with a `heartbeat:` source
// (cl_status through the lab's wrapper) on node a of a real heartbeat
// pair: the role follows the VIP while heartbeat runs, and a crash that
// leaves the VIP behind is STOP with the stale VIP flagged.
func TestHeartbeatDirector(t *testing.T) {
	t.Parallel()
	_, lab := netlab.UpForTest(t, 3*time.Minute, hblab.Up, nil)
	api := startClusterDirector(t, lab.NetNS("a"), hblab.VIP,
		fmt.Sprintf("  heartbeat: {cl_status: %s}\n", lab.ClStatus("a")), "heartbeat")

	api.wait("stopped heartbeat", time.Now(), func(r *web.Role, in *web.RoleInstance) bool { return in.State == "STOP" && !r.Acting })
	start := time.Now()
	for _, n := range []string{"b", "a"} {
		if err := lab.Start(n); err != nil {
			t.Fatal(err)
		}
	}
	api.wait("heartbeat holds a's group: MASTER, acting", start, func(r *web.Role, in *web.RoleInstance) bool {
		return in.State == "MASTER" && vipHere(in) && r.Acting && len(in.Disagreements) == 0
	})
	start = time.Now()
	if err := lab.Stop("a", hblab.Crash); err != nil {
		t.Fatal(err)
	}
	api.wait("crash: STOP with the stale VIP flagged", start, func(r *web.Role, in *web.RoleInstance) bool {
		return in.State == "STOP" && vipHere(in) && slices.Contains(in.Disagreements, "vip_without_master") && !r.Acting
	})
	api.expectEvents("heartbeat: STOP at start", "→ MASTER (priority 0, heartbeat + VIPs)", "MASTER → STOP", "role_disagreement: heartbeat: VIP "+hblab.VIP.String())
	api.d.stop(t)
}

// TestPacemakerDirector runs the lvsmon binary with a `pacemaker:` source
// (crm_mon through the lab's wrapper) on node a of a real corosync +
// pacemaker cluster: MASTER while the VIP resource runs on a, UNKNOWN
// (and not acting) once corosync is dead and crm_mon keeps failing, STOP
// with the stale VIP flagged when the rest of the stack is gone.
func TestPacemakerDirector(t *testing.T) {
	t.Parallel()
	ctx, lab := netlab.UpForTest(t, 3*time.Minute, pcmklab.Up, nil)
	api := startClusterDirector(t, lab.NetNS("a"), pcmklab.VIP,
		fmt.Sprintf("  pacemaker: {crm_mon: %s, resource: %s, node: %s}\n", lab.CrmMon("a"), pcmklab.Resource, pcmklab.NodeName("a")), pcmklab.Resource)

	api.wait("pacemaker not running", time.Now(), func(r *web.Role, in *web.RoleInstance) bool { return in.State == "STOP" && !r.Acting })
	start := time.Now()
	for _, n := range pcmklab.Nodes {
		if err := lab.Start(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	api.wait("the VIP resource runs on a: MASTER, acting", start, func(r *web.Role, in *web.RoleInstance) bool {
		return in.State == "MASTER" && vipHere(in) && r.Acting && len(in.Disagreements) == 0
	})
	start = time.Now()
	if err := lab.Stop(ctx, "a", pcmklab.KillCorosync); err != nil {
		t.Fatal(err)
	}
	api.wait("corosync dead: UNKNOWN, not acting", start, func(r *web.Role, in *web.RoleInstance) bool {
		return in.State == "UNKNOWN" && !r.Acting
	})
	start = time.Now()
	if err := lab.Stop(ctx, "a", pcmklab.Crash); err != nil {
		t.Fatal(err)
	}
	api.wait("crash: STOP with the stale VIP flagged", start, func(r *web.Role, in *web.RoleInstance) bool {
		return in.State == "STOP" && vipHere(in) && slices.Contains(in.Disagreements, "vip_without_master")
	})
	api.expectEvents("→ MASTER (priority 0, pacemaker)", "MASTER → UNKNOWN (priority 0, pacemaker not answering)", "UNKNOWN → STOP", "role_disagreement: vip: VIP "+pcmklab.VIP.String())
	api.d.stop(t)
}
