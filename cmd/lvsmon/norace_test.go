//go:build !race

package main

// raceEnabled: this test binary was built without -race (plain go test,
// the unit tier), so neither is the lvsmon binary the daemon tests run:
// it builds from the packages just compiled for the test.
const raceEnabled = false
