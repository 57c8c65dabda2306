package netns

import (
	"errors"
	"strings"
	"testing"
)

func TestDo(t *testing.T) {
	ran := false
	if err := Do("", func() error { ran = true; return nil }); err != nil || !ran {
		t.Fatalf("Do(\"\") = %v, ran %v", err, ran)
	}
	want := errors.New("from fn")
	if err := Do("", func() error { return want }); err != want {
		t.Errorf("fn's error: %v", err)
	}
	err := Named("lvsmon-no-such-namespace", func() error { t.Error("fn ran outside its namespace"); return nil })
	if err == nil || !strings.Contains(err.Error(), "network namespace /run/netns/lvsmon-no-such-namespace") {
		t.Errorf("a namespace that does not exist: %v", err)
	}
}
