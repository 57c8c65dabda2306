package reconcile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/lvs"
)

// Process is another program on this director that writes IPVS
// tables: two writers of one table undo each other's weights for ever.
type Process struct {
	PID  int    `json:"pid"`
	Name string `json:"name"` // keepalived, ldirectord, pulse, nanny
	Why  string `json:"why"`
	// Config is the config file that made it a writer (keepalived).
	Config string `json:"config,omitempty"`
	// Services are the virtual services its config names; All when they
	// are unknown (ldirectord, pulse, nanny, a keepalived
	// virtual_server group, an address lvsmon cannot read).
	Services []ServiceRef `json:"services,omitempty"`
	All      bool         `json:"all"`
}

// ServiceRef is a virtual service as another writer's config names it:
// an address and port of any protocol, or a firewall mark of any family.
type ServiceRef struct {
	Addr   netip.Addr `json:"addr,omitzero"`
	Port   uint16     `json:"port,omitempty"`
	FWMark uint32     `json:"fwmark,omitempty"`
}

// Matches says whether r names the service with key k.
func (r ServiceRef) Matches(k lvs.ServiceKey) bool {
	if r.FWMark != 0 {
		return k.FWMark == r.FWMark
	}
	return !k.IsFWMark() && k.Addr == r.Addr.Unmap() && k.Port == r.Port
}

// Covers says whether p writes (or may write) the service with key k.
func (p Process) Covers(k lvs.ServiceKey) bool {
	return p.All || slices.ContainsFunc(p.Services, func(r ServiceRef) bool { return r.Matches(k) })
}

// Who names the process for logs and the status page.
func (p Process) Who() string { return fmt.Sprintf("%s (pid %d)", p.Name, p.PID) }

// Covered returns the ids of the managed services of cfg that p covers.
func (p Process) Covered(cfg *config.Config) []string {
	var out []string
	for i := range cfg.VirtualServices {
		vs := &cfg.VirtualServices[i]
		if vs.IsManaged() && p.Covers(vs.Key) {
			out = append(out, vs.Key.ID())
		}
	}
	return out
}

// Limits of what a scan reads, so that a huge or looping config cannot
// stall the reconciler.
const (
	maxConfFile  = 8 << 20
	maxConfFiles = 256
	maxIncDepth  = 8
)

// ScanProcesses looks through root (normally /proc; ipvs.proc_root) for
// processes that write IPVS: keepalived whose config has virtual_server
// blocks (one started with -P, VRRP only, writes none), ldirectord,
// piranha's pulse and nanny. A process in another network namespace
// than root/self writes another table and is left out. Forks of one
// daemon (keepalived's children) are reported once, by the lowest pid.
// Processes that vanish or cannot be read during the scan are skipped.
func ScanProcesses(root string) ([]Process, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("scan processes: %w", err)
	}
	var pids []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	selfNS, _ := os.Readlink(filepath.Join(root, "self", "ns", "net"))
	var out []Process
	seen := map[string]bool{} // name and command line
	buf := make([]byte, cmdlineHead)
	for _, pid := range pids {
		dir := filepath.Join(root, strconv.Itoa(pid))
		args := readCmdline(filepath.Join(dir, "cmdline"), buf)
		name := writerName(args)
		if name == "" {
			continue
		}
		if ns, err := os.Readlink(filepath.Join(dir, "ns", "net")); err == nil && selfNS != "" && ns != selfNS {
			continue
		}
		key := name + "\x00" + strings.Join(args, "\x00")
		if len(args) == 1 && strings.HasPrefix(args[0], name+" ") {
			// A child that retitled itself ("ldirectord tcp:…:80"
			// checking): its parent, of a lower pid, is the writer.
			key = name + "\x00child"
			if seen[name] {
				continue
			}
		}
		if seen[key] {
			continue
		}
		p := Process{PID: pid, Name: name, All: true}
		switch name {
		case "keepalived":
			if !keepalivedProcess(dir, args, &p) {
				continue
			}
		case "ldirectord":
			ldirectordProcess(dir, args, &p)
		default:
			p.Why = "piranha's " + name + " writes the IPVS table of the virtual services in lvs.cf"
		}
		seen[key], seen[name] = true, true
		out = append(out, p)
	}
	return out, nil
}

// cmdlineHead is how much of a command line a scan reads: the program,
// a script's name and keepalived's options are at its start.
const cmdlineHead = 4096

// readCmdline is the head of a process's arguments (none for kernel
// threads and processes gone meanwhile), read into buf: a scan reads
// thousands of them.
func readCmdline(path string, buf []byte) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	n, _ := io.ReadFull(f, buf)
	if n == 0 {
		return nil
	}
	b := buf[:n]
	// Most processes are none of ours: look at the program's name
	// before splitting anything.
	if !bytes.Contains(b, []byte("keepalived")) && !bytes.Contains(b, []byte("ldirectord")) &&
		!bytes.Contains(b, []byte("pulse")) && !bytes.Contains(b, []byte("nanny")) {
		return nil
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}

func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, limit)
	}
	return b, nil
}

// writerName is the IPVS writer a command line runs, or "". Perl and
// Python scripts run through their interpreter name the script second.
func writerName(args []string) string {
	if len(args) == 0 {
		return ""
	}
	n := filepath.Base(args[0])
	if i := strings.IndexByte(n, ' '); i > 0 {
		n = n[:i] // a title set by the process itself
	}
	if strings.HasPrefix(n, "perl") || strings.HasPrefix(n, "python") || n == "sh" || n == "bash" {
		for _, a := range args[1:] {
			if !strings.HasPrefix(a, "-") {
				n = filepath.Base(a)
				break
			}
		}
	}
	switch n {
	case "keepalived", "ldirectord", "pulse", "nanny":
		return n
	}
	return ""
}

// keepalivedOptsWithArg are keepalived's short options that take the
// next argument (or the rest of their own) as a value.
const keepalivedOptsWithArg = "fSuprcbAsi"

// keepalivedArgs reads keepalived's command line: its config file and
// whether it runs the VRRP subsystem only (-P, --vrrp).
func keepalivedArgs(args []string) (conf string, vrrpOnly bool) {
	conf = "/etc/keepalived/keepalived.conf"
	for i := 1; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return conf, vrrpOnly
		case a == "--vrrp":
			vrrpOnly = true
		case a == "--use-file" && i+1 < len(args):
			conf = args[i+1]
			i++
		case strings.HasPrefix(a, "--use-file="):
			conf = strings.TrimPrefix(a, "--use-file=")
		case strings.HasPrefix(a, "--"):
			// Long options with a value are written --name=value, or
			// --name value for the few that take one; neither matters.
		case strings.HasPrefix(a, "-"):
			for j := 1; j < len(a); j++ {
				c := a[j]
				if c == 'P' {
					vrrpOnly = true
				}
				if strings.IndexByte(keepalivedOptsWithArg, c) < 0 {
					continue
				}
				v := a[j+1:]
				if v == "" && i+1 < len(args) {
					i++
					v = args[i]
				}
				if c == 'f' {
					conf = v
				}
				break
			}
		}
	}
	return conf, vrrpOnly
}

// keepalivedProcess fills p for a keepalived process in dir and says
// whether it writes IPVS: its config (read through the process's own
// root, so a daemon in a container or chroot is read right) has
// virtual_server blocks. A config that cannot be read makes it a writer
// of every service: lvsmon cannot tell, and a fight is worse than a
// pause.
func keepalivedProcess(dir string, args []string, p *Process) bool {
	conf, vrrpOnly := keepalivedArgs(args)
	if vrrpOnly {
		return false
	}
	if !filepath.IsAbs(conf) {
		if cwd, err := os.Readlink(filepath.Join(dir, "cwd")); err == nil {
			conf = filepath.Join(cwd, conf)
		}
	}
	p.Config = conf
	sc := &kaScan{root: filepath.Join(dir, "root")}
	err := sc.file(conf, 0)
	if err != nil {
		// Not allowed into its root (lvsmon is not root), or no root
		// entry (a copy of /proc): the config as this process sees it.
		sc = &kaScan{}
		err = sc.file(conf, 0)
	}
	if err != nil {
		p.Why = fmt.Sprintf("keepalived may write IPVS: its config %s cannot be read (%v)", conf, err)
		return true
	}
	if !sc.found {
		return false
	}
	p.All, p.Services = sc.all, sc.refs
	p.Why = fmt.Sprintf("keepalived's config %s has virtual_server blocks", conf)
	if sc.files > 1 {
		p.Why = fmt.Sprintf("keepalived's config %s (with %d included files) has virtual_server blocks", conf, sc.files-1)
	}
	return true
}

// kaScan is a cheap reading of keepalived.conf: it finds the
// virtual_server statements through includes and nothing else.
type kaScan struct {
	root  string // the process's root directory; "" for ours
	found bool
	all   bool
	refs  []ServiceRef
	files int
}

func (s *kaScan) file(path string, depth int) error {
	if depth > maxIncDepth {
		return fmt.Errorf("%s: includes nested deeper than %d", path, maxIncDepth)
	}
	if s.files++; s.files > maxConfFiles {
		return fmt.Errorf("more than %d config files", maxConfFiles)
	}
	b, err := readLimited(s.root+path, maxConfFile)
	if err != nil {
		return err
	}
	s.scan(path, b, depth)
	return nil
}

// scan reads one file's statements. An include that cannot be read is
// skipped, as keepalived does by default.
func (s *kaScan) scan(path string, b []byte, depth int) {
	for line := range bytes.Lines(b) {
		f := fields(string(line))
		if len(f) > 0 && strings.HasPrefix(f[0], "@") {
			f = f[1:] // "@id statement": counted whatever the id
		}
		for i := 0; i < len(f); i++ {
			switch f[i] {
			case "include":
				if i+1 >= len(f) {
					continue
				}
				pat := f[i+1]
				if !filepath.IsAbs(pat) {
					pat = filepath.Join(filepath.Dir(path), pat)
				}
				ms, _ := filepath.Glob(s.root + pat)
				for _, m := range ms {
					_ = s.file(strings.TrimPrefix(m, s.root), depth+1)
				}
				i++
			case "virtual_server":
				s.found = true
				s.ref(f[i+1:])
			}
		}
	}
}

// ref records the service a virtual_server statement names.
func (s *kaScan) ref(args []string) {
	if len(args) < 2 || args[0] == "group" {
		s.all = true
		return
	}
	if args[0] == "fwmark" {
		m, err := strconv.ParseUint(args[1], 10, 32)
		if err != nil || m == 0 {
			s.all = true
			return
		}
		s.refs = append(s.refs, ServiceRef{FWMark: uint32(m)})
		return
	}
	a, err1 := netip.ParseAddr(args[0])
	port, err2 := strconv.ParseUint(args[1], 10, 16)
	if err := errors.Join(err1, err2); err != nil {
		s.all = true // "$VIP 80", a name: not lvsmon's to guess
		return
	}
	s.refs = append(s.refs, ServiceRef{Addr: a.Unmap(), Port: uint16(port)})
}

// fields splits a keepalived line into words: comments (! and #) end
// it, and braces are words of their own.
func fields(line string) []string {
	if i := strings.IndexAny(line, "!#"); i >= 0 {
		line = line[:i]
	}
	line = strings.NewReplacer("{", " { ", "}", " } ").Replace(line)
	return strings.Fields(line)
}

// ldirectordProcess fills p for an ldirectord process in dir: the
// services its config's virtual= and virtual6= lines name. Its command
// line is [options] [config] command; a config without a path is looked
// for in /etc/ha.d/ and /etc/ha.d/conf/, as ldirectord does.
func ldirectordProcess(dir string, args []string, p *Process) {
	var rest []string
	script := false
	for _, a := range args {
		switch {
		case !script:
			script = strings.HasPrefix(filepath.Base(a), "ldirectord")
		case !strings.HasPrefix(a, "-"):
			rest = append(rest, a)
		}
	}
	conf := "ldirectord.cf"
	if len(rest) >= 2 {
		conf = rest[0]
	}
	root := filepath.Join(dir, "root")
	var b []byte
	var err error
	for _, r := range []string{root, ""} {
		cands := []string{"/etc/ha.d/" + conf, "/etc/ha.d/conf/" + conf, conf}
		if filepath.IsAbs(conf) {
			cands = []string{conf}
		}
		for _, c := range cands {
			if b, err = readLimited(r+c, maxConfFile); err == nil {
				conf = c
				break
			}
		}
		if err == nil {
			break
		}
	}
	p.Config = conf
	if err != nil {
		p.All = true
		p.Why = fmt.Sprintf("ldirectord writes the IPVS table of the virtual services in its config %s, which cannot be read (%v)", conf, err)
		return
	}
	p.Services, p.All = ldirectordScan(b)
	p.Why = fmt.Sprintf("ldirectord writes the IPVS table of the virtual services in its config %s", conf)
}

// ldirectordScan reads the virtual= and virtual6= lines of an
// ldirectord config (at the start of a line, as ldirectord reads them).
func ldirectordScan(b []byte) (refs []ServiceRef, all bool) {
	for line := range bytes.Lines(b) {
		l := string(bytes.TrimRight(line, "\r\n"))
		v, ok := strings.CutPrefix(l, "virtual")
		if !ok {
			continue
		}
		v = strings.TrimPrefix(v, "6")
		v = strings.TrimLeft(v, " \t")
		if v, ok = strings.CutPrefix(v, "="); !ok {
			continue
		}
		v = strings.Fields(v + " x")[0]
		if r, ok := ldirectordVirtual(v); ok {
			refs = append(refs, r)
		} else {
			all = true // a host or service name: not lvsmon's to resolve
		}
	}
	return refs, all
}

// ldirectordVirtual reads the value of a virtual= line: 192.0.2.1:80,
// [2001:db8::1]:80 or a firewall mark.
func ldirectordVirtual(v string) (ServiceRef, bool) {
	if m, err := strconv.ParseUint(v, 10, 32); err == nil && m > 0 {
		return ServiceRef{FWMark: uint32(m)}, true
	}
	ap, err := netip.ParseAddrPort(v)
	if err != nil {
		return ServiceRef{}, false
	}
	return ServiceRef{Addr: ap.Addr().Unmap(), Port: ap.Port()}, true
}
