package alerting

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"strconv"
	"strings"
	"time"
)

// Mail is one message to send. It is what the outbox stores, so every
// field that ends up in the rendered message (Date, MessageID above all)
// is fixed when the mail is created and survives restarts: a retry sends
// the very same message.
type Mail struct {
	From    string   `json:"from"`
	To      []string `json:"to"`
	Subject string   `json:"subject"`
	Body    string   `json:"body"`
	// MessageID is the Message-ID header without the angle brackets.
	MessageID string    `json:"message_id"`
	Date      time.Time `json:"date"`
	// EventSeqs are the events.Event sequence numbers the mail reports.
	EventSeqs []uint64 `json:"event_seqs,omitempty"`
}

// NewMail fills in Date (now) and a fresh Message-ID. Call it once per
// mail and store the result; never call it again for a retry.
func NewMail(from string, to []string, subject, body string, now time.Time, seqs ...uint64) Mail {
	return Mail{
		From:      from,
		To:        append([]string(nil), to...),
		Subject:   subject,
		Body:      body,
		MessageID: NewMessageID(from, now),
		Date:      now,
		EventSeqs: append([]uint64(nil), seqs...),
	}
}

// NewMessageID returns a globally unique Message-ID (without the angle
// brackets): time, 96 random bits and a domain taken from the From address
// (the host name when From has none).
func NewMessageID(from string, now time.Time) string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("alerting: crypto/rand: " + err.Error()) // does not happen on Linux
	}
	domain := ""
	if a, err := mail.ParseAddress(from); err == nil {
		if i := strings.LastIndexByte(a.Address, '@'); i >= 0 {
			domain = a.Address[i+1:]
		}
	}
	if domain == "" {
		domain, _ = os.Hostname()
	}
	if domain == "" || strings.ContainsAny(domain, "<>@ \t\r\n\"()[]\\,;:") {
		domain = "lvsmon.invalid"
	}
	return strconv.FormatInt(now.UnixNano(), 36) + "." + hex.EncodeToString(b[:]) + ".lvsmon@" + domain
}

// Validate reports what is missing or malformed in m.
func (m Mail) Validate() error {
	if _, err := mail.ParseAddress(m.From); err != nil {
		return fmt.Errorf("mail: bad From %q: %w", m.From, err)
	}
	if len(m.To) == 0 {
		return errors.New("mail: no recipients")
	}
	for _, t := range m.To {
		if _, err := mail.ParseAddress(t); err != nil {
			return fmt.Errorf("mail: bad To %q: %w", t, err)
		}
	}
	if m.MessageID == "" || strings.ContainsAny(m.MessageID, "<> \t\r\n") || !strings.Contains(m.MessageID, "@") {
		return fmt.Errorf("mail: bad Message-ID %q", m.MessageID)
	}
	if m.Date.IsZero() {
		return errors.New("mail: no Date")
	}
	return nil
}

// envelope returns the SMTP envelope sender and recipients (bare
// addr-specs).
func (m Mail) envelope() (string, []string, error) {
	f, err := mail.ParseAddress(m.From)
	if err != nil {
		return "", nil, fmt.Errorf("mail: bad From %q: %w", m.From, err)
	}
	to := make([]string, 0, len(m.To))
	for _, t := range m.To {
		a, err := mail.ParseAddress(t)
		if err != nil {
			return "", nil, fmt.Errorf("mail: bad To %q: %w", t, err)
		}
		to = append(to, a.Address)
	}
	return f.Address, to, nil
}

// Render returns m as an RFC 5322 message with CRLF line ends: a
// text/plain UTF-8 body in quoted-printable (so it passes any 7-bit
// relay), the Subject and display names RFC 2047-encoded when they are
// not ASCII. Rendering is deterministic: the same Mail always gives the
// same bytes.
func (m Mail) Render() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	from, _ := mail.ParseAddress(m.From)
	to := make([]string, 0, len(m.To))
	for _, t := range m.To {
		a, _ := mail.ParseAddress(t)
		to = append(to, a.String())
	}
	var b bytes.Buffer
	header := func(k, v string) {
		b.WriteString(k)
		b.WriteString(": ")
		b.WriteString(v)
		b.WriteString("\r\n")
	}
	header("Date", m.Date.Format(time.RFC1123Z))
	header("Message-ID", "<"+m.MessageID+">")
	header("From", from.String())
	header("To", strings.Join(to, ",\r\n "))
	header("Subject", encodeHeader(m.Subject))
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	if len(m.EventSeqs) > 0 {
		s := make([]string, len(m.EventSeqs))
		for i, q := range m.EventSeqs {
			s[i] = strconv.FormatUint(q, 10)
		}
		header("X-Lvsmon-Events", strings.Join(s, " "))
	}
	header("Auto-Submitted", "auto-generated")
	b.WriteString("\r\n")
	body := strings.ReplaceAll(m.Body, "\r\n", "\n")
	body = strings.ReplaceAll(body, "\r", "\n")
	qp := quotedprintable.NewWriter(&b)
	for i, line := range strings.Split(body, "\n") {
		if i > 0 {
			// A literal CRLF in the input is a hard line break in the
			// quoted-printable output.
			if _, err := qp.Write([]byte("\r\n")); err != nil {
				return nil, err
			}
		}
		if _, err := qp.Write([]byte(line)); err != nil {
			return nil, err
		}
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	if !bytes.HasSuffix(b.Bytes(), []byte("\r\n")) {
		b.WriteString("\r\n")
	}
	return b.Bytes(), nil
}

// encodeHeader removes line breaks (no header injection) and
// RFC 2047-encodes s when it is not plain printable ASCII.
func encodeHeader(s string) string {
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\r' || r == '\n' }), " ")
	return mime.QEncoding.Encode("utf-8", s)
}
