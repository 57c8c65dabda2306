//go:build lab

// Lab tier (README, Tests): Debian's python3-aiosmtpd as a second SMTP
// implementation.

package alerting

import (
	"bytes"
	"context"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// debianPython is Debian's interpreter, where python3-aiosmtpd lives (a
// python3 earlier on PATH, such as a pyenv one, does not see it).
const debianPython = "/usr/bin/python3"

// TestAiosmtpdReceivesRealMail sends a mail to Debian's aiosmtpd (a
// different SMTP implementation from the one the other tests use), which
// stores it in a Maildir, and parses what arrived with net/mail.
func TestAiosmtpdReceivesRealMail(t *testing.T) {
	if err := exec.Command(debianPython, "-c", "import aiosmtpd.handlers").Run(); err != nil {
		t.Fatalf("python3-aiosmtpd is not installed (scripts/deps.sh test installs it): %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	maildir := filepath.Join(t.TempDir(), "Maildir")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, debianPython, "-m", "aiosmtpd", "-n",
		"-l", "127.0.0.1:"+strconv.Itoa(port), "-c", "aiosmtpd.handlers.Mailbox", maildir)
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("aiosmtpd did not listen within 15 s: %v\n%s", err, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	now := time.Date(2026, 11, 22, 4, 5, 6, 0, time.FixedZone("", -5*3600))
	m := NewMail("lvsmon on director-1 <lvsmon@director-1.example>",
		[]string{"Ops Team <ops@example.org>", "Jürgen <juergen@example.org>"},
		"Sorry server active for web:443 — all real servers down", "web:443 has no healthy real server.\nSorry server 10.0.9.9 is active.\n", now, 100, 101)
	s := newSender(t, SMTPConfig{Host: "127.0.0.1", Port: port, TLS: "opportunistic", HELO: "director-1.example", Timeout: 10 * time.Second})
	if err := s.Send(ctx, m); err != nil {
		t.Fatalf("send: %v\n%s", err, stderr.String())
	}

	var file string
	waitFor(t, "the mail in the Maildir", func() bool {
		des, _ := os.ReadDir(filepath.Join(maildir, "new"))
		if len(des) > 0 {
			file = filepath.Join(maildir, "new", des[0].Name())
			return true
		}
		return false
	})
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	got, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	h := got.Header
	if d, err := h.Date(); err != nil || !d.Equal(now) {
		t.Errorf("Date = %v, %v", d, err)
	}
	if h.Get("Message-ID") != "<"+m.MessageID+">" {
		t.Errorf("Message-ID = %q, want <%s>", h.Get("Message-ID"), m.MessageID)
	}
	if f, err := mail.ParseAddress(h.Get("From")); err != nil || f.Name != "lvsmon on director-1" || f.Address != "lvsmon@director-1.example" {
		t.Errorf("From = %v, %v", f, err)
	}
	to, err := h.AddressList("To")
	if err != nil || len(to) != 2 || to[0].Address != "ops@example.org" || to[1].Name != "Jürgen" {
		t.Errorf("To = %v, %v", to, err)
	}
	if subj, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject")); err != nil || subj != m.Subject {
		t.Errorf("Subject = %q, %v", subj, err)
	}
	// aiosmtpd records the envelope it saw.
	if h.Get("X-MailFrom") != "lvsmon@director-1.example" {
		t.Errorf("envelope sender = %q", h.Get("X-MailFrom"))
	}
	body, err := io.ReadAll(quotedprintable.NewReader(got.Body))
	// The Maildir stores lines with LF ends.
	if err != nil || strings.ReplaceAll(string(body), "\r\n", "\n") != m.Body {
		t.Errorf("body = %q, %v", body, err)
	}
	if h.Get("X-Lvsmon-Events") != "100 101" {
		t.Errorf("X-Lvsmon-Events = %q", h.Get("X-Lvsmon-Events"))
	}
}
