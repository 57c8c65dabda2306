package sources

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/lvsmon/lvsmon/ha"
)

// Pacemaker polls a pacemaker cluster with `crm_mon -1 --output-as=xml`
// and reports whether this node runs the director's resource.
//
// Its reports have one instance, named after Resource. It is MASTER when
// the resource (or, for a group, any of its members) runs on Node, and
// BACKUP otherwise. The DC is only pacemaker's coordinator and has nothing
// to do with it.
//
// crm_mon's exit status cannot be trusted. After corosync died, it printed
// a plain-text connection error and exited 0. So the output is always
// parsed, whatever the exit status. A crm_mon that cannot reach the
// cluster gives an Err: the cluster's state is unknown then, which is not
// the same as stopped. The exception is a crm_mon that cannot reach
// pacemakerd, its "launcher". That means pacemaker is not running on this
// node, and it is reported as Running false with the instance in STOP.
type Pacemaker struct {
	// CrmMon is the crm_mon command; default "crm_mon" from PATH.
	CrmMon string
	// Resource is the id of the primitive or group that makes a node the
	// active director (usually the VIP or a group holding it). Required.
	Resource string
	// Node is this node's pacemaker name (`crm_node -n`); default the
	// host name, which is what pacemaker uses unless told otherwise.
	Node string
	// Interval is the time between polls; default 5s.
	Interval time.Duration
	// Timeout bounds each crm_mon run; default 5s.
	Timeout time.Duration
	// Log receives the source's own log lines; nil drops them.
	Log *slog.Logger
}

// Run polls until ctx ends, reporting after every poll. It fails at once
// when Resource is empty or Node cannot be found out.
func (p *Pacemaker) Run(ctx context.Context, report func(ha.Report)) error {
	if p.Resource == "" {
		return errors.New("pacemaker: no Resource to look for")
	}
	node := p.Node
	if node == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("pacemaker: no Node given and no host name: %w", err)
		}
		node = h
	}
	log := logger(p.Log, ha.SourcePacemaker)
	interval := positive(p.Interval, 5*time.Second)
	var warnedNode bool
	for {
		r, nodeKnown := p.poll(ctx, node)
		if ctx.Err() != nil {
			return nil
		}
		if r.Err != nil {
			log.Warn("pacemaker poll failed", "err", r.Err)
		}
		if r.Err == nil && r.Running && !nodeKnown && !warnedNode {
			log.Warn("this node's name is not among the cluster's nodes; set Node to `crm_node -n`", "node", node)
			warnedNode = true
		}
		report(r)
		if !sleepCtx(ctx, interval) {
			return nil
		}
	}
}

// poll runs crm_mon once. nodeKnown says whether node is one of the
// cluster's nodes.
func (p *Pacemaker) poll(ctx context.Context, node string) (r ha.Report, nodeKnown bool) {
	bin := p.CrmMon
	if bin == "" {
		bin = "crm_mon"
	}
	timeout := positive(p.Timeout, 5*time.Second)
	r = ha.Report{Source: ha.SourcePacemaker, Time: time.Now()}
	res, err := runTool(ctx, timeout, bin, "-1", "--output-as=xml")
	r.Time = time.Now()
	if err != nil {
		r.Err = fmt.Errorf("pacemaker: %s: %w", bin, err)
		return r, false
	}
	out := res.Stdout
	if strings.TrimSpace(out) == "" {
		// Errors from before the XML writer starts go to stderr.
		out = res.Stderr
	}
	if launcherDown(out) {
		r.Instances = []ha.InstanceReport{{Name: p.Resource, State: ha.StateStop}}
		return r, false
	}
	cl, err := ha.ParseCrmMon(strings.NewReader(out))
	if err != nil {
		r.Err = fmt.Errorf("pacemaker: %s (exit %d): %w", bin, res.Exit, err)
		return r, false
	}
	// For about a second after the CIB comes up, crm_mon lists no nodes
	// at all: that says nothing about the name.
	nodeKnown = len(cl.Nodes) == 0 || slices.ContainsFunc(cl.Nodes, func(n ha.PacemakerNode) bool { return n.Name == node })
	if !slices.ContainsFunc(cl.Resources, func(x ha.PacemakerResource) bool { return x.ID == p.Resource || x.Parent == p.Resource }) {
		r.Err = fmt.Errorf("pacemaker: %s: no resource or group %q in the cluster", bin, p.Resource)
		return r, nodeKnown
	}
	in := ha.InstanceReport{Name: p.Resource, State: ha.StateBackup}
	if holds(cl, p.Resource, node) {
		in.State = ha.StateMaster
	}
	r.Running = true
	r.Instances = []ha.InstanceReport{in}
	return r, nodeKnown
}

// holds reports whether resource id, or a member of group id, runs on
// node. A group's members run together, so any one of them shows where
// the group is.
func holds(cl ha.Pacemaker, id, node string) bool {
	if cl.RunningOn(id, node) {
		return true
	}
	for _, r := range cl.Resources {
		if r.Parent == id && slices.Contains(r.Nodes, node) {
			return true
		}
	}
	return false
}

// launcherDown reports whether crm_mon's XML says that it could not
// connect to pacemakerd. pacemaker 2.1 prints <status code="102"> with
// "Could not connect to launcher: Connection refused" when pacemakerd is
// not running (whether or not corosync runs).
func launcherDown(out string) bool {
	b := bytes.TrimSpace([]byte(out))
	if len(b) == 0 || b[0] != '<' {
		return false
	}
	var res struct {
		Status *struct {
			Code   string   `xml:"code,attr"`
			Errors []string `xml:"errors>error"`
		} `xml:"status"`
	}
	if xml.Unmarshal(b, &res) != nil || res.Status == nil || res.Status.Code == "0" {
		return false
	}
	for _, e := range res.Status.Errors {
		if strings.Contains(e, "connect to launcher") {
			return true
		}
	}
	return false
}
