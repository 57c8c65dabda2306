package dashboards

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/lvsmon/lvsmon/config"

	_ "github.com/lvsmon/lvsmon/probe" // the check types the example config uses
)

// root is the repository root, where docker-compose.yml and Dockerfile
// are; compose paths are relative to it.
const root = ".."

type composeFile struct {
	Services map[string]struct {
		Build       any      `yaml:"build"`
		Image       string   `yaml:"image"`
		NetworkMode string   `yaml:"network_mode"`
		CapAdd      []string `yaml:"cap_add"`
		CapDrop     []string `yaml:"cap_drop"`
		SecurityOpt []string `yaml:"security_opt"`
		Command     []string `yaml:"command"`
		Volumes     []string `yaml:"volumes"`
		ExtraHosts  []string `yaml:"extra_hosts"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

func readCompose(t *testing.T) composeFile {
	t.Helper()
	var c composeFile
	readYAML(t, filepath.Join(root, "docker-compose.yml"), &c)
	return c
}

// TestComposeMounts: every bind mount's source is in the repository and
// every named volume is declared, and the services are wired as the
// README says.
func TestComposeMounts(t *testing.T) {
	c := readCompose(t)
	for name, svc := range c.Services {
		for _, v := range svc.Volumes {
			src, _, ok := strings.Cut(v, ":")
			if !ok {
				t.Errorf("%s: volume %q has no container path", name, v)
				continue
			}
			if !strings.HasPrefix(src, ".") && !strings.HasPrefix(src, "/") {
				if _, ok := c.Volumes[src]; !ok {
					t.Errorf("%s: named volume %q is not declared under volumes", name, src)
				}
				continue
			}
			if strings.HasPrefix(src, "/") {
				t.Errorf("%s: %s mounts a host path; compose files here mount only what the repository has", name, v)
				continue
			}
			if _, err := os.Stat(filepath.Join(root, src)); err != nil {
				t.Errorf("%s: mounts %s, which is not in the repository: %v", name, src, err)
			}
		}
	}
	l, ok := c.Services["lvsmon"]
	if !ok {
		t.Fatal("no lvsmon service")
	}
	if l.NetworkMode != "host" || !slices.Contains(l.CapAdd, "NET_ADMIN") || !slices.Contains(l.CapAdd, "NET_RAW") {
		t.Errorf("lvsmon needs the host's network namespace and NET_ADMIN, NET_RAW: %+v", l)
	}
	// Only the capabilities lvsmon uses: every other one dropped.
	if !slices.Equal(l.CapDrop, []string{"ALL"}) || len(l.CapAdd) != 2 {
		t.Errorf("lvsmon: cap_drop %q, cap_add %q; want [ALL] and exactly NET_ADMIN, NET_RAW", l.CapDrop, l.CapAdd)
	}
	if !slices.Contains(l.SecurityOpt, "no-new-privileges:true") {
		t.Errorf("lvsmon security_opt %q lacks no-new-privileges:true", l.SecurityOpt)
	}
	if !slices.Contains(l.Volumes, "./etc:/etc/lvsmon:ro") || !slices.Contains(l.Volumes, "lvsmon-data:/var/lib/lvsmon") {
		t.Errorf("lvsmon volumes %q: want the config directory and the data volume", l.Volumes)
	}
	p := c.Services["prometheus"]
	if !slices.Contains(p.Volumes, "./dashboards/prometheus:/etc/prometheus:ro") || !slices.Contains(p.Command, "--config.file=/etc/prometheus/prometheus.yml") {
		t.Errorf("prometheus must load dashboards/prometheus/prometheus.yml and its rules: %+v", p)
	}
	// prometheus.yml scrapes host.docker.internal: the name must resolve.
	if !slices.Contains(p.ExtraHosts, "host.docker.internal:host-gateway") {
		t.Errorf("prometheus extra_hosts %q: lvsmon on the host is unreachable", p.ExtraHosts)
	}
	if _, ok := c.Services["grafana"]; !ok {
		t.Error("no grafana service")
	}
}

// The example config the compose file points to is valid.
func TestExampleConfig(t *testing.T) {
	cfg, err := config.Load(filepath.Join(root, "etc", "lvsmon.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) > 0 {
		t.Errorf("warnings: %v", cfg.Warnings)
	}
}

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	line int
	cmd  string
	args string
}

func parseDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []instruction
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if s, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{start, strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	if cur.Len() > 0 {
		t.Fatalf("%s: continuation at end of file", path)
	}
	return out
}

// TestDockerfile parses the Dockerfile: named stages, COPY --from naming
// an earlier stage, COPY sources in the repository, librrd in both stages
// (cgo to build, the library to run), an executable entry point.
func TestDockerfile(t *testing.T) {
	ins := parseDockerfile(t, filepath.Join(root, "Dockerfile"))
	var stages []string
	stageRuns := map[int]string{}
	copied := map[string]string{} // destination -> source
	var entrypoint string
	var health []string          // the runtime stage's HEALTHCHECK CMD
	inImage := map[string]bool{} // every COPY destination
	for _, in := range ins {
		switch in.cmd {
		case "FROM":
			f := strings.Fields(in.args)
			name := ""
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				name = f[2]
			} else if len(f) != 1 {
				t.Errorf("line %d: FROM %s", in.line, in.args)
			}
			if name != "" && slices.Contains(stages, name) {
				t.Errorf("line %d: stage %s defined twice", in.line, name)
			}
			stages = append(stages, name)
		case "RUN":
			stageRuns[len(stages)-1] += in.args + "\n"
		case "COPY", "ADD":
			if len(stages) == 0 {
				t.Fatalf("line %d: %s before FROM", in.line, in.cmd)
			}
			f := strings.Fields(in.args)
			var from string
			for len(f) > 0 && strings.HasPrefix(f[0], "--") {
				if v, ok := strings.CutPrefix(f[0], "--from="); ok {
					from = v
				}
				f = f[1:]
			}
			if len(f) < 2 {
				t.Errorf("line %d: %s %s", in.line, in.cmd, in.args)
				continue
			}
			srcs, dst := f[:len(f)-1], f[len(f)-1]
			inImage[dst] = true
			if from != "" {
				if i := slices.Index(stages, from); i < 0 || i == len(stages)-1 {
					t.Errorf("line %d: COPY --from=%s names no earlier stage (%q)", in.line, from, stages)
				}
				continue
			}
			for _, s := range srcs {
				m, _ := filepath.Glob(filepath.Join(root, s))
				if len(m) == 0 {
					t.Errorf("line %d: COPY %s: not in the repository", in.line, s)
				}
				copied[dst] = s
			}
		case "ENTRYPOINT":
			var argv []string
			if err := yaml.Unmarshal([]byte(in.args), &argv); err != nil || len(argv) == 0 {
				t.Errorf("line %d: ENTRYPOINT %s: want the exec form", in.line, in.args)
				continue
			}
			entrypoint = argv[0]
		case "HEALTHCHECK":
			_, exec, ok := strings.Cut(in.args, "CMD ")
			if !ok || yaml.Unmarshal([]byte(exec), &health) != nil {
				t.Errorf("line %d: HEALTHCHECK %s: want CMD in the exec form", in.line, in.args)
			}
		}
	}
	if len(stages) < 2 || stages[0] == "" {
		t.Fatalf("stages %q: want a named build stage and a runtime stage", stages)
	}
	if !strings.Contains(stageRuns[0], "librrd-dev") {
		t.Error("the build stage does not install librrd-dev (graphs need cgo with librrd)")
	}
	if !strings.Contains(stageRuns[len(stages)-1], "librrd8") {
		t.Error("the runtime stage does not install librrd8")
	}
	// The health check runs lvsmon's own healthcheck (the image has no
	// curl), on the binary the runtime stage holds, with flags it takes.
	if len(health) < 2 || health[1] != "healthcheck" || !strings.Contains(strings.Join(health, " "), "/-/healthy") {
		t.Errorf("HEALTHCHECK %q: want [lvsmon healthcheck --url .../-/healthy]", health)
	} else if !inImage[health[0]] {
		t.Errorf("HEALTHCHECK runs %s, which the image does not have", health[0])
	}
	src, ok := copied[entrypoint]
	if !ok {
		t.Fatalf("ENTRYPOINT %q is not copied from the repository (%v)", entrypoint, copied)
	}
	st, err := os.Stat(filepath.Join(root, src))
	if err != nil || st.Mode()&0o111 == 0 {
		t.Errorf("entry point %s is not an executable file: %v", src, err)
	}
}

// TestEntrypoint runs the image's entry point with a stand-in lvsmon that
// prints its arguments: run on a mounted config, the demo without one.
func TestEntrypoint(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "lvsmon")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "lvsmon.yaml")
	os.WriteFile(cfg, []byte("director: x\n"), 0o644)
	tests := []struct {
		name, config, want, stderr string
	}{
		{"config mounted", cfg, "run --config " + cfg + " --data-dir /var/lib/lvsmon", ""},
		{"no config: demo", filepath.Join(dir, "absent.yaml"), "demo --data-dir /var/lib/lvsmon", "running the demo director"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command("sh", filepath.Join(root, "scripts", "docker-entrypoint.sh"), "--data-dir", "/var/lib/lvsmon")
			cmd.Env = append(os.Environ(), "LVSMON_BIN="+fake, "LVSMON_CONFIG="+tc.config)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%v: %s", err, stderr.String())
			}
			if got := strings.TrimSpace(string(out)); got != tc.want {
				t.Errorf("runs %q, want %q", got, tc.want)
			}
			if !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tc.stderr)
			}
		})
	}
}
