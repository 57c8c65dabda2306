package alerting

import (
	"bytes"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"
	"time"
)

func TestMailRenderParses(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 34, 56, 0, time.FixedZone("CET", 3600))
	m := NewMail("Überwachung <lvsmon@director.example>", []string{"ops@example.org", "Zoë <zoe@example.org>"},
		"Real server down: café ☕", "line one\nzweite Zeile: äöü\r\n"+strings.Repeat("x", 100)+"\n.\nend", now, 7)
	raw, err := m.Render()
	if err != nil {
		t.Fatal(err)
	}
	again, _ := m.Render()
	if !bytes.Equal(raw, again) {
		t.Fatal("rendering is not deterministic")
	}
	for i, line := range bytes.Split(raw, []byte("\r\n")) {
		if len(line) > 998 {
			t.Fatalf("line %d is %d bytes", i, len(line))
		}
		for _, c := range line {
			if c >= 0x80 || c == '\n' || c == '\r' {
				t.Fatalf("line %d is not 7-bit clean CRLF text: %q", i, line)
			}
		}
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	h := msg.Header
	date, err := h.Date()
	if err != nil || !date.Equal(now) {
		t.Errorf("Date = %v, %v; want %v", date, err, now)
	}
	if got := h.Get("Message-ID"); got != "<"+m.MessageID+">" || !strings.HasSuffix(m.MessageID, "@director.example") {
		t.Errorf("Message-ID = %q (mail has %q)", got, m.MessageID)
	}
	from, err := mail.ParseAddress(h.Get("From"))
	if err != nil || from.Name != "Überwachung" || from.Address != "lvsmon@director.example" {
		t.Errorf("From = %+v, %v", from, err)
	}
	to, err := h.AddressList("To")
	if err != nil || len(to) != 2 || to[1].Name != "Zoë" || to[1].Address != "zoe@example.org" {
		t.Errorf("To = %+v, %v", to, err)
	}
	subj, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
	if err != nil || subj != m.Subject {
		t.Errorf("Subject = %q, %v", subj, err)
	}
	if h.Get("MIME-Version") != "1.0" || h.Get("Content-Type") != "text/plain; charset=utf-8" ||
		h.Get("Content-Transfer-Encoding") != "quoted-printable" {
		t.Errorf("MIME headers: %v", h)
	}
	if h.Get("X-Lvsmon-Events") != "7" {
		t.Errorf("X-Lvsmon-Events = %q", h.Get("X-Lvsmon-Events"))
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatal(err)
	}
	want := "line one\r\nzweite Zeile: äöü\r\n" + strings.Repeat("x", 100) + "\r\n.\r\nend\r\n"
	if string(body) != want {
		t.Errorf("body = %q, want %q", body, want)
	}
}

func TestMailRenderASCIISubjectUnencoded(t *testing.T) {
	m := testMail(time.Now())
	raw, err := m.Render()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte("\r\nSubject: [lvsmon] web:80 10.0.0.2 down\r\n")) {
		t.Errorf("plain subject was encoded:\n%s", raw)
	}
}

func TestMailNoHeaderInjection(t *testing.T) {
	m := testMail(time.Now())
	m.Subject = "down\r\nBcc: victim@example.com"
	raw, err := m.Render()
	if err != nil {
		t.Fatal(err)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if msg.Header.Get("Bcc") != "" {
		t.Fatalf("a header was injected:\n%s", raw)
	}
}

func TestMailValidate(t *testing.T) {
	good := testMail(time.Now())
	for name, mod := range map[string]func(*Mail){
		"no from":       func(m *Mail) { m.From = "" },
		"no to":         func(m *Mail) { m.To = nil },
		"bad to":        func(m *Mail) { m.To = []string{"not an address"} },
		"no message-id": func(m *Mail) { m.MessageID = "" },
		"bad message-id": func(m *Mail) {
			m.MessageID = "a b@c"
		},
		"no date": func(m *Mail) { m.Date = time.Time{} },
	} {
		m := good
		mod(&m)
		if _, err := m.Render(); err == nil {
			t.Errorf("%s: rendered", name)
		}
	}
	if NewMessageID(good.From, time.Now()) == NewMessageID(good.From, time.Now()) {
		t.Error("two Message-IDs are equal")
	}
}
