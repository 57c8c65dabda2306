package main

// What a measured process tree costs, from /proc: CPU (user + system of
// every live process in the tree, plus what each has reaped from its
// children: ldirectord's ipvsadm runs and, with fork=yes, its check
// children) and memory (the sum of PSS, which shares pages fairly
// between forked children).

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// statFields returns a process's stat fields after the command name
// (field 3, the state, is index 0).
func statFields(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}

// tree is root and every process descending from it.
func tree(root int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return []int{root}
	}
	children := map[int][]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f := statFields(pid)
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		children[ppid] = append(children[ppid], pid)
	}
	out := []int{root}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// clockTick is USER_HZ, the unit of /proc/PID/stat's times, on Linux.
const clockTick = 100

// treeCPU is the CPU time used so far by root's tree, exited and reaped
// descendants included. A live process's own time is the sum of its
// threads' run time in /proc/PID/task/TID/schedstat (nanoseconds; stat's
// utime and stime count in 10 ms ticks, too coarse for lvsmon at 100
// servers); what it reaped from its children is stat's cutime + cstime.
func treeCPU(root int) time.Duration {
	var total time.Duration
	for _, pid := range tree(root) {
		f := statFields(pid)
		if len(f) < 15 {
			continue
		}
		field := func(i int) time.Duration {
			v, _ := strconv.ParseInt(f[i], 10, 64)
			return time.Duration(v) * time.Second / clockTick
		}
		total += field(13) + field(14) // cutime cstime
		if own, ok := threadsRuntime(pid); ok {
			total += own
		} else {
			total += field(11) + field(12) // utime stime
		}
	}
	return total
}

// threadsRuntime sums the run time of pid's live threads.
func threadsRuntime(pid int) (time.Duration, bool) {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, false
	}
	var ns int64
	for _, e := range ents {
		b, err := os.ReadFile(dir + "/" + e.Name() + "/schedstat")
		if err != nil {
			return 0, false
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			return 0, false
		}
		v, _ := strconv.ParseInt(f[0], 10, 64)
		ns += v
	}
	return time.Duration(ns), true
}

// treePSS is the proportional set size of root's tree, in bytes.
func treePSS(root int) int64 {
	var kb int64
	for _, pid := range tree(root) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "Pss:"); ok {
				if f := strings.Fields(rest); len(f) > 0 {
					v, _ := strconv.ParseInt(f[0], 10, 64)
					kb += v
				}
				break
			}
		}
	}
	return kb << 10
}

// treeSize is how many processes root's tree has.
func treeSize(root int) int { return len(tree(root)) }
