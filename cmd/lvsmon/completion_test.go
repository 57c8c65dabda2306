package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// completion prints, for each shell, every subcommand and every flag of
// every subcommand's real flag set.
func TestCompletionNamesEveryFlag(t *testing.T) {
	for _, sh := range shells {
		t.Run(sh, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(context.Background(), []string{"completion", sh}, &out, &errb); code != 0 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			script := out.String()
			n := 0
			for _, c := range commands() {
				if !strings.Contains(script, c.name) {
					t.Errorf("%s: no command %s", sh, c.name)
				}
				for _, f := range flagsOf(c) {
					n++
					want := "--" + f.Name
					if sh == "fish" {
						want = "-l " + f.Name + " "
					}
					if !strings.Contains(script, want) {
						t.Errorf("%s: lvsmon %s --%s missing", sh, c.name, f.Name)
					}
				}
			}
			if n < 30 {
				t.Errorf("only %d flags seen: are the flag sets captured?", n)
			}
		})
	}
}

// Every command's flags are captured from its own function; run's are
// those `lvsmon run -h` lists.
func TestFlagsOfRun(t *testing.T) {
	var names []string
	for _, f := range flagsOf(command{name: "run", run: cmdRun}) {
		names = append(names, f.Name)
	}
	got := strings.Join(names, " ")
	for _, want := range []string{"config.file", "config", "dry-run", "web.listen-address", "listen", "log.level", "data-dir"} {
		if !strings.Contains(" "+got+" ", " "+want+" ") {
			t.Errorf("run's flags %q lack %s", got, want)
		}
	}
}

func TestCompletionUsage(t *testing.T) {
	for _, args := range [][]string{{"completion"}, {"completion", "tcsh"}, {"completion", "bash", "zsh"}} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}

// The bash script, sourced by bash, completes subcommands, a command's
// flags, file names after --config.file and the shells after completion.
func TestBashCompletionCompletes(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatalf("bash (Essential in Debian) is missing: %v", err)
	}
	var out bytes.Buffer
	if code := run(context.Background(), []string{"completion", "bash"}, &out, &out); code != 0 {
		t.Fatal(out.String())
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "lvsmon.bash")
	if err := os.WriteFile(script, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "lvsmon.yaml"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		line string
		want []string
	}{
		{"lvsmon ch", []string{"check-config"}},
		{"lvsmon run --config.f", []string{"--config.file"}},
		{"lvsmon run --dr", []string{"--dry-run"}},
		{"lvsmon healthcheck --", []string{"--timeout", "--url"}},
		{"lvsmon completion f", []string{"fish"}},
		{"lvsmon run --config.file lvsmon.y", []string{"lvsmon.yaml"}},
		{"lvsmon check-config lvsmon.y", []string{"lvsmon.yaml"}},
		{"lvsmon run --log.level ", nil},
	} {
		words := strings.Fields(c.line)
		if strings.HasSuffix(c.line, " ") {
			words = append(words, "")
		}
		var q []string
		for _, w := range words {
			q = append(q, "'"+w+"'")
		}
		prog := "source " + script + "; COMP_WORDS=(" + strings.Join(q, " ") + "); COMP_CWORD=" +
			strconv.Itoa(len(words)-1) + "; _lvsmon; printf '%s\\n' \"${COMPREPLY[@]}\""
		cmd := exec.Command(bash, "--norc", "--noprofile", "-c", prog)
		cmd.Dir = dir
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%q: %v: %s", c.line, err, b)
		}
		got := strings.Fields(string(b))
		if strings.Join(got, " ") != strings.Join(c.want, " ") {
			t.Errorf("%q completes to %q, want %q", c.line, got, c.want)
		}
	}
}

// The hand-written man page names every subcommand and every flag of
// every subcommand (each spelling), so that it cannot drift from the
// flag sets.
func TestManPageNamesEveryFlag(t *testing.T) {
	b, err := os.ReadFile("../../packaging/lvsmon.1")
	if err != nil {
		t.Fatal(err)
	}
	page := strings.ReplaceAll(string(b), `\-`, "-")
	for _, c := range commands() {
		if c.name != "help" && !regexp.MustCompile(`(?m)^\.B lvsmon `+regexp.QuoteMeta(c.name)+`\b`).MatchString(page) && !strings.Contains(page, ".B "+c.name) {
			t.Errorf("the man page does not describe lvsmon %s", c.name)
		}
		for _, f := range flagsOf(c) {
			if !regexp.MustCompile(`--` + regexp.QuoteMeta(f.Name) + `\b([^.-]|$)`).MatchString(page) {
				t.Errorf("the man page lacks --%s (lvsmon %s)", f.Name, c.name)
			}
		}
	}
}
