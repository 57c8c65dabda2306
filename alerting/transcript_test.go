package alerting

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

// The transcript shows the whole conversation, and never the password:
// neither plain nor in the base64 of AUTH PLAIN.
func TestSenderTranscript(t *testing.T) {
	ts := startServer(t, "starttls", "alerts", "s3cret-pw")
	cfg := ts.config()
	cfg.Username, cfg.PasswordFile = "alerts", passwordFile(t, "s3cret-pw")
	var lines []string
	s := newSender(t, cfg).WithTranscript(func(l string) { lines = append(lines, l) })
	m := NewMail("lvsmon@director.test", []string{"ops@example.test"}, "test", "body", time.Now())
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	all := strings.Join(lines, "\n")
	for _, want := range []string{"S: 220", "C: EHLO director.test", "C: STARTTLS", "C: <SMTP auth data redacted>", "S: 235", "C: MAIL FROM:lvsmon@director.test", "C: RCPT TO:ops@example.test", "C: DATA", "S: 354", "C: QUIT"} {
		if !strings.Contains(all, want) {
			t.Errorf("transcript lacks %q:\n%s", want, all)
		}
	}
	b64 := base64.StdEncoding.EncodeToString([]byte("\x00alerts\x00s3cret-pw"))
	if strings.Contains(all, "s3cret-pw") || strings.Contains(all, b64) {
		t.Errorf("the password is in the transcript:\n%s", all)
	}
	// The daemon's sender (no transcript) is unchanged.
	if err := newSender(t, cfg).Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}
