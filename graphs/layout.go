// Package graphs stores lvsmon's snapshots in RRD files and draws graphs
// from them, in process, through librrd (github.com/ziutek/rrd). It is the
// only package that uses cgo.
//
// It keeps lvs-rrd's one good idea: one RRD file per virtual service and
// one per real server, created the first time the object is seen, so
// servers come and go without losing history and without anyone editing
// a data-source list. Files live under DATA_DIR/rrd:
//
//	rrd/director.rrd                          the whole director
//	rrd/<service id>/service.rrd              one virtual service
//	rrd/<service id>/<real server id>.rrd     one real server of it
//
// Ids are lvs.ServiceKey.ID and lvs.DestKey.ID: [a-z0-9._-] only, with
// IPv6 colons turned into dashes, so names are safe on every filesystem.
package graphs

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/lvsmon/lvsmon/lvs"
)

// Data sources, in file order. Gauges are sampled values; the counters
// are stored as DERIVE with a minimum of 0, so a counter reset (ipvsadm
// -Z, a re-created service) gives an unknown value instead of a spike.
var dataSources = []struct{ name, kind string }{
	{"active", "GAUGE"},
	{"inactive", "GAUGE"},
	{"weight", "GAUGE"},
	{"conns", "DERIVE"},
	{"inpkts", "DERIVE"},
	{"outpkts", "DERIVE"},
	{"inbytes", "DERIVE"},
	{"outbytes", "DERIVE"},
}

// Archive is one resolution kept: Res per row for Span (Res 0 is the step).
type Archive struct {
	Res, Span time.Duration
}

// DefaultArchives are the resolutions every file keeps, each with AVERAGE
// and MAX: the step for a day, 1 min for a week, 5 min for a month, 1 h
// for 13 months, 1 day for 5 years.
var DefaultArchives = []Archive{
	{0, 24 * time.Hour}, // 0: the step itself
	{time.Minute, 7 * 24 * time.Hour},
	{5 * time.Minute, 31 * 24 * time.Hour},
	{time.Hour, 396 * 24 * time.Hour},
	{24 * time.Hour, 5 * 366 * 24 * time.Hour},
}

// rra is one RRA line's numbers.
type rra struct {
	steps, rows int
}

// rras turns archives into RRA (steps per row, rows) for a step. A
// resolution finer than the step becomes the step; two archives with the
// same resolution merge into the longer.
func rras(step time.Duration, archives []Archive) []rra {
	var out []rra
	for _, a := range archives {
		steps := 1
		if a.Res > step {
			steps = int((a.Res + step/2) / step)
		}
		rowDur := time.Duration(steps) * step
		rows := int((a.Span + rowDur - 1) / rowDur)
		merged := false
		for i := range out {
			if out[i].steps == steps {
				out[i].rows = max(out[i].rows, rows)
				merged = true
			}
		}
		if !merged {
			out = append(out, rra{steps, rows})
		}
	}
	return out
}

// Kind of an RRD file.
type Kind int

// File kinds.
const (
	DirectorFile Kind = iota
	ServiceFile
	ServerFile
)

// directorFile is the path of the director's file under root.
func directorFile(root string) string { return filepath.Join(root, "director.rrd") }

// serviceFile is the path of a service's file under root.
func serviceFile(root string, k lvs.ServiceKey) string {
	return filepath.Join(root, k.ID(), "service.rrd")
}

// serverFile is the path of a real server's file under root.
func serverFile(root string, k lvs.ServiceKey, d lvs.DestKey) string {
	return filepath.Join(root, k.ID(), d.ID()+".rrd")
}

// validID reports whether id can only name a file inside its directory:
// the alphabet of lvs ids, no "..", no separators. Web requests name
// files by id, so this is what stands between a URL and the filesystem.
func validID(id string) bool {
	if id == "" || len(id) > 200 || id == "." || id == ".." || strings.Contains(id, "..") {
		return false
	}
	for _, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// updateLine formats one rrdtool update argument: the time and the data
// sources in dataSources order.
func updateLine(b []byte, t int64, active, inactive uint64, weight int64, s lvs.Stats) []byte {
	b = fmt.Appendf(b[:0], "%d:%d:%d:%d:%d:%d:%d:%d:%d", t, active, inactive, weight, s.Conns, s.InPkts, s.OutPkts, s.InBytes, s.OutBytes)
	return b
}
