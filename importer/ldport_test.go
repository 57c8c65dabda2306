package importer

import (
	"strings"
	"testing"
)

// A gate real server on another port than its virtual's: IPVS keeps the
// virtual's port, which the import writes, and the report says the check
// moves with it (ldirectord checked the real server's own port), as the
// keepalived import's does. The side-by-side lab test found the report
// silent about the check.
func TestLdirectordGatePortMovesTheCheck(t *testing.T) {
	r, err := Ldirectord("l.cf", []byte("virtual=192.0.2.1:8080\n\treal=10.0.0.1:9000 gate\n\tchecktype=connect\n"))
	if err != nil {
		t.Fatal(err)
	}
	vs := r.Config.VirtualServices[0]
	if vs.Reals[0].Port != 8080 || vs.Check.Port != 0 {
		t.Errorf("real server port %d, check port %d; want 8080 and the server's", vs.Reals[0].Port, vs.Check.Port)
	}
	e := entry(r, 2, "real")
	if e == nil || e.Status != Changed || !strings.Contains(e.Note, "ldirectord's checks went to 9000, lvsmon's go to 8080") {
		t.Errorf("real: %+v", e)
	}
}
