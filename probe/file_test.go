package probe

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/config"
)

// runWeight runs a weight probe as runBounded runs a plain one.
func runWeight(t testing.TB, p WeightProbe, c *config.Check) (Weight, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout.D())
	defer cancel()
	type res struct {
		w   Weight
		err error
	}
	done := make(chan res, 1)
	go func() { w, err := p(ctx, targetAt(t, "127.0.0.1:8080"), c); done <- res{w, err} }()
	select {
	case r := <-done:
		return r.w, r.err
	case <-time.After(c.Timeout.D() + 2*time.Second):
		t.Fatalf("probe still running %s after its %s timeout", 2*time.Second, c.Timeout.D())
		return Weight{}, nil
	}
}

// TestProbeExternalDynamic: with dynamic, exit statuses 2-255 pass and
// set the weight to the status less 2; 0 passes with no weight; 1 and
// signals fail. Without dynamic, 2 fails as before.
func TestProbeExternalDynamic(t *testing.T) {
	dir := t.TempDir()
	exit := func(n int) string {
		return script(t, dir, fmt.Sprintf("exit%d", n), fmt.Sprintf("echo status %d\nexit %d\n", n, n))
	}
	tests := []struct {
		name    string
		command string
		dynamic bool
		want    Weight
		err     string
	}{
		{"0: up, configured weight", exit(0), true, Weight{}, ""},
		{"1: down", exit(1), true, Weight{}, `exited 1: "status 1"`},
		{"2: up at weight 0", exit(2), true, Weight{Kind: WeightSet, Value: 0}, ""},
		{"12: up at weight 10", exit(12), true, Weight{Kind: WeightSet, Value: 10}, ""},
		{"255: up at weight 253", exit(255), true, Weight{Kind: WeightSet, Value: MaxDynamicWeight}, ""},
		{"killed: down", script(t, dir, "killed", "kill -TERM $$\n"), true, Weight{}, "killed by signal terminated"},
		{"2 without dynamic: down", exit(2), false, Weight{}, "exited 2"},
		{"12 without dynamic: down", exit(12), false, Weight{}, "exited 12"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := parseCheck(t, "tcp", fmt.Sprintf("{type: external, timeout: 5s, command: '%s', dynamic: %v}", tc.command, tc.dynamic))
			w, err := runWeight(t, probeExternalWeight, c)
			wantErr(t, err, tc.err)
			if w != tc.want {
				t.Errorf("weight %+v, want %+v", w, tc.want)
			}
		})
	}
}

// TestProbeFile follows keepalived's FILE_CHECK where it judges the
// server, and is inconclusive where keepalived would read its own
// trouble (a missing, unreadable, empty or garbage file) as a value.
func TestProbeFile(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	unreadable := file("unreadable", "5\n")
	if err := os.Chmod(unreadable, 0); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	const inconclusive = "INCONCLUSIVE"
	tests := []struct {
		name, path, keys string
		want             Weight
		err              string // "" passes; inconclusive: an InconclusiveError
	}{
		{"good", file("good", "5\n"), "", Weight{Kind: WeightAdd, Value: 5}, ""},
		{"blanks around", file("blanks", "  7 \r\n"), "", Weight{Kind: WeightAdd, Value: 7}, ""},
		{"weight multiplies", file("mult", "5"), "weight: 3", Weight{Kind: WeightAdd, Value: 15}, ""},
		{"reverse negates", file("rev", "5"), "weight: 3, reverse: true", Weight{Kind: WeightAdd, Value: -15}, ""},
		{"zero adds nothing", file("zero", "0"), "", Weight{Kind: WeightAdd, Value: 0}, ""},
		{"negative lowers", file("neg", "-3"), "", Weight{Kind: WeightAdd, Value: -3}, ""},
		{"hex", file("hex", "0x10"), "", Weight{Kind: WeightAdd, Value: 16}, ""},
		{"octal as strtol", file("oct", "010"), "", Weight{Kind: WeightAdd, Value: 8}, ""},
		{"2^31 is keepalived's top", file("top", "2147483648"), "", Weight{Kind: WeightAdd, Value: 1 << 31}, ""},
		{"-2^31 is keepalived's fault", file("fault", "-2147483648"), "", Weight{}, "at or below -2^31"},
		{"a product at -2^31 is a fault", file("bigneg", "-1000000"), "weight: 65535", Weight{}, "at or below -2^31"},
		{"weight 0: 0 passes", file("w0ok", "0"), "weight: 0", Weight{}, ""},
		{"weight 0: other values fail", file("w0bad", "3"), "weight: 0", Weight{}, "holds 3, want 0"},
		{"weight 0 reverse: 0 fails", file("w0r0", "0"), "weight: 0, reverse: true", Weight{}, "holds 0, want not 0"},
		{"weight 0 reverse: 1 passes", file("w0r1", "1"), "weight: 0, reverse: true", Weight{}, ""},
		{"missing", filepath.Join(dir, "absent"), "", Weight{}, inconclusive},
		{"empty", file("empty", ""), "", Weight{}, inconclusive},
		{"blank", file("blank", " \n"), "weight: 0, reverse: true", Weight{}, inconclusive},
		{"garbage", file("garbage", "up\n"), "weight: 0", Weight{}, inconclusive},
		{"trailing garbage", file("trailing", "12abc"), "", Weight{}, inconclusive},
		{"two numbers", file("two", "1 2"), "", Weight{}, inconclusive},
		{"underscores", file("under", "1_000"), "", Weight{}, inconclusive},
		{"out of range", file("range", "99999999999"), "", Weight{}, inconclusive},
		{"huge", file("huge", strings.Repeat("1", MaxCheckFile+1)), "", Weight{}, inconclusive},
		{"a directory", dir, "", Weight{}, inconclusive},
		{"a FIFO does not hang", fifo, "", Weight{}, inconclusive},
	}
	if os.Geteuid() != 0 { // root reads a file of mode 0
		tests = append(tests, struct {
			name, path, keys string
			want             Weight
			err              string
		}{"unreadable", unreadable, "", Weight{}, inconclusive})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			keys := ""
			if tc.keys != "" {
				keys = ", " + tc.keys
			}
			c := parseCheck(t, "tcp", fmt.Sprintf("{type: file, timeout: 2s, file: '%s'%s}", tc.path, keys))
			w, err := runWeight(t, probeFile, c)
			var in InconclusiveError
			switch {
			case tc.err == inconclusive:
				if !errors.As(err, &in) {
					t.Fatalf("err %v, want an InconclusiveError", err)
				}
			case errors.As(err, &in):
				t.Fatalf("inconclusive (%v), want %q", err, tc.err)
			default:
				wantErr(t, err, tc.err)
			}
			if w != tc.want {
				t.Errorf("weight %+v, want %+v", w, tc.want)
			}
		})
	}
}

// TestProbeFileEndsWithItsContext: a file check whose context is
// already done says so, inconclusive, and does not wait for the read.
func TestProbeFileEndsWithItsContext(t *testing.T) {
	c := parseCheck(t, "tcp", "{type: file, file: /etc/hostname}")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := probeFile(ctx, Target{}, c)
	var in InconclusiveError
	if !errors.As(err, &in) {
		t.Fatalf("err %v, want an InconclusiveError", err)
	}
}

func FuzzParseCheckFile(f *testing.F) {
	for _, s := range []string{"5", "-3\n", "0x10", "010", "2147483648", "-2147483649", "", " ", "1_0", "abc", "12abc", "0x", "+7", "-0", "08", "0b11", "\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := ParseCheckFile("f", b)
		if err != nil {
			return
		}
		if v < -1<<31 || v > 1<<31 {
			t.Fatalf("%q: %d out of range", b, v)
		}
		if strings.TrimSpace(string(b)) == "" {
			t.Fatalf("%q: blank read as %d", b, v)
		}
	})
}
