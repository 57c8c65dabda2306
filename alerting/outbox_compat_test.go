package alerting

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// An outbox written by release 1 (mails only, no channel field) opens
// as it did: the mail, its retry state and its channel (mail); a
// webhook delivery put beside it round-trips; an entry of a removed
// channel can be dropped, and stays readable in dropped/.
func TestOutboxRelease1Compatible(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join("testdata", "outbox-release-1", "1772366400000000000.json")
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, filepath.Base(src)), b, 0o640); err != nil {
		t.Fatal(err)
	}
	o, err := OpenOutbox(dir, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := o.Pending()
	if len(p) != 1 || len(o.Corrupt()) != 0 {
		t.Fatalf("pending %+v, corrupt %v", p, o.Corrupt())
	}
	e := p[0]
	if e.Channel() != MailChannel || e.Webhook != nil || e.Mail.Subject != "[lvsmon dir1] web: 10.0.1.2:80 down" || e.Attempts != 2 ||
		!e.NextAttempt.Equal(time.Date(2026, 3, 1, 12, 0, 30, 0, time.UTC)) || len(e.Mail.EventSeqs) != 1 {
		t.Fatalf("the release 1 mail reads as %+v", e)
	}
	if err := o.PutWebhook(Delivery{Hook: "chat", Body: `{"a":1}`, EventSeqs: []uint64{42}}); err != nil {
		t.Fatal(err)
	}
	o2, err := OpenOutbox(dir, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	p = o2.Pending()
	if len(p) != 2 || p[1].Channel() != WebhookChannel("chat") || p[1].Webhook.Body != `{"a":1}` || p[1].Webhook.ID == "" || p[1].Subject() != "webhook chat: 1 events" {
		t.Fatalf("reopened: %+v", p)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, p[1].ID+".json"))
	if string(raw) == "" || bytes.Contains(raw, []byte(`"mail"`)) {
		t.Errorf("a webhook entry carries an empty mail: %s", raw)
	}
	to, err := o2.Drop(p[1].ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(to); err != nil || o2.Len() != 1 {
		t.Errorf("dropped to %s: %v, %d left", to, err, o2.Len())
	}
	if o3, err := OpenOutbox(dir, 10, nil); err != nil || o3.Len() != 1 {
		t.Errorf("after the drop: %v", err)
	}
	// A webhook entry without a hook name is unreadable: moved aside.
	bad := filepath.Join(dir, "1772366400000000009.json")
	os.WriteFile(bad, []byte(`{"id":"1772366400000000009","webhook":{"id":"x"},"created":"2026-03-01T12:00:00Z"}`), 0o640)
	o4, err := OpenOutbox(dir, 10, nil)
	if err != nil || o4.Len() != 1 || len(o4.Corrupt()) != 1 {
		t.Errorf("a bad webhook entry: %v, %d entries, corrupt %v", err, o4.Len(), o4.Corrupt())
	}
}
