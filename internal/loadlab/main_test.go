package loadlab

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// serversEnv makes the test binary the real servers' helper process: the
// chaos test re-executes itself with LOADLAB_SERVERS="http:ADDR tcp:ADDR…".
const serversEnv = "LOADLAB_SERVERS"

func TestMain(m *testing.M) {
	if specs := os.Getenv(serversEnv); specs != "" {
		if err := Serve(os.Stdin, os.Stdout, strings.Fields(specs)); err != nil {
			fmt.Fprintln(os.Stderr, "loadlab servers:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}
