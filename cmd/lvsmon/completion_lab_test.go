//go:build lab

package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// completionScript writes lvsmon's completion for shell to a file.
func completionScript(t *testing.T, shell, name string) string {
	t.Helper()
	var out bytes.Buffer
	if code := run(context.Background(), []string{"completion", shell}, &out, &out); code != 0 {
		t.Fatal(out.String())
	}
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Debian's zsh parses the zsh completion, and Debian's fish loads the fish
// one and completes with it (subcommands, a command's flags with their
// descriptions, the shells after completion).
func TestZshAndFishCompletions(t *testing.T) {
	zsh, err := exec.LookPath("zsh")
	if err != nil {
		t.Fatalf("zsh is missing (scripts/deps.sh test installs it): %v", err)
	}
	fish, err := exec.LookPath("fish")
	if err != nil {
		t.Fatalf("fish is missing (scripts/deps.sh test installs it): %v", err)
	}
	zs := completionScript(t, "zsh", "_lvsmon")
	if out, err := exec.Command(zsh, "-n", zs).CombinedOutput(); err != nil {
		t.Errorf("zsh -n: %v\n%s", err, out)
	}
	// compinit finds _lvsmon on fpath and binds it to lvsmon.
	prog := "fpath=(" + filepath.Dir(zs) + " $fpath); autoload -U compinit; compinit -u -D; print -r -- ${_comps[lvsmon]}"
	if out, err := exec.Command(zsh, "-f", "-c", prog).CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "_lvsmon" {
		t.Errorf("zsh compinit does not bind _lvsmon: %v %q", err, out)
	}

	fs := completionScript(t, "fish", "lvsmon.fish")
	for _, c := range []struct {
		line string
		want []string
	}{
		{"lvsmon chec", []string{"check-config"}},
		{"lvsmon run --dry", []string{"--dry-run"}},
		{"lvsmon run --config.f", []string{"--config.file"}},
		{"lvsmon healthcheck --u", []string{"--url"}},
		{"lvsmon completion z", []string{"zsh"}},
	} {
		cmd := exec.Command(fish, "--no-config", "-c", "source "+fs+"; complete -C '"+c.line+"'")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("fish %q: %v\n%s", c.line, err, out)
		}
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			w, _, _ := strings.Cut(l, "\t")
			if w != "" {
				got = append(got, w)
			}
		}
		if strings.Join(got, " ") != strings.Join(c.want, " ") {
			t.Errorf("fish completes %q to %q, want %q", c.line, got, c.want)
		}
	}
}
