package lvs

import (
	"bufio"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/bits"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"time"
)

// This file is the read-only procfs backend: it parses /proc/net/ip_vs and
// /proc/net/ip_vs_stats as the kernel prints them (ip_vs_info_seq_show and
// ip_vs_stats_show in net/netfilter/ipvs/ip_vs_ctl.c), and renders tables
// back into those formats byte for byte, so that tests can round-trip and
// benchmarks can serve a fake /proc to node_exporter (prometheus/procfs).
//
// The kernel's formats, which the writer reproduces exactly:
//
//	IP Virtual Server version 1.2.1 (size=4096)
//	Prot LocalAddress:Port Scheduler Flags
//	  -> RemoteAddress:Port Forward Weight ActiveConn InActConn
//	"%s  %08X:%04X %s %s "    IPv4 service; the second %s is "ops " or ""
//	"%s  [%pI6]:%04X %s "     IPv6 service; the kernel never prints ops here
//	"FWM  %08X %s %s"         fwmark service; %s is "ops " or ""
//	then "persistent %d %08X\n" (timeout in jiffies, ntohl(netmask)) or "\n"
//	"  -> %08X:%04X      %-7s %-6d %-10d %-10d\n"      IPv4 real server
//	"  -> [%pI6]:%04X      %-7s %-6d %-10d %-10d\n"    IPv6 real server
//
// The parser is tolerant of the number of blanks between columns and of
// trailing blanks (synced copies and hand-written fixtures vary), and
// strict about everything else: a line it cannot read exactly is an error
// naming the file and line, never a silently skipped row.

// DefaultHZ is the kernel tick rate assumed when none is configured. It is
// the upstream Kconfig default (HZ_250), which Debian and SUSE ship; RHEL
// and Fedora build with 1000, Arch with 300. It matters only for
// Service.Persistence, see Procfs.HZ.
const DefaultHZ = 250

// procfsConnTabSize is the "(size=%d)" of the version line the writer
// prints: the kernel's default ip_vs_conn_tab_size (CONFIG_IP_VS_TAB_BITS=12).
const procfsConnTabSize = 4096

const procfsBackend = "procfs"

// Procfs reads the IPVS table from /proc/net/ip_vs and the global counters
// from /proc/net/ip_vs_stats. It needs no privileges and works on copies
// of those files synced from a director (as lvs-rrd used them), but it
// sees less than netlink does, because the kernel prints less:
//
//   - Service.Stats and Dest.Stats are zero: /proc/net/ip_vs has no
//     per-service or per-server packet or byte counters. Only Table.Totals
//     are real, from ip_vs_stats.
//   - Dest thresholds and PersistentConns are zero (not printed).
//   - The address family of a fwmark service is not printed; it is taken
//     from its real servers (see ParseProcfs).
//   - Persistence timeouts are printed in jiffies (see HZ).
//   - The kernel prints ops only for IPv4 and fwmark services, so
//     OnePacket of an IPv6 service reads false.
//
// Procfs is read-only and safe for concurrent use.
type Procfs struct {
	// HZ is CONFIG_HZ of the kernel that wrote the files. The kernel prints
	// a persistent service's timeout as svc->timeout, which it keeps in
	// jiffies, and nothing under /proc says how long a jiffy is, so
	// Service.Persistence is only right when HZ matches the director's
	// kernel. Zero means DefaultHZ.
	HZ int

	root string
}

var _ Reader = (*Procfs)(nil)

// NewProcfs returns a reader of <root>/net/ip_vs and <root>/net/ip_vs_stats.
// An empty root means "/proc"; another root serves synced copies and test
// fixtures laid out the same way.
func NewProcfs(root string) *Procfs {
	if root == "" {
		root = "/proc"
	}
	return &Procfs{root: root}
}

// Root returns the directory standing for /proc.
func (p *Procfs) Root() string { return p.root }

// Close releases nothing: every Table call opens and closes its files, so
// that a synced copy replaced by rename is picked up on the next read.
func (p *Procfs) Close() error { return nil }

// Table reads <root>/net/ip_vs and, when present, <root>/net/ip_vs_stats.
// A missing ip_vs means IPVS is not loaded (or the copy is missing) and is
// an error satisfying errors.Is(err, fs.ErrNotExist). A missing ip_vs_stats
// is not an error: Totals are then summed from the services (which procfs
// leaves at zero). Errors are *OpError with Backend "procfs".
func (p *Procfs) Table(ctx context.Context) (Table, error) {
	path := filepath.Join(p.root, "net", "ip_vs")
	if err := ctx.Err(); err != nil {
		return Table{}, &OpError{Backend: procfsBackend, Op: "read", Object: path, Err: err}
	}
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			// The PathError's own text would repeat the path.
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			err = fmt.Errorf("IPVS is not loaded (ip_vs module) or the file is missing: %w", err)
		}
		return Table{}, &OpError{Backend: procfsBackend, Op: "read", Object: path, Err: err}
	}
	t, err := ParseProcfs(ctx, f, path, p.HZ)
	f.Close()
	if err != nil {
		return Table{}, err
	}

	spath := filepath.Join(p.root, "net", "ip_vs_stats")
	if err := ctx.Err(); err != nil {
		return Table{}, &OpError{Backend: procfsBackend, Op: "read", Object: spath, Err: err}
	}
	sf, err := os.Open(spath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// Old copies and some namespaces lack the file; the table alone is
		// still worth having.
		t.SumTotals()
	case err != nil:
		return Table{}, &OpError{Backend: procfsBackend, Op: "read", Object: spath, Err: err}
	default:
		tot, err := ParseProcfsStats(sf, spath)
		sf.Close()
		if err != nil {
			return Table{}, err
		}
		t.Totals = tot
	}
	return t, nil
}

// ---------------------------------------------------------------------------
// Parsing /proc/net/ip_vs

// procfsMaxLine bounds a line. Real lines are under 120 bytes; the bound
// keeps a corrupt file from growing the buffer without limit.
const procfsMaxLine = 64 << 10

// procfsCtxEvery is how many lines pass between context checks: often
// enough to stop a 50 000-line read promptly, rarely enough to cost nothing.
const procfsCtxEvery = 1024

// ParseProcfs parses the text of /proc/net/ip_vs read from r; name (the
// path) is used in error messages, as "name:line". hz converts persistence
// timeouts from jiffies (see Procfs.HZ); zero or less means DefaultHZ.
//
// The result is sorted as Table.Sort sorts. Stats, thresholds and
// PersistentConns are zero (the file has none) and so are Totals (they are
// in ip_vs_stats). Real-server addresses are unmapped (::ffff:a.b.c.d
// becomes a.b.c.d), like AddrKey does for services and the netlink backend
// does for real servers, so both backends agree.
//
// Readings the text leaves open, decided here:
//
//   - The family of a fwmark service is that of most of its real servers
//     (IPv4 on a tie). A fwmark service without real servers is IPv4,
//     unless its persistence netmask only reads as IPv6 or is 80000000
//     (how a little-endian kernel prints the /128 default; a /1 IPv4 mask
//     is implausible), or unless another service with the same mark needs
//     that family: dual-stack directors keep an inet and an inet6 service
//     per mark, and two such services always get one family each.
//   - The persistence netmask of an IPv4 service is the kernel's %08X of a
//     contiguous mask. For IPv6 the kernel stores a prefix length and
//     prints it through ntohl, so 128 shows as 80000000 on little-endian
//     hosts and 00000080 on big-endian ones; both are accepted, as is
//     FFFFFFFF (read as /128). A token that is not 8 hex digits is read as
//     a decimal prefix length. Full masks (/32, /128) and /0 become
//     Netmask 0, "the default", as the netlink backend reports them.
//   - "persistent 0 <mask>" (persistent with a zero timeout) cannot be
//     expressed by Service and reads as not persistent.
//   - ActiveConn and InActConn are printed with %d from atomic ints, so a
//     negative value (a kernel accounting bug) is kept as its uint32 bits,
//     which is what netlink reports for the same counter.
//
// Errors are *OpError (Backend "procfs", Op "parse") wrapping ErrInvalid,
// or Op "read" for I/O errors and ctx's error.
func ParseProcfs(ctx context.Context, r io.Reader, name string, hz int) (Table, error) {
	if err := ctx.Err(); err != nil {
		return Table{}, &OpError{Backend: procfsBackend, Op: "read", Object: name, Err: err}
	}
	if hz <= 0 {
		hz = DefaultHZ
	}
	p := procfsParser{name: name, hz: uint64(hz)}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, procfsMaxLine), procfsMaxLine)
	for sc.Scan() {
		p.line++
		if p.line%procfsCtxEvery == 0 {
			if err := ctx.Err(); err != nil {
				return Table{}, &OpError{Backend: procfsBackend, Op: "read", Object: name, Err: err}
			}
		}
		if err := p.parseLine(sc.Bytes()); err != nil {
			return Table{}, err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return Table{}, p.errorf(p.line+1, "line longer than %d bytes", procfsMaxLine)
		}
		return Table{}, &OpError{Backend: procfsBackend, Op: "read", Object: name, Err: err}
	}
	if p.line < 3 {
		return Table{}, p.errorf(p.line+1, "missing header line (file truncated or not /proc/net/ip_vs)")
	}
	return p.finish()
}

// procfsParser holds the state of one ParseProcfs call.
//
// The real servers of the service being read collect in rs, a compact
// record without pointers, where sorting them and finding duplicates is
// cheap (a Dest is 104 bytes and holds a pointer, so moving Dests around
// costs write barriers). When the service ends they become Dests, in
// order, in a chunk shared by consecutive services: a whole 50 000-server
// table takes a few dozen allocations instead of several per service, and
// no slice of Dests is ever regrown and copied.
type procfsParser struct {
	name  string
	hz    uint64
	line  int
	svcs  []Service
	metas []procfsMeta // parallel to svcs
	rs    []procfsRS   // real servers of the last service, as read
	chunk []Dest       // where Dests are carved from
	ndest int          // real servers so far

	// The sorter lives here, not on the stack of finish: handing a pointer
	// to sort.Sort moves it to the heap.
	ss procfsSvcSorter
}

// procfsRS is a real server as read. The address is 128 bits big-endian
// (hi, lo); an IPv4 address is in the low 32 bits of lo, so that ordering
// by (v6, hi, lo, port) is DestKey.Less.
type procfsRS struct {
	hi, lo   uint64
	v6       bool
	fwd      Forward
	port     uint16
	weight   int32
	active   uint32
	inactive uint32
	line     int32
}

func procfsCmpRS(a, b procfsRS) int {
	switch {
	case a.v6 != b.v6:
		if b.v6 {
			return -1
		}
		return 1
	case a.hi != b.hi:
		return cmp.Compare(a.hi, b.hi)
	case a.lo != b.lo:
		return cmp.Compare(a.lo, b.lo)
	}
	return cmp.Compare(a.port, b.port)
}

// procfsMeta is what the parser remembers of a service line until the end
// of the file, when fwmark families and duplicates can be decided.
type procfsMeta struct {
	line       int32
	fwm        bool
	persistent bool
	mask       procfsMask // fwmark services only: interpreted in finish
}

// procfsMask is the netmask token of a persistent service line.
type procfsMask struct {
	val uint32
	hex bool // 8 hex digits, as the kernel prints it; else a decimal prefix
}

const procfsMaxFields = 8

func (p *procfsParser) parseLine(b []byte) error {
	var f [procfsMaxFields][]byte
	n := procfsSplit(b, &f)
	switch p.line {
	case 1:
		if n < 4 || string(f[0]) != "IP" || string(f[1]) != "Virtual" || string(f[2]) != "Server" || string(f[3]) != "version" {
			return p.errorf(p.line, "want header \"IP Virtual Server version ...\", got %s", procfsQuote(b))
		}
		return nil
	case 2:
		if n != 4 || string(f[0]) != "Prot" || string(f[1]) != "LocalAddress:Port" || string(f[2]) != "Scheduler" || string(f[3]) != "Flags" {
			return p.errorf(p.line, "want header \"Prot LocalAddress:Port Scheduler Flags\", got %s", procfsQuote(b))
		}
		return nil
	case 3:
		if n != 6 || string(f[0]) != "->" || string(f[1]) != "RemoteAddress:Port" || string(f[2]) != "Forward" ||
			string(f[3]) != "Weight" || string(f[4]) != "ActiveConn" || string(f[5]) != "InActConn" {
			return p.errorf(p.line, "want header \"-> RemoteAddress:Port Forward Weight ActiveConn InActConn\", got %s", procfsQuote(b))
		}
		return nil
	}
	switch {
	case n == 0:
		return nil // blank lines carry nothing; tolerate them
	case n > procfsMaxFields:
		return p.errorf(p.line, "too many fields")
	case string(f[0]) == "->":
		return p.dest(f[:n])
	}
	return p.service(f[:n])
}

func (p *procfsParser) service(f [][]byte) error {
	if len(p.svcs) >= math.MaxInt32 {
		return p.errorf(p.line, "too many services")
	}
	var s Service
	if err := p.endService(); err != nil {
		return err
	}
	m := procfsMeta{line: int32(p.line)}
	if len(f) < 3 {
		return p.errorf(p.line, "service line has %d fields, want protocol, address or mark, and scheduler", len(f))
	}
	var v6line, mapped bool
	switch proto := string(f[0]); proto {
	case "TCP", "UDP", "SCTP":
		pr := TCP
		switch proto {
		case "UDP":
			pr = UDP
		case "SCTP":
			pr = SCTP
		}
		hi, lo, v6, port, ok := procfsAddrPort(f[1])
		if !ok {
			return p.errorf(p.line, "bad service address %s (want HHHHHHHH:PPPP or [IPv6]:PPPP in hex)", procfsQuote(f[1]))
		}
		v6line, mapped = v6, v6 && procfsMapped(hi, lo)
		s.Key = AddrKey(pr, procfsAddr(hi, lo, v6), port)
	case "FWM":
		mark, ok := procfsHexN(f[1], 8)
		if !ok {
			return p.errorf(p.line, "bad firewall mark %s (want 8 hex digits)", procfsQuote(f[1]))
		}
		if mark == 0 {
			return p.errorf(p.line, "firewall mark 0")
		}
		// The family is provisional: finish decides it from the real servers.
		s.Key = MarkKey(uint32(mark), IPv4)
		m.fwm = true
	default:
		return p.errorf(p.line, "unknown protocol %s (want TCP, UDP, SCTP or FWM)", procfsQuote(f[0]))
	}
	s.Scheduler = procfsSched(f[2])

	rest := f[3:]
	if len(rest) > 0 && string(rest[0]) == "ops" {
		s.OnePacket = true
		rest = rest[1:]
	}
	if len(rest) > 0 {
		if string(rest[0]) != "persistent" {
			return p.errorf(p.line, "unexpected %s after scheduler (want ops or persistent)", procfsQuote(rest[0]))
		}
		if len(rest) != 3 {
			return p.errorf(p.line, "persistent wants a timeout and a netmask, got %d fields", len(rest)-1)
		}
		jiffies, ok := procfsInt32Bits(rest[1])
		if !ok {
			return p.errorf(p.line, "bad persistence timeout %s (want decimal jiffies)", procfsQuote(rest[1]))
		}
		mask, ok := procfsParseMask(rest[2])
		if !ok {
			return p.errorf(p.line, "bad persistence netmask %s (want 8 hex digits or a decimal prefix length)", procfsQuote(rest[2]))
		}
		if jiffies > 0 {
			// At least 1ns even for an absurd hz: a persistent service must
			// have a Persistence, or it would render as not persistent.
			s.Persistence = max(time.Duration(uint64(jiffies)*uint64(time.Second)/p.hz), 1)
			m.persistent = true
			if m.fwm {
				m.mask = mask
			} else {
				nm, ok := procfsNetmask(mask, v6line, mapped)
				if !ok {
					return p.errorf(p.line, "persistence netmask %s is not valid for %s", procfsQuote(rest[2]), s.Key)
				}
				s.Netmask = nm
			}
		}
	}
	p.svcs = append(p.svcs, s)
	p.metas = append(p.metas, m)
	return nil
}

func (p *procfsParser) dest(f [][]byte) error {
	if len(p.svcs) == 0 {
		return p.errorf(p.line, "real server line before any service")
	}
	if len(f) != 6 {
		return p.errorf(p.line, "real server line has %d fields, want 6 (-> address:port forward weight activeconn inactconn)", len(f))
	}
	if p.ndest >= math.MaxInt32 {
		return p.errorf(p.line, "too many real servers")
	}
	hi, lo, v6, port, ok := procfsAddrPort(f[1])
	if !ok {
		return p.errorf(p.line, "bad real server address %s (want HHHHHHHH:PPPP or [IPv6]:PPPP in hex)", procfsQuote(f[1]))
	}
	var fwd Forward
	switch string(f[2]) {
	case "Masq":
		fwd = NAT
	case "Route":
		fwd = DR
	case "Tunnel":
		fwd = Tunnel
	case "Local":
		fwd = Local
	case "Bypass":
		fwd = Bypass
	default:
		return p.errorf(p.line, "unknown forwarding method %s (want Masq, Route, Tunnel, Local or Bypass)", procfsQuote(f[2]))
	}
	w, ok := procfsDec(f[3])
	if !ok || w < math.MinInt32 || w > math.MaxInt32 {
		return p.errorf(p.line, "bad weight %s (want a decimal 32-bit integer)", procfsQuote(f[3]))
	}
	ac, ok := procfsInt32Bits(f[4])
	if !ok {
		return p.errorf(p.line, "bad ActiveConn %s (want a decimal 32-bit integer)", procfsQuote(f[4]))
	}
	ic, ok := procfsInt32Bits(f[5])
	if !ok {
		return p.errorf(p.line, "bad InActConn %s (want a decimal 32-bit integer)", procfsQuote(f[5]))
	}
	if v6 && procfsMapped(hi, lo) {
		// Unmapped, as the netlink backend reports real servers.
		v6, hi, lo = false, 0, lo&0xFFFFFFFF
	}
	p.rs = append(p.rs, procfsRS{
		hi: hi, lo: lo, v6: v6, port: port,
		fwd: fwd, weight: int32(w), active: ac, inactive: ic,
		line: int32(p.line),
	})
	p.ndest++
	return nil
}

// Chunk sizes, in real servers: small tables stay small, large ones take
// about 800 KB at a time.
const (
	procfsMinChunk = 16
	procfsMaxChunk = 8192
)

// endService sorts the last service's real servers, rejects duplicates,
// and hands the service its Dests, now that no more follow.
func (p *procfsParser) endService() error {
	rs := p.rs
	if len(rs) == 0 {
		return nil
	}
	p.rs = rs[:0]
	sorted := true
	for i := 1; i < len(rs); i++ {
		if procfsCmpRS(rs[i-1], rs[i]) >= 0 {
			sorted = false
			break
		}
	}
	if !sorted {
		slices.SortFunc(rs, procfsCmpRS)
		for i := 1; i < len(rs); i++ {
			if procfsCmpRS(rs[i-1], rs[i]) == 0 {
				a, b := min(rs[i-1].line, rs[i].line), max(rs[i-1].line, rs[i].line)
				k := DestKey{Addr: procfsAddr(rs[i].hi, rs[i].lo, rs[i].v6), Port: rs[i].port}
				return p.errorf(int(b), "duplicate real server %s in service at line %d (also at line %d)", k, p.metas[len(p.metas)-1].line, a)
			}
		}
	}
	if cap(p.chunk)-len(p.chunk) < len(rs) {
		p.chunk = make([]Dest, 0, max(procfsMinChunk, min(2*cap(p.chunk), procfsMaxChunk), len(rs)))
	}
	start := len(p.chunk)
	for i := range rs {
		r := &rs[i]
		p.chunk = append(p.chunk, Dest{
			Key:           DestKey{Addr: procfsAddr(r.hi, r.lo, r.v6), Port: r.port},
			Forward:       r.fwd,
			Weight:        r.weight,
			ActiveConns:   r.active,
			InactiveConns: r.inactive,
		})
	}
	// Capacity is cut so that a caller appending to one service's real
	// servers cannot overwrite the next service's.
	end := len(p.chunk)
	p.svcs[len(p.svcs)-1].Dests = p.chunk[start:end:end]
	return nil
}

// finish hands out the real servers, decides fwmark families, sorts, and
// rejects duplicates, which can only be told once everything is read.
func (p *procfsParser) finish() (Table, error) {
	if err := p.endService(); err != nil {
		return Table{}, err
	}
	var undecided []int // fwmark services without real servers
	for i := range p.svcs {
		s, m := &p.svcs[i], &p.metas[i]
		if !m.fwm {
			continue
		}
		var n6 int
		for _, d := range s.Dests {
			if d.Key.Addr.Is6() {
				n6++
			}
		}
		switch {
		case len(s.Dests) == 0:
			undecided = append(undecided, i)
			continue
		case 2*n6 > len(s.Dests):
			s.Key.Family = IPv6
		}
		if err := p.fwmNetmask(s, m); err != nil {
			return Table{}, err
		}
	}
	if len(undecided) > 0 {
		if err := p.decideFamilies(undecided); err != nil {
			return Table{}, err
		}
	}

	t := Table{Services: p.svcs}
	if len(p.svcs) > 1 {
		lines := make([]int32, len(p.metas))
		for i := range p.metas {
			lines[i] = p.metas[i].line
		}
		p.ss = procfsSvcSorter{s: p.svcs, l: lines}
		ss := &p.ss
		if !sort.IsSorted(ss) {
			sort.Sort(ss)
		}
		for i := 1; i < len(ss.s); i++ {
			if ss.s[i].Key == ss.s[i-1].Key {
				a, b := ss.l[i-1], ss.l[i]
				if a > b {
					a, b = b, a
				}
				return Table{}, p.errorf(int(b), "duplicate service %s (also at line %d)", ss.s[i].Key, a)
			}
		}
	}
	return t, nil
}

// fwmNetmask interprets a fwmark service's netmask once its family is known.
func (p *procfsParser) fwmNetmask(s *Service, m *procfsMeta) error {
	if !m.persistent {
		return nil
	}
	nm, ok := procfsNetmask(m.mask, s.Key.Family == IPv6, false)
	if !ok {
		return p.errorf(int(m.line), "persistence netmask %s is not valid for %s", procfsMaskString(m.mask), s.Key)
	}
	s.Netmask = nm
	return nil
}

// decideFamilies gives the fwmark services without real servers a family.
// Alone, such a service takes the family its netmask suggests (IPv4
// unless the mask reads only as IPv6 or is 80000000), or the other one if
// a service with the same mark holds that family already. Two with the
// same mark (dual-stack directors keep an inet and an inet6 service per
// mark) get one family each, the way that satisfies the most suggestions,
// the earlier line taking IPv4 on a tie. The decision depends only on the
// masks and, on a tie, on the order, which is what makes it stable: the
// writer prints the IPv4 service of a mark first and each mask in its
// family's canonical form, and that reads back the same way. Services
// with real servers were decided first and are never displaced; more
// services than free families is a duplicate, reported by finish.
func (p *procfsParser) decideFamilies(undecided []int) error {
	taken := make(map[ServiceKey]bool)
	for i := range p.svcs {
		if p.metas[i].fwm && len(p.svcs[i].Dests) > 0 {
			taken[p.svcs[i].Key] = true
		}
	}
	byMark := make(map[uint32][]int)
	var marks []uint32
	for _, i := range undecided {
		mark := p.svcs[i].Key.FWMark
		if byMark[mark] == nil {
			marks = append(marks, mark)
		}
		byMark[mark] = append(byMark[mark], i)
	}
	for _, mark := range marks {
		u := byMark[mark]
		free := func(f Family) bool { return !taken[MarkKey(mark, f)] }
		fams := make([]Family, len(u))
		for j, i := range u {
			fams[j] = p.suggested(i)
		}
		switch {
		case len(u) == 1:
			if o := procfsOther(fams[0]); !(free(fams[0]) && p.allows(u[0], fams[0])) && free(o) && p.allows(u[0], o) {
				fams[0] = o
			}
		case len(u) == 2 && free(IPv4) && free(IPv6):
			score := func(fa, fb Family) int {
				if !p.allows(u[0], fa) || !p.allows(u[1], fb) {
					return -1
				}
				n := 0
				if fa == fams[0] {
					n++
				}
				if fb == fams[1] {
					n++
				}
				return n
			}
			s4, s6 := score(IPv4, IPv6), score(IPv6, IPv4)
			switch {
			case s6 > s4:
				fams[0], fams[1] = IPv6, IPv4
			case s4 >= 0:
				fams[0], fams[1] = IPv4, IPv6
			}
		}
		for j, i := range u {
			s := &p.svcs[i]
			s.Key = MarkKey(mark, fams[j])
			if err := p.fwmNetmask(s, &p.metas[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// suggested is the family the netmask of a fwmark service without real
// servers suggests: IPv4, unless the mask reads only as IPv6 or reads as
// /1 for IPv4, which is implausible, while 80000000 is how little-endian
// kernels print the IPv6 default /128.
func (p *procfsParser) suggested(i int) Family {
	m := &p.metas[i]
	if !m.persistent {
		return IPv4
	}
	p4, ok4 := procfsPrefix(m.mask, false)
	if _, ok6 := procfsPrefix(m.mask, true); ok6 && (!ok4 || p4 == 1) {
		return IPv6
	}
	return IPv4
}

// allows reports whether service i's netmask is valid in family f.
func (p *procfsParser) allows(i int, f Family) bool {
	m := &p.metas[i]
	_, ok := procfsPrefix(m.mask, f == IPv6)
	return !m.persistent || ok
}

func procfsOther(f Family) Family {
	if f == IPv6 {
		return IPv4
	}
	return IPv6
}

func (p *procfsParser) errorf(line int, format string, args ...any) error {
	return &OpError{
		Backend: procfsBackend,
		Op:      "parse",
		Object:  p.name + ":" + strconv.Itoa(line),
		Err:     fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...),
	}
}

// procfsSvcSorter sorts services with their line numbers.
type procfsSvcSorter struct {
	s []Service
	l []int32
}

func (s *procfsSvcSorter) Len() int           { return len(s.s) }
func (s *procfsSvcSorter) Less(i, j int) bool { return s.s[i].Key.Less(s.s[j].Key) }
func (s *procfsSvcSorter) Swap(i, j int) {
	s.s[i], s.s[j] = s.s[j], s.s[i]
	s.l[i], s.l[j] = s.l[j], s.l[i]
}

// procfsSplit splits a line into blank-separated fields without
// allocating. It returns procfsMaxFields+1 when there are more fields than
// f holds.
func procfsSplit(b []byte, f *[procfsMaxFields][]byte) int {
	n, i := 0, 0
	for {
		for i < len(b) && procfsBlank(b[i]) {
			i++
		}
		if i == len(b) {
			return n
		}
		j := i
		for j < len(b) && !procfsBlank(b[j]) {
			j++
		}
		if n == procfsMaxFields {
			return n + 1
		}
		f[n] = b[i:j]
		n++
		i = j
	}
}

// procfsBlanks are the bytes that separate fields. A table is faster
// than a chain of comparisons on lines that are mostly padding.
var procfsBlanks = [256]bool{' ': true, '\t': true, '\r': true, '\v': true, '\f': true}

func procfsBlank(c byte) bool { return procfsBlanks[c] }

// procfsAddrPort reads "HHHHHHHH:PPPP" (IPv4 as %08X of the host-order
// address) or "[xxxx:...:xxxx]:PPPP" (%pI6, always the full form). The
// address comes back as 128 bits big-endian, IPv4 in the low 32.
func procfsAddrPort(b []byte) (hi, lo uint64, v6 bool, port uint16, ok bool) {
	switch {
	case len(b) == 13 && b[8] == ':':
		a, ok1 := procfsHexN(b[:8], 8)
		pt, ok2 := procfsHexN(b[9:], 4)
		return 0, a, false, uint16(pt), ok1 && ok2
	case len(b) == 46 && b[0] == '[' && b[40] == ']' && b[41] == ':':
		for g := 0; g < 8; g++ {
			o := 1 + 5*g
			if g < 7 && b[o+4] != ':' {
				return 0, 0, false, 0, false
			}
			v, ok := procfsHexN(b[o:o+4], 4)
			if !ok {
				return 0, 0, false, 0, false
			}
			hi = hi<<16 | lo>>48
			lo = lo<<16 | v
		}
		pt, ok := procfsHexN(b[42:], 4)
		return hi, lo, true, uint16(pt), ok
	}
	return 0, 0, false, 0, false
}

// procfsMapped reports whether an IPv6 address is IPv4-mapped.
func procfsMapped(hi, lo uint64) bool { return hi == 0 && lo>>32 == 0xFFFF }

// procfsAddr builds the netip.Addr of what procfsAddrPort read.
func procfsAddr(hi, lo uint64, v6 bool) netip.Addr {
	if !v6 {
		return netip.AddrFrom4([4]byte{byte(lo >> 24), byte(lo >> 16), byte(lo >> 8), byte(lo)})
	}
	var a [16]byte
	binary.BigEndian.PutUint64(a[:8], hi)
	binary.BigEndian.PutUint64(a[8:], lo)
	return netip.AddrFrom16(a)
}

// procfsHexN reads exactly n hex digits (either case).
func procfsHexN(b []byte, n int) (uint64, bool) {
	if len(b) != n {
		return 0, false
	}
	return procfsHex(b)
}

// procfsHex reads a hex number of any length that fits in 64 bits.
func procfsHex(b []byte) (uint64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		if v>>60 != 0 {
			return 0, false
		}
		v = v<<4 | uint64(d)
	}
	return v, true
}

// procfsDec reads an optionally negative decimal of up to 18 digits, which
// cannot overflow an int64.
func procfsDec(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	if neg {
		v = -v
	}
	return v, true
}

// procfsInt32Bits reads a number the kernel printed with %d from a 32-bit
// int or unsigned int, returning its 32 bits: -1 and 4294967295 are both
// 0xFFFFFFFF.
func procfsInt32Bits(b []byte) (uint32, bool) {
	v, ok := procfsDec(b)
	if !ok || v < math.MinInt32 || v > math.MaxUint32 {
		return 0, false
	}
	return uint32(v), true
}

func procfsParseMask(b []byte) (procfsMask, bool) {
	if len(b) == 8 {
		v, ok := procfsHex(b)
		return procfsMask{val: uint32(v), hex: true}, ok
	}
	v, ok := procfsDec(b)
	if !ok || v < 0 || v > 128 {
		return procfsMask{}, false
	}
	return procfsMask{val: uint32(v)}, true
}

func procfsMaskString(m procfsMask) string {
	if m.hex {
		return fmt.Sprintf("%08X", m.val)
	}
	return strconv.Itoa(int(m.val))
}

// procfsPrefix turns a netmask token into a prefix length for a family.
func procfsPrefix(m procfsMask, v6 bool) (int, bool) {
	if !m.hex {
		if v6 {
			return int(m.val), m.val <= 128
		}
		return int(m.val), m.val <= 32
	}
	if v6 {
		// A prefix length printed through ntohl: as is on big-endian
		// hosts, byte-swapped on little-endian ones.
		switch {
		case m.val <= 128:
			return int(m.val), true
		case m.val&0x00FFFFFF == 0 && m.val>>24 <= 128:
			return int(m.val >> 24), true
		case m.val == math.MaxUint32:
			return 128, true
		}
		return 0, false
	}
	ones := bits.LeadingZeros32(^m.val)
	return ones, m.val == ^uint32(0)<<(32-ones)
}

// procfsNetmask is the Service.Netmask of a netmask token: the prefix
// length, or 0 for the full mask and for /0, as the netlink backend
// reports them. mapped marks an IPv6 line whose address is IPv4-mapped and
// is therefore keyed as IPv4: its IPv6 prefix loses the 96 mapping bits.
func procfsNetmask(m procfsMask, v6line, mapped bool) (int, bool) {
	p, ok := procfsPrefix(m, v6line)
	if !ok {
		return 0, false
	}
	full := 32
	if v6line {
		full = 128
	}
	if mapped && p != 0 {
		if p < 96 {
			return 0, false
		}
		p -= 96
		full = 32
	}
	if p == full {
		p = 0
	}
	return p, true
}

// procfsSched returns the scheduler name, without allocating for the
// schedulers the kernel ships.
func procfsSched(b []byte) string {
	switch string(b) {
	case "rr":
		return "rr"
	case "wrr":
		return "wrr"
	case "lc":
		return "lc"
	case "wlc":
		return "wlc"
	case "lblc":
		return "lblc"
	case "lblcr":
		return "lblcr"
	case "dh":
		return "dh"
	case "sh":
		return "sh"
	case "sed":
		return "sed"
	case "nq":
		return "nq"
	case "fo":
		return "fo"
	case "ovf":
		return "ovf"
	case "mh":
		return "mh"
	case "twos":
		return "twos"
	case "none":
		return "none"
	}
	return string(b)
}

// procfsQuote quotes a field for an error message, cut short so that a
// corrupt line does not flood the log.
func procfsQuote(b []byte) string {
	const max = 64
	if len(b) > max {
		return strconv.Quote(string(b[:max])) + "..."
	}
	return strconv.Quote(string(b))
}

// ---------------------------------------------------------------------------
// Parsing /proc/net/ip_vs_stats

// ParseProcfsStats parses the text of /proc/net/ip_vs_stats read from r
// and returns the totals of its first data row; every column is hex. The
// rate section the kernel prints after a blank line is checked but not
// returned (lvsmon derives rates from counters). name is used in errors,
// which are *OpError as in ParseProcfs.
func ParseProcfsStats(r io.Reader, name string) (Stats, error) {
	p := procfsParser{name: name}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1024), procfsMaxLine)
	var (
		st    Stats
		f     [procfsMaxFields][]byte
		state int // next expected: 0 header, 1 header, 2 totals, 3 rate header, 4 rates, 5 nothing
	)
	for sc.Scan() {
		p.line++
		n := procfsSplit(sc.Bytes(), &f)
		if n == 0 {
			continue
		}
		switch state {
		case 0:
			if !procfsFieldsAre(f[:], n, "Total", "Incoming", "Outgoing", "Incoming", "Outgoing") {
				return Stats{}, p.errorf(p.line, "want header \"Total Incoming Outgoing Incoming Outgoing\", got %s", procfsQuote(sc.Bytes()))
			}
		case 1:
			if !procfsFieldsAre(f[:], n, "Conns", "Packets", "Packets", "Bytes", "Bytes") {
				return Stats{}, p.errorf(p.line, "want header \"Conns Packets Packets Bytes Bytes\", got %s", procfsQuote(sc.Bytes()))
			}
		case 2, 4:
			if n != 5 {
				return Stats{}, p.errorf(p.line, "counter line has %s fields, want 5", procfsCount(n))
			}
			var v [5]uint64
			for i := range v {
				var ok bool
				if v[i], ok = procfsHex(f[i]); !ok {
					return Stats{}, p.errorf(p.line, "bad counter %s in column %d (want hex)", procfsQuote(f[i]), i+1)
				}
			}
			if state == 2 {
				st = Stats{Conns: v[0], InPkts: v[1], OutPkts: v[2], InBytes: v[3], OutBytes: v[4]}
			}
		case 3:
			if !procfsFieldsAre(f[:], n, "Conns/s", "Pkts/s", "Pkts/s", "Bytes/s", "Bytes/s") {
				return Stats{}, p.errorf(p.line, "want header \"Conns/s Pkts/s Pkts/s Bytes/s Bytes/s\", got %s", procfsQuote(sc.Bytes()))
			}
		default:
			return Stats{}, p.errorf(p.line, "unexpected line after the rates")
		}
		state++
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return Stats{}, p.errorf(p.line+1, "line longer than %d bytes", procfsMaxLine)
		}
		return Stats{}, &OpError{Backend: procfsBackend, Op: "read", Object: name, Err: err}
	}
	switch state {
	case 0, 1, 2:
		return Stats{}, p.errorf(p.line+1, "missing totals (file truncated or not /proc/net/ip_vs_stats)")
	case 4:
		return Stats{}, p.errorf(p.line+1, "missing rates after their header")
	}
	return st, nil
}

// procfsCount says how many fields procfsSplit found.
func procfsCount(n int) string {
	if n > procfsMaxFields {
		return "more than " + strconv.Itoa(procfsMaxFields)
	}
	return strconv.Itoa(n)
}

func procfsFieldsAre(f [][]byte, n int, want ...string) bool {
	if n != len(want) {
		return false
	}
	for i, w := range want {
		if string(f[i]) != w {
			return false
		}
	}
	return true
}

// ---------------------------------------------------------------------------
// Writing

// WriteProcfs renders t as the kernel prints /proc/net/ip_vs, byte for
// byte (see the formats at the top of this file), in the table's order.
// Persistence timeouts are written in jiffies at DefaultHZ; counters the
// file has no column for are not written. Two renderings differ from what
// a kernel would print, because the kernel's output loses information:
// OnePacket IPv6 services get "ops " after the scheduler (the kernel omits
// it), and Bypass real servers print "Bypass" (the kernel prints "Masq").
//
// Whatever ParseProcfs returns, WriteProcfs renders so that ParseProcfs
// reads it back equal. It fails with an *OpError wrapping ErrInvalid on
// what the format cannot carry: an unknown protocol or forwarding method,
// an empty scheduler or one containing blanks, an out-of-range netmask, an
// over-long persistence.
func WriteProcfs(w io.Writer, t Table) error {
	return writeProcfs(w, t, DefaultHZ)
}

func writeProcfs(w io.Writer, t Table, hz int) error {
	bw, ok := w.(*bufio.Writer)
	if !ok {
		bw = bufio.NewWriterSize(w, 64<<10)
	}
	b := make([]byte, 0, 256)
	b = append(b, "IP Virtual Server version 1.2.1 (size="...)
	b = strconv.AppendInt(b, procfsConnTabSize, 10)
	b = append(b, ")\n"+
		"Prot LocalAddress:Port Scheduler Flags\n"+
		"  -> RemoteAddress:Port Forward Weight ActiveConn InActConn\n"...)
	if _, err := bw.Write(b); err != nil {
		return err
	}
	for i := range t.Services {
		s := &t.Services[i]
		var err error
		if b, err = appendProcfsService(b[:0], s, hz); err != nil {
			return &OpError{Backend: procfsBackend, Op: "write", Object: s.Key.String(), Err: err}
		}
		if _, err := bw.Write(b); err != nil {
			return err
		}
		for j := range s.Dests {
			d := &s.Dests[j]
			if b, err = appendProcfsDest(b[:0], d); err != nil {
				return &OpError{Backend: procfsBackend, Op: "write", Object: destObject(s.Key, d.Key), Err: err}
			}
			if _, err := bw.Write(b); err != nil {
				return err
			}
		}
	}
	return bw.Flush()
}

func appendProcfsService(b []byte, s *Service, hz int) ([]byte, error) {
	for i := 0; i < len(s.Scheduler); i++ {
		if c := s.Scheduler[i]; c == '\n' || procfsBlank(c) {
			return b, fmt.Errorf("%w: scheduler %q contains a blank", ErrInvalid, s.Scheduler)
		}
	}
	if s.Scheduler == "" {
		return b, fmt.Errorf("%w: empty scheduler", ErrInvalid)
	}
	ops := ""
	if s.OnePacket {
		ops = "ops "
	}
	k := s.Key
	v6 := false
	if k.IsFWMark() {
		switch k.Family {
		case IPv4:
		case IPv6:
			v6 = true
		default:
			return b, fmt.Errorf("%w: fwmark service without address family", ErrInvalid)
		}
		b = append(b, "FWM  "...)
		b = appendProcfsHex(b, uint64(k.FWMark), 8, '0')
		b = append(b, ' ')
		b = append(b, s.Scheduler...)
		b = append(b, ' ')
		b = append(b, ops...)
	} else {
		switch k.Protocol {
		case TCP:
			b = append(b, "TCP"...)
		case UDP:
			b = append(b, "UDP"...)
		case SCTP:
			b = append(b, "SCTP"...)
		default:
			return b, fmt.Errorf("%w: protocol %d", ErrInvalid, k.Protocol)
		}
		addr := k.Addr.Unmap()
		if !addr.IsValid() {
			return b, fmt.Errorf("%w: service has no address", ErrInvalid)
		}
		b = append(b, "  "...)
		b = appendProcfsAddrPort(b, addr, k.Port)
		b = append(b, ' ')
		b = append(b, s.Scheduler...)
		b = append(b, ' ')
		if v6 = addr.Is6(); !v6 {
			b = append(b, ops...)
			b = append(b, ' ')
		} else {
			b = append(b, ops...) // not printed by the kernel, see WriteProcfs
		}
	}
	if s.Persistence < 0 {
		return b, fmt.Errorf("%w: negative persistence", ErrInvalid)
	}
	if s.Persistence == 0 {
		return append(b, '\n'), nil
	}
	jiffies, ok := procfsJiffies(s.Persistence, hz)
	if !ok {
		return b, fmt.Errorf("%w: persistence %s too long for the kernel", ErrInvalid, s.Persistence)
	}
	full := 32
	if v6 {
		full = 128
	}
	nm := s.Netmask
	if nm < 0 || nm > full {
		return b, fmt.Errorf("%w: persistence netmask /%d", ErrInvalid, nm)
	}
	if nm == 0 {
		nm = full
	}
	var mask uint32
	if v6 {
		// The kernel keeps an IPv6 prefix length where an IPv4 mask would
		// be and prints it through ntohl; this is what little-endian
		// (x86, arm64) kernels show.
		mask = bits.ReverseBytes32(uint32(nm))
	} else {
		mask = ^uint32(0) << (32 - nm)
	}
	b = append(b, "persistent "...)
	b = strconv.AppendInt(b, int64(int32(jiffies)), 10)
	b = append(b, ' ')
	b = appendProcfsHex(b, uint64(mask), 8, '0')
	return append(b, '\n'), nil
}

// procfsJiffies converts a persistence to the kernel's jiffies, rounding
// to the nearest so that a duration read at the same hz comes back exact.
func procfsJiffies(d time.Duration, hz int) (uint32, bool) {
	if hz <= 0 {
		hz = DefaultHZ
	}
	hi, lo := bits.Mul64(uint64(d), uint64(hz))
	lo, c := bits.Add64(lo, uint64(time.Second/2), 0)
	hi += c
	if hi >= uint64(time.Second) {
		return 0, false
	}
	j, _ := bits.Div64(hi, lo, uint64(time.Second))
	switch {
	case j > math.MaxUint32:
		return 0, false
	case j == 0:
		j = 1 // still persistent; 0 would read back as not persistent
	}
	return uint32(j), true
}

func appendProcfsDest(b []byte, d *Dest) ([]byte, error) {
	var fwd string
	switch d.Forward {
	case NAT:
		fwd = "Masq"
	case DR:
		fwd = "Route"
	case Tunnel:
		fwd = "Tunnel"
	case Local:
		fwd = "Local"
	case Bypass:
		fwd = "Bypass" // the kernel would print Masq, see WriteProcfs
	default:
		return b, fmt.Errorf("%w: forwarding method %s", ErrInvalid, d.Forward)
	}
	addr := d.Key.Addr.Unmap()
	if !addr.IsValid() {
		return b, fmt.Errorf("%w: real server has no address", ErrInvalid)
	}
	b = append(b, "  -> "...)
	b = appendProcfsAddrPort(b, addr, d.Key.Port)
	b = append(b, "      "...)
	b = appendProcfsLeft(b, fwd, 7)
	b = append(b, ' ')
	b = appendProcfsLeftInt(b, int64(d.Weight), 6)
	b = append(b, ' ')
	b = appendProcfsLeftInt(b, int64(int32(d.ActiveConns)), 10)
	b = append(b, ' ')
	b = appendProcfsLeftInt(b, int64(int32(d.InactiveConns)), 10)
	return append(b, '\n'), nil
}

// appendProcfsAddrPort writes %08X:%04X for IPv4 and [%pI6]:%04X for IPv6.
func appendProcfsAddrPort(b []byte, a netip.Addr, port uint16) []byte {
	if a.Is4() {
		v := a.As4()
		b = appendProcfsHex(b, uint64(v[0])<<24|uint64(v[1])<<16|uint64(v[2])<<8|uint64(v[3]), 8, '0')
	} else {
		const hex = "0123456789abcdef" // %pI6 is lower-case
		v := a.As16()
		b = append(b, '[')
		for i := 0; i < 16; i += 2 {
			if i > 0 {
				b = append(b, ':')
			}
			b = append(b, hex[v[i]>>4], hex[v[i]&15], hex[v[i+1]>>4], hex[v[i+1]&15])
		}
		b = append(b, ']')
	}
	b = append(b, ':')
	return appendProcfsHex(b, uint64(port), 4, '0')
}

// appendProcfsHex writes v in upper-case hex right-aligned in width,
// padded with pad: %0*X or %*X.
func appendProcfsHex(b []byte, v uint64, width int, pad byte) []byte {
	var tmp [16]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = "0123456789ABCDEF"[v&15]
		v >>= 4
		if v == 0 {
			break
		}
	}
	for n := len(tmp) - i; n < width; n++ {
		b = append(b, pad)
	}
	return append(b, tmp[i:]...)
}

// appendProcfsLeft writes s left-aligned in width: %-*s.
func appendProcfsLeft(b []byte, s string, width int) []byte {
	b = append(b, s...)
	for n := len(s); n < width; n++ {
		b = append(b, ' ')
	}
	return b
}

// appendProcfsLeftInt writes v left-aligned in width: %-*d.
func appendProcfsLeftInt(b []byte, v int64, width int) []byte {
	n := len(b)
	b = strconv.AppendInt(b, v, 10)
	for i := len(b) - n; i < width; i++ {
		b = append(b, ' ')
	}
	return b
}

// WriteProcfsStats renders totals as the kernel prints
// /proc/net/ip_vs_stats: every counter in upper-case hex, the rate section
// all zero (lvsmon does not model the kernel's rate estimator).
func WriteProcfsStats(w io.Writer, totals Stats) error {
	b := make([]byte, 0, 320)
	b = append(b, "   Total Incoming Outgoing         Incoming         Outgoing\n"+
		"   Conns  Packets  Packets            Bytes            Bytes\n"...)
	b = appendProcfsHex(b, totals.Conns, 8, ' ')
	b = append(b, ' ')
	b = appendProcfsHex(b, totals.InPkts, 8, ' ')
	b = append(b, ' ')
	b = appendProcfsHex(b, totals.OutPkts, 8, ' ')
	b = append(b, ' ')
	b = appendProcfsHex(b, totals.InBytes, 16, ' ')
	b = append(b, ' ')
	b = appendProcfsHex(b, totals.OutBytes, 16, ' ')
	b = append(b, "\n\n"+
		" Conns/s   Pkts/s   Pkts/s          Bytes/s          Bytes/s\n"+
		"       0        0        0                0                0\n"...)
	_, err := w.Write(b)
	return err
}
