package app

import (
	"fmt"
	"strings"

	"github.com/lvsmon/lvsmon/peers"
	"github.com/lvsmon/lvsmon/web"
)

// localSide is this director's side of the peer comparison: the config
// in force and the latest snapshot.
func (a *App) localSide() peers.Side { return peers.Local(a.cur.Load(), a.coll.Snapshot()) }

// peerStatus is the status API's peers section (nil without peers).
func (a *App) peerStatus() []web.PeerStatus {
	var out []web.PeerStatus
	for _, st := range a.peers.Status() {
		ps := web.PeerStatus{Name: st.Name, URL: st.URL, Up: st.Up, LastSuccess: st.LastSuccess, LastError: st.LastError,
			LastErrorTime: st.LastErrorTime, DriftKnown: st.DriftKnown}
		if r := st.Last; r != nil {
			ps.Director, ps.Version, ps.Role, ps.VIPs, ps.Problems, ps.SampledAt = r.Director, r.Version, r.Role, r.VIPs, r.Problems, r.SampledAt
		}
		if st.DriftKnown {
			ps.Drift = make([]web.Drift, 0, len(st.Drift))
			for _, d := range st.Drift {
				ps.Drift = append(ps.Drift, web.Drift{Table: d.Table, Kind: d.Kind, Service: d.Service, Server: d.Server, Local: d.Local, Peer: d.Peer})
			}
		}
		out = append(out, ps)
	}
	return out
}

// maxDriftInProblem is how many differences a drift problem names.
const maxDriftInProblem = 3

// peerProblems are a problem per peer that cannot be pulled and one per
// kind of drift (table and kind) with each peer that can.
func (a *App) peerProblems() []web.Problem {
	var out []web.Problem
	for _, st := range a.peers.Status() {
		src := "peer " + st.Name
		if st.Pulled && !st.Up {
			out = append(out, web.Problem{Source: src, Kind: "peer_unreachable", Severity: "warning", Since: st.DownSince,
				Message: fmt.Sprintf("peer %s cannot be reached, so its drift is unknown: %s", st.Name, st.LastError)})
			continue
		}
		byKind := map[[2]string][]peers.Drift{}
		for _, d := range st.Drift {
			k := [2]string{d.Table, d.Kind}
			byKind[k] = append(byKind[k], d)
		}
		for _, table := range []string{peers.TableConfig, peers.TableKernel} {
			for _, kind := range peers.Kinds[table] {
				ds := byKind[[2]string{table, kind}]
				if len(ds) == 0 {
					continue
				}
				var some []string
				for _, d := range ds[:min(len(ds), maxDriftInProblem)] {
					obj := d.Service
					if d.Server != "" {
						obj = d.Server
					}
					some = append(some, fmt.Sprintf("%s here %s, peer %s", obj, d.Local, d.Peer))
				}
				if n := len(ds) - maxDriftInProblem; n > 0 {
					some = append(some, fmt.Sprintf("and %d more", n))
				}
				what := table + " " + strings.ReplaceAll(kind, "_", " ")
				out = append(out, web.Problem{Source: src, Kind: table + "_" + kind + "_drift", Severity: "warning", Since: st.DriftSince,
					Message: fmt.Sprintf("%d %s difference(s) with peer %s: %s", len(ds), what, st.Name, strings.Join(some, "; "))})
			}
		}
	}
	return out
}
