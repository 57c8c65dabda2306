package loadlab

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// RSS is a process's resident set (VmRSS) in bytes.
func RSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb << 10, err
			}
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// FDs is how many descriptors a process has open.
func FDs(pid int) (int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents), err
}

// Threads is a process's thread count.
func Threads(pid int) (int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	return len(ents), err
}

// CPU is the user + system time a process has used.
func CPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, s)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, s)
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * 10 * time.Millisecond, nil // USER_HZ is 100 on Linux
}

// Sample is one metric sample: its labels and value.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// Metrics maps a family name to its samples.
type Metrics map[string][]Sample

// Sum is the sum of a family's samples whose labels include match.
func (m Metrics) Sum(name string, match map[string]string) float64 {
	var v float64
	for _, s := range m[name] {
		if matches(s.Labels, match) {
			v += s.Value
		}
	}
	return v
}

// Max is the largest sample of a family (0 when none).
func (m Metrics) Max(name string) float64 {
	var v float64
	for i, s := range m[name] {
		if i == 0 || s.Value > v {
			v = s.Value
		}
	}
	return v
}

func matches(l, match map[string]string) bool {
	for k, v := range match {
		if l[k] != v {
			return false
		}
	}
	return true
}

// ParseMetrics reads the Prometheus text format (the families named in
// want, or every family when want is empty). Enough for lvsmon's output:
// label values without escaped quotes or commas.
func ParseMetrics(r io.Reader, want ...string) (Metrics, error) {
	keep := map[string]bool{}
	for _, w := range want {
		keep[w] = true
	}
	out := Metrics{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest := line, ""
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		if len(keep) > 0 && !keep[name] {
			continue
		}
		labels := map[string]string{}
		if strings.HasPrefix(rest, "{") {
			end := strings.LastIndexByte(rest, '}')
			if end < 0 {
				return nil, fmt.Errorf("metrics: %q", line)
			}
			for kv := range strings.SplitSeq(rest[1:end], ",") {
				k, v, ok := strings.Cut(kv, "=")
				if ok {
					labels[k] = strings.Trim(v, `"`)
				}
			}
			rest = rest[end+1:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return nil, fmt.Errorf("metrics: %q", line)
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics: %q: %v", line, err)
		}
		out[name] = append(out[name], Sample{Labels: labels, Value: v})
	}
	return out, sc.Err()
}

// GetMetrics scrapes url (…/metrics) once, keeping the families in want.
func GetMetrics(ctx context.Context, c *http.Client, url string, want ...string) (Metrics, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		io.Copy(io.Discard, resp.Body)
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return ParseMetrics(resp.Body, want...)
}
