package alerting

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestOutboxPersistsAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	o, err := OpenOutbox(dir, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	m1, m2 := testMail(now), testMail(now)
	m2.Subject = "second"
	if err := o.Put(m1); err != nil {
		t.Fatal(err)
	}
	if err := o.Put(m2); err != nil {
		t.Fatal(err)
	}
	// A mail without Message-ID and Date gets them at Put.
	if err := o.Put(Mail{From: "a@b.example", To: []string{"c@d.example"}, Subject: "third"}); err != nil {
		t.Fatal(err)
	}
	p := o.Pending()
	if len(p) != 3 || p[0].Mail.MessageID != m1.MessageID || p[1].Mail.Subject != "second" || p[2].Mail.MessageID == "" || p[2].Mail.Date.IsZero() {
		t.Fatalf("pending = %+v", p)
	}
	next := now.Add(time.Minute).Truncate(time.Second)
	if err := o.Failed(p[0].ID, &SendError{Stage: "mail", Code: 451, Text: "later"}, next); err != nil {
		t.Fatal(err)
	}
	if err := o.Failed(p[1].ID, &SendError{Stage: "data", Code: 554, Permanent: true, Text: "no"}, next); err != nil {
		t.Fatal(err)
	}
	if err := o.Done(p[2].ID); err != nil {
		t.Fatal(err)
	}
	if err := o.Done(p[2].ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Done: %v", err)
	}

	o2, err := OpenOutbox(dir, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	q := o2.Pending()
	if len(q) != 2 {
		t.Fatalf("after reopen: %+v", q)
	}
	if q[0].ID != p[0].ID || q[0].Attempts != 1 || !q[0].NextAttempt.Equal(next) || !strings.Contains(q[0].LastError, "451 later") || q[0].Permanent {
		t.Errorf("first entry after reopen: %+v", q[0])
	}
	if !q[1].Permanent || q[1].Mail.MessageID != m2.MessageID || !q[1].Mail.Date.Equal(m2.Date) || len(q[1].Mail.EventSeqs) != 2 {
		t.Errorf("second entry after reopen: %+v", q[1])
	}
	if err := o2.Requeue(q[1].ID); err != nil {
		t.Fatal(err)
	}
	if o2.Pending()[1].Permanent {
		t.Error("Requeue did not clear Permanent")
	}
	// Nothing but the entries is left in the directory.
	des, _ := os.ReadDir(dir)
	if len(des) != 2 {
		t.Errorf("directory holds %d files", len(des))
	}
}

func TestOutboxFullFailsLoudly(t *testing.T) {
	o, err := OpenOutbox(t.TempDir(), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := o.Put(testMail(time.Now())); err != nil {
			t.Fatal(err)
		}
	}
	err = o.Put(testMail(time.Now()))
	if !errors.Is(err, ErrOutboxFull) || !strings.Contains(err.Error(), "not queued") {
		t.Fatalf("Put into a full outbox: %v", err)
	}
	if o.Len() != 2 {
		t.Errorf("Len = %d", o.Len())
	}
	// The limit is per channel: a webhook's deliveries have their own,
	// and a full webhook leaves mail alone.
	for i := 0; i < 2; i++ {
		if err := o.PutWebhook(Delivery{Hook: "dead", Body: "{}"}); err != nil {
			t.Fatalf("a webhook's delivery beside two mails: %v", err)
		}
	}
	if err := o.PutWebhook(Delivery{Hook: "dead", Body: "{}"}); !errors.Is(err, ErrOutboxFull) || !strings.Contains(err.Error(), "webhook:dead") {
		t.Fatalf("a third delivery of the hook: %v", err)
	}
	if err := o.PutWebhook(Delivery{Hook: "other", Body: "{}"}); err != nil {
		t.Fatalf("another hook: %v", err)
	}
}

func TestOutboxCorruptMovedAside(t *testing.T) {
	dir := t.TempDir()
	o, err := OpenOutbox(dir, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Put(testMail(time.Now())); err != nil {
		t.Fatal(err)
	}
	good := o.Pending()[0].ID
	bad := filepath.Join(dir, "0000000000000000001.json")
	if err := os.WriteFile(bad, []byte(`{"id":"0000000000000000001","mail":{`), 0o600); err != nil {
		t.Fatal(err)
	}
	// Leftovers of interrupted Puts, an older lvsmon's and atomicfile's.
	if err := os.WriteFile(filepath.Join(dir, "0000000000000000002.json.tmp"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".0000000000000000003.json.tmp-77"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	o2, err := OpenOutbox(dir, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p := o2.Pending(); len(p) != 1 || p[0].ID != good {
		t.Fatalf("pending = %+v", p)
	}
	c := o2.Corrupt()
	if len(c) != 1 || !strings.HasPrefix(c[0], filepath.Join(dir, "corrupt", "0000000000000000001.json")) {
		t.Fatalf("corrupt = %v", c)
	}
	if b, err := os.ReadFile(c[0]); err != nil || !strings.Contains(string(b), `"mail":{`) {
		t.Errorf("moved file: %q, %v", b, err)
	}
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Error("the corrupt file is still in the queue")
	}
	for _, tmp := range []string{"0000000000000000002.json.tmp", ".0000000000000000003.json.tmp-77"} {
		if _, err := os.Stat(filepath.Join(dir, tmp)); !os.IsNotExist(err) {
			t.Errorf("the temporary file %s is still there", tmp)
		}
	}
}
