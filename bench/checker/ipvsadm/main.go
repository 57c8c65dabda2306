// Command ipvsadm is the fake ipvsadm the checker benchmark gives
// ldirectord: the subset of ipvsadm(8) that ldirectord uses (-A -E -D -C
// -a -e -d, and -L -n with or without --thresholds, in ipvsadm 1.31's
// output format), on a table kept in a file, so that ldirectord's adds
// and edits stick between runs. Every run is appended to a log with its
// time (unix nanoseconds, taken after the table was written) and its
// arguments: the benchmark counts the runs and reads weight changes from
// it.
//
// FAKE_IPVSADM_DIR names the directory of the table (table), its lock
// (table.lock) and the log (ipvsadm.log). It is a small program of its
// own, not the benchmark binary, so that a run costs about what the real
// ipvsadm's does (an exec and a table dump), not a large Go binary's
// start.
package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type service struct {
	proto, addr, sched string // proto: TCP, UDP or FWM; addr: ip:port or the mark
	persistent         string // seconds, "" when not persistent
	dests              []*dest
}

type dest struct {
	addr, fwd          string // fwd: Route, Masq, Tunnel
	weight, uthr, lthr int
}

type table struct{ services []*service }

func (t *table) service(proto, addr string) *service {
	for _, s := range t.services {
		if s.proto == proto && s.addr == addr {
			return s
		}
	}
	return nil
}

func (s *service) dest(addr string) (int, *dest) {
	for i, d := range s.dests {
		if d.addr == addr {
			return i, d
		}
	}
	return -1, nil
}

func load(path string) (*table, error) {
	t := &table{}
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return t, nil
	}
	if err != nil {
		return nil, err
	}
	var cur *service
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
		case f[0] == "S" && len(f) >= 4:
			cur = &service{proto: f[1], addr: f[2], sched: f[3]}
			if len(f) > 4 {
				cur.persistent = f[4]
			}
			t.services = append(t.services, cur)
		case f[0] == "D" && len(f) == 6 && cur != nil:
			d := &dest{addr: f[1], fwd: f[2]}
			d.weight, _ = strconv.Atoi(f[3])
			d.uthr, _ = strconv.Atoi(f[4])
			d.lthr, _ = strconv.Atoi(f[5])
			cur.dests = append(cur.dests, d)
		default:
			return nil, fmt.Errorf("%s: bad line %q", path, line)
		}
	}
	return t, nil
}

func (t *table) save(path string) error {
	var sb strings.Builder
	for _, s := range t.services {
		fmt.Fprintf(&sb, "S %s %s %s %s\n", s.proto, s.addr, s.sched, s.persistent)
		for _, d := range s.dests {
			fmt.Fprintf(&sb, "D %s %s %d %d %d\n", d.addr, d.fwd, d.weight, d.uthr, d.lthr)
		}
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(sb.String()), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// list prints the table as "ipvsadm -L -n" (or with --thresholds) does.
func (t *table) list(w *bufio.Writer, thresholds bool) {
	fmt.Fprintln(w, "IP Virtual Server version 1.2.1 (size=4096)")
	fmt.Fprintln(w, "Prot LocalAddress:Port Scheduler Flags")
	if thresholds {
		fmt.Fprintln(w, "  -> RemoteAddress:Port           Uthreshold Lthreshold ActiveConn InActConn")
	} else {
		fmt.Fprintln(w, "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn")
	}
	for _, s := range t.services {
		fmt.Fprintf(w, "%s  %s %s", s.proto, s.addr, s.sched)
		if s.persistent != "" {
			fmt.Fprintf(w, " persistent %s", s.persistent)
		}
		fmt.Fprintln(w)
		for _, d := range s.dests {
			if thresholds {
				fmt.Fprintf(w, "  -> %-28s %-10d %-10d %-10d %-10d\n", d.addr, d.uthr, d.lthr, 0, 0)
			} else {
				fmt.Fprintf(w, "  -> %-28s %-7s %-6d %-10d %-10d\n", d.addr, d.fwd, d.weight, 0, 0)
			}
		}
	}
}

// cmd is one parsed command line.
type cmd struct {
	op                string // A E D C a e d L
	proto, addr       string
	sched, persistent string
	real, fwd         string
	weight, uthr      int
	lthr              int
	set               map[string]bool // options given
	thresholds        bool
}

func parse(args []string) (*cmd, error) {
	c := &cmd{set: map[string]bool{}}
	value := func(i *int) (string, error) {
		if *i+1 >= len(args) {
			return "", fmt.Errorf("option %s needs a value", args[*i])
		}
		*i++
		return args[*i], nil
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		var err error
		var v string
		switch a {
		case "-A", "-E", "-D", "-C", "-a", "-e", "-d", "-L", "-l":
			c.op = strings.TrimPrefix(strings.Replace(a, "-l", "-L", 1), "-")
		case "-n", "--numeric", "-6", "-o":
		case "--thresholds":
			c.thresholds = true
		case "-t", "-u", "-f":
			c.proto = map[string]string{"-t": "TCP", "-u": "UDP", "-f": "FWM"}[a]
			c.addr, err = value(&i)
		case "-s":
			c.sched, err = value(&i)
		case "-p":
			c.persistent = "300"
			if i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
				c.persistent, err = value(&i)
			}
		case "-M", "-b":
			_, err = value(&i)
		case "-r":
			c.real, err = value(&i)
		case "-g":
			c.fwd = "Route"
		case "-m":
			c.fwd = "Masq"
		case "-i":
			c.fwd = "Tunnel"
		case "-w", "-x", "-y":
			if v, err = value(&i); err == nil {
				var n int
				if n, err = strconv.Atoi(v); err == nil {
					switch a {
					case "-w":
						c.weight = n
					case "-x":
						c.uthr = n
					case "-y":
						c.lthr = n
					}
				}
			}
		default:
			return nil, fmt.Errorf("unknown option %q", a)
		}
		if err != nil {
			return nil, err
		}
		c.set[a] = true
	}
	if c.op == "" {
		return nil, fmt.Errorf("no command in %q", strings.Join(args, " "))
	}
	return c, nil
}

func (t *table) apply(c *cmd) error {
	if c.op == "C" {
		t.services = nil
		return nil
	}
	s := t.service(c.proto, c.addr)
	switch c.op {
	case "A":
		if s != nil {
			return fmt.Errorf("Service already exists")
		}
		if c.sched == "" {
			c.sched = "wlc"
		}
		t.services = append(t.services, &service{proto: c.proto, addr: c.addr, sched: c.sched, persistent: c.persistent})
		return nil
	case "E":
		if s == nil {
			return fmt.Errorf("No such service")
		}
		if c.sched != "" {
			s.sched = c.sched
		}
		s.persistent = c.persistent
		return nil
	case "D":
		for i, x := range t.services {
			if x == s {
				t.services = append(t.services[:i], t.services[i+1:]...)
				return nil
			}
		}
		return fmt.Errorf("No such service")
	}
	if s == nil {
		return fmt.Errorf("Service not defined")
	}
	i, d := s.dest(c.real)
	switch c.op {
	case "a":
		if d != nil {
			return fmt.Errorf("Destination already exists")
		}
		if c.fwd == "" {
			c.fwd = "Route"
		}
		if !c.set["-w"] {
			c.weight = 1
		}
		s.dests = append(s.dests, &dest{addr: c.real, fwd: c.fwd, weight: c.weight, uthr: c.uthr, lthr: c.lthr})
	case "e":
		if d == nil {
			return fmt.Errorf("No such destination")
		}
		if c.fwd != "" {
			d.fwd = c.fwd
		}
		if c.set["-w"] {
			d.weight = c.weight
		}
		if c.set["-x"] {
			d.uthr = c.uthr
		}
		if c.set["-y"] {
			d.lthr = c.lthr
		}
	case "d":
		if d == nil {
			return fmt.Errorf("No such destination")
		}
		s.dests = append(s.dests[:i], s.dests[i+1:]...)
	}
	return nil
}

// lock is held (flock) from the table's read to the log's write; the
// process's exit releases it.
var lock *os.File

func run(args []string) error {
	dir := os.Getenv("FAKE_IPVSADM_DIR")
	if dir == "" {
		return fmt.Errorf("FAKE_IPVSADM_DIR is not set")
	}
	c, err := parse(args)
	if err != nil {
		return err
	}
	lock, err = os.OpenFile(filepath.Join(dir, "table.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	how := syscall.LOCK_EX
	if c.op == "L" {
		how = syscall.LOCK_SH
	}
	if err := syscall.Flock(int(lock.Fd()), how); err != nil {
		return err
	}
	path := filepath.Join(dir, "table")
	t, err := load(path)
	if err != nil {
		return err
	}
	if c.op == "L" {
		w := bufio.NewWriterSize(os.Stdout, 64<<10)
		t.list(w, c.thresholds)
		return w.Flush()
	}
	if err := t.apply(c); err != nil {
		return err
	}
	return t.save(path)
}

func main() {
	err := run(os.Args[1:])
	// Every run is logged, failed ones too (marked "!"), while the lock
	// is still held: the log's order is the table's.
	mark := ""
	if err != nil {
		mark = "! "
	}
	if dir := os.Getenv("FAKE_IPVSADM_DIR"); dir != "" {
		if f, lerr := os.OpenFile(filepath.Join(dir, "ipvsadm.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); lerr == nil {
			fmt.Fprintf(f, "%d %s%s\n", time.Now().UnixNano(), mark, strings.Join(os.Args[1:], " "))
			f.Close()
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
}
