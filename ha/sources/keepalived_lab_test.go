//go:build lab

// Lab tier (README, Tests): a keepalived dump chowned to another user,
// which only root can make.

package sources

import "testing"

// TestKeepalivedDumpOwnedByAnotherUser: a dump that keepalived's uid does
// not own is refused (anyone could have written it), with an Err naming
// the owner.
func TestKeepalivedDumpOwnedByAnotherUser(t *testing.T) {
	requireRoot(t)
	dumpCase{name: "dump owned by another user", fixture: "master.json", mode: "chown", wantText: "owned by uid 65534"}.run(t)
}
