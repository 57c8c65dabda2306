package ha

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseCrmMon(t *testing.T) {
	node := func(name, id string, online, dc bool) PacemakerNode {
		return PacemakerNode{Name: name, ID: id, Online: online, DC: dc}
	}
	tests := []struct {
		file string
		want Pacemaker
	}{
		{"two-node.xml", Pacemaker{
			Stack: "corosync", DC: "pc-b", WithQuorum: true,
			Nodes: []PacemakerNode{node("pc-a", "1", true, false), node("pc-b", "2", true, true)},
			Resources: []PacemakerResource{{ID: "vip", Agent: "ocf:heartbeat:IPaddr2", Role: "Started", Active: true,
				Nodes: []string{"pc-a"}}},
		}},
		{"failover-group.xml", Pacemaker{
			Stack: "corosync", DC: "pc-b", WithQuorum: true,
			Nodes: []PacemakerNode{node("pc-a", "1", false, false), node("pc-b", "2", true, true)},
			Resources: []PacemakerResource{
				{ID: "vip", Parent: "lvs", Agent: "ocf:heartbeat:IPaddr2", Role: "Started", Active: true, Nodes: []string{"pc-b"}},
				{ID: "ldirectord", Parent: "lvs", Agent: "ocf:heartbeat:ldirectord", Role: "Started", Active: true, Nodes: []string{"pc-b"}},
			},
		}},
		// No DC, no quorum, a VIP on both nodes (split brain, pc-b unclean)
		// and a clone of a group.
		{"clone-group.xml", Pacemaker{
			Stack: "corosync",
			Nodes: []PacemakerNode{node("pc-a", "1", true, false), {Name: "pc-b", ID: "2", Unclean: true}},
			Resources: []PacemakerResource{
				{ID: "vip", Agent: "ocf:heartbeat:IPaddr2", Role: "Started", Active: true, Nodes: []string{"pc-a", "pc-b"}},
				{ID: "ping", Parent: "ping-group:0", Agent: "ocf:pacemaker:ping", Role: "Started", Active: true, Nodes: []string{"pc-a"}},
				{ID: "ping", Parent: "ping-group:1", Agent: "ocf:pacemaker:ping", Role: "Stopped"},
			},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := ParseCrmMon(strings.NewReader(readFixture(t, "crm_mon", tt.file)))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
	p, _ := ParseCrmMon(strings.NewReader(readFixture(t, "crm_mon", "two-node.xml")))
	if !p.RunningOn("vip", "pc-a") || p.RunningOn("vip", "pc-b") || p.RunningOn("nope", "pc-a") {
		t.Errorf("RunningOn is wrong for %+v", p.Resources)
	}
}

func TestParseCrmMonErrors(t *testing.T) {
	good := readFixture(t, "crm_mon", "two-node.xml")
	tests := []struct {
		name, in string
		sentinel error
		want     string
	}{
		{"cib gone, exit 0", readFixture(t, "crm_mon", "cib-gone.txt"), ErrNotReachable,
			"ha: crm_mon: pacemaker is not reachable: Could not connect to the CIB: Transport endpoint is not connected"},
		{"cib gone, XML, exit 0", readFixture(t, "crm_mon", "cib-gone.xml"), ErrNotReachable,
			"ha: crm_mon: pacemaker is not reachable: Could not connect to the CIB: Transport endpoint is not connected"},
		{"not connected", readFixture(t, "crm_mon", "not-connected.xml"), ErrNotReachable,
			`ha: crm_mon: pacemaker is not reachable: crm_mon status 102 "Not connected": error: Could not connect to launcher: Connection refused`},
		{"no output", "\n", ErrNotReachable, "pacemaker is not reachable: no output"},
		{"cut", good[:len(good)/2], ErrInvalid, "XML syntax error"},
		{"other root", "<cib/>", ErrInvalid, "expected element type <pacemaker-result>"},
		{"no summary", `<pacemaker-result><status code="0" message="OK"/></pacemaker-result>`, ErrInvalid, "no <summary>"},
		{"nameless node", strings.Replace(good, `name="pc-a" id="1" online`, `id="1" online`, 1), ErrInvalid, "node 1: invalid: no name"},
		{"twice", strings.Replace(good, `name="pc-b" id="2" online`, `name="pc-a" id="2" online`, 1), ErrInvalid, `node "pc-a": invalid: listed twice`},
		{"resource without id", strings.Replace(good, `<resource id="vip"`, `<resource`, 1), ErrInvalid, "resource without id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseCrmMon(strings.NewReader(tt.in))
			if err == nil || !errors.Is(err, tt.sentinel) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %v and %q", err, tt.sentinel, tt.want)
			}
			if tt.sentinel == ErrNotReachable && errors.Is(err, ErrInvalid) {
				t.Errorf("an unreachable cluster is not invalid input: %v", err)
			}
		})
	}
}
