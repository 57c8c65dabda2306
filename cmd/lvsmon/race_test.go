//go:build race

package main

// raceEnabled: this test binary has the race detector (go test -race, as
// make test runs it), so the lvsmon binary the daemon tests run has it too.
const raceEnabled = true
