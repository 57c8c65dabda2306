package config

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/lvsmon/lvsmon/events"
)

// The README's alerting example lists the default kinds as they are.
func TestReadmeDefaultKinds(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)kinds: \[([^\]]*)\]\s*# the default; "all"`).FindSubmatch(b)
	if m == nil {
		t.Fatal(`README.md has no "kinds: [...]   # the default" line`)
	}
	var got []string
	for _, k := range strings.Split(string(m[1]), ",") {
		got = append(got, strings.TrimSpace(k))
	}
	var want []string
	for _, k := range events.DefaultAlerts() {
		want = append(want, string(k))
	}
	if !slices.Equal(got, want) {
		t.Errorf("README's default kinds:\n%v\nevents.DefaultAlerts:\n%v", got, want)
	}
}
