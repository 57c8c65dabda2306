package ha

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
)

// Pacemaker is a pacemaker cluster as `crm_mon -1 --output-as=xml` shows
// it from one node.
//
// The XML does not say which node is the local one: compare node names
// with `crm_node -n`. The DC is the cluster's coordinator, not the node
// holding the VIP; the VIP's holder is in Resources.
type Pacemaker struct {
	Stack      string // "corosync"
	DC         string // name of the Designated Controller, "" if none
	WithQuorum bool   // the partition this node sees has quorum
	Nodes      []PacemakerNode
	Resources  []PacemakerResource
}

// PacemakerNode is one cluster member.
type PacemakerNode struct {
	Name        string
	ID          string
	Online      bool
	Standby     bool
	Maintenance bool
	Unclean     bool // needs fencing: its resources' state is not known
	DC          bool
}

// PacemakerResource is one primitive resource. Resources inside a group or
// clone are listed individually, with Parent naming the innermost group or
// clone; each instance of a clone is listed on its own, under the same ID.
// Bundles are not read.
type PacemakerResource struct {
	ID     string
	Parent string // enclosing group/clone/bundle id, "" if none
	Agent  string // "ocf:heartbeat:IPaddr2"
	Role   string // "Started", "Stopped", "Promoted"...
	Active bool
	Failed bool

	// Nodes are the nodes it runs on: one for a healthy primitive, none
	// when stopped, more than one in a split brain or for a clone.
	Nodes []string
}

// RunningOn reports whether resource id runs on node.
func (p Pacemaker) RunningOn(id, node string) bool {
	for _, r := range p.Resources {
		if r.ID == id {
			for _, n := range r.Nodes {
				if n == node {
					return true
				}
			}
		}
	}
	return false
}

const sourceCrmMon = "crm_mon"

type cmResource struct {
	ID     string `xml:"id,attr"`
	Agent  string `xml:"resource_agent,attr"`
	Role   string `xml:"role,attr"`
	Active string `xml:"active,attr"`
	Failed string `xml:"failed,attr"`
	Nodes  []struct {
		Name string `xml:"name,attr"`
	} `xml:"node"`
}

// cmContainer is a group or clone; a clone may hold a group.
type cmContainer struct {
	ID        string        `xml:"id,attr"`
	Resources []cmResource  `xml:"resource"`
	Groups    []cmContainer `xml:"group"`
}

type cmResult struct {
	XMLName xml.Name `xml:"pacemaker-result"`
	Summary *struct {
		Stack struct {
			Type string `xml:"type,attr"`
		} `xml:"stack"`
		DC *struct {
			Present    string `xml:"present,attr"`
			Name       string `xml:"name,attr"`
			WithQuorum string `xml:"with_quorum,attr"`
		} `xml:"current_dc"`
	} `xml:"summary"`
	Nodes []struct {
		Name        string `xml:"name,attr"`
		ID          string `xml:"id,attr"`
		Online      string `xml:"online,attr"`
		Standby     string `xml:"standby,attr"`
		Maintenance string `xml:"maintenance,attr"`
		Unclean     string `xml:"unclean,attr"`
		IsDC        string `xml:"is_dc,attr"`
	} `xml:"nodes>node"`
	Resources []cmResource  `xml:"resources>resource"`
	Groups    []cmContainer `xml:"resources>group"`
	Clones    []cmContainer `xml:"resources>clone"`
	Status    *struct {
		Code    string   `xml:"code,attr"`
		Message string   `xml:"message,attr"`
		Errors  []string `xml:"errors>error"`
	} `xml:"status"`
}

// ParseCrmMon reads the output of `crm_mon -1 --output-as=xml` (pacemaker
// 2.1, api-version 2.x).
//
// crm_mon does not always say by its exit status that it could not reach
// the cluster: after corosync died it exited 0 with status "OK" and the
// connection error in <errors> (in text mode, a plain-text error). Text
// that is not XML, XML whose <status> code is not 0 (102 "Not
// connected"), and XML without a cluster summary but with errors are an
// *Error wrapping ErrNotReachable with crm_mon's message. Other
// unreadable XML wraps ErrInvalid.
func ParseCrmMon(r io.Reader) (Pacemaker, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxDumpSize+1))
	if err != nil {
		return Pacemaker{}, &Error{Source: sourceCrmMon, Err: err}
	}
	if len(data) > maxDumpSize {
		return Pacemaker{}, invalidf(sourceCrmMon, "", "larger than %d bytes", maxDumpSize)
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '<' {
		msg := firstLine(string(trimmed))
		if msg == "" {
			msg = "no output"
		}
		return Pacemaker{}, unreachable(msg)
	}
	var res cmResult
	if err := xml.Unmarshal(trimmed, &res); err != nil {
		return Pacemaker{}, invalidf(sourceCrmMon, "", "%v", err)
	}
	if s := res.Status; s != nil && s.Code != "0" {
		msg := "crm_mon status " + s.Code + " " + strconv.Quote(s.Message)
		if len(s.Errors) > 0 {
			msg += ": " + firstLine(s.Errors[0])
		}
		return Pacemaker{}, unreachable(msg)
	}
	if res.Summary == nil {
		// With corosync dead (and for a few tens of milliseconds while
		// pacemakerd starts or stops), crm_mon exits 0 with status code 0
		// "OK", pacemakerd "running", no cluster sections and the reason
		// in <errors>: the cluster is not reachable, not misread.
		if s := res.Status; s != nil && len(s.Errors) > 0 {
			return Pacemaker{}, unreachable(firstLine(s.Errors[0]))
		}
		return Pacemaker{}, invalidf(sourceCrmMon, "", "no <summary>")
	}
	var p Pacemaker
	p.Stack = res.Summary.Stack.Type
	if dc := res.Summary.DC; dc != nil {
		p.WithQuorum = dc.WithQuorum == "true"
		if dc.Present == "true" {
			p.DC = dc.Name
		}
	}
	seen := map[string]bool{}
	for i, n := range res.Nodes {
		if n.Name == "" {
			return Pacemaker{}, invalidf(sourceCrmMon, "node "+strconv.Itoa(i+1), "no name")
		}
		if seen[n.Name] {
			return Pacemaker{}, invalidf(sourceCrmMon, "node "+strconv.Quote(n.Name), "listed twice")
		}
		seen[n.Name] = true
		p.Nodes = append(p.Nodes, PacemakerNode{
			Name: n.Name, ID: n.ID,
			Online: n.Online == "true", Standby: n.Standby == "true",
			Maintenance: n.Maintenance == "true", Unclean: n.Unclean == "true",
			DC: n.IsDC == "true",
		})
	}
	add := func(parent string, rs []cmResource) error {
		for _, r := range rs {
			if r.ID == "" {
				return invalidf(sourceCrmMon, "resources", "resource without id")
			}
			pr := PacemakerResource{
				ID: r.ID, Parent: parent, Agent: r.Agent, Role: r.Role,
				Active: r.Active == "true", Failed: r.Failed == "true",
			}
			for _, n := range r.Nodes {
				if n.Name == "" {
					return invalidf(sourceCrmMon, "resource "+strconv.Quote(r.ID), "node without name")
				}
				pr.Nodes = append(pr.Nodes, n.Name)
			}
			p.Resources = append(p.Resources, pr)
		}
		return nil
	}
	if err := add("", res.Resources); err != nil {
		return Pacemaker{}, err
	}
	for _, c := range append(res.Groups, res.Clones...) {
		if err := add(c.ID, c.Resources); err != nil {
			return Pacemaker{}, err
		}
		for _, g := range c.Groups { // clone of a group
			if err := add(g.ID, g.Resources); err != nil {
				return Pacemaker{}, err
			}
		}
	}
	return p, nil
}

// unreachable builds "pacemaker is not reachable: <msg>" wrapping
// ErrNotReachable.
func unreachable(msg string) error {
	return &Error{Source: sourceCrmMon, Err: fmt.Errorf("pacemaker is %w: %s", ErrNotReachable, msg)}
}
