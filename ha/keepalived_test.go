package ha

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fixturePassword is the auth_pass of the keepalived fixtures; it must
// never come out of this package.
const fixturePassword = "s3cr3t"

func readFixture(t testing.TB, parts ...string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(append([]string{"testdata"}, parts...)...))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseKeepalivedJSON(t *testing.T) {
	vip := []netip.Prefix{netip.MustParsePrefix("198.51.100.100/24")}
	lvs := func(state State, raw int, prio, base, master uint8, set bool, lt time.Time) Instance {
		return Instance{Name: "VI_LVS", Interface: "eth0", VRID: 51, Version: 2, State: state, RawState: raw,
			Priority: prio, BasePriority: base, MasterPriority: master, VIPs: vip, VIPsSet: set,
			AdvertInterval: time.Second, LastTransition: lt}
	}
	tests := []struct {
		file string
		want []Instance
	}{
		{"master.json", []Instance{
			lvs(StateMaster, 2, 150, 150, 150, true, time.Unix(1795304741, 903117000).UTC()),
			{Name: "VI_V6", Interface: "eth0", VRID: 52, Version: 3, State: StateMaster, RawState: 2,
				Priority: 150, BasePriority: 150, MasterPriority: 150, VIPsSet: true, AdvertInterval: time.Second,
				VIPs:           []netip.Prefix{netip.MustParsePrefix("2001:db8:51::100/64"), netip.MustParsePrefix("fe80::51:1/128")},
				LastTransition: time.Unix(1795304742, 118004000).UTC()},
		}},
		{"backup.json", []Instance{lvs(StateBackup, 1, 100, 100, 150, false, time.Unix(1795304738, 415285000).UTC())}},
		{"fault.json", []Instance{lvs(StateFault, 3, 100, 100, 0, false, time.Unix(1795304802, 123000).UTC())}},
		{"init.json", []Instance{lvs(StateUnknown, 0, 150, 150, 0, false, time.Time{})}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			text := readFixture(t, "keepalived", tt.file)
			if !strings.Contains(text, `"auth_data": "`+fixturePassword+`"`) {
				t.Fatalf("fixture lost its password; the secrecy tests would prove nothing")
			}
			got, err := ParseKeepalivedJSON(strings.NewReader(text))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got\n%+v\nwant\n%+v", got, tt.want)
			}
			if s := fmt.Sprintf("%+v %#v", got, got); strings.Contains(s, fixturePassword) {
				t.Errorf("the password is in the result: %s", s)
			}
		})
	}
}

func TestParseKeepalivedJSONEmpty(t *testing.T) {
	got, err := ParseKeepalivedJSON(strings.NewReader(" [ ]\n"))
	if err != nil || len(got) != 0 {
		t.Fatalf("got %v, %v; want no instance, no error", got, err)
	}
}

// TestParseKeepalivedJSONErrors breaks the backup fixture in ways that put
// the error next to the password, and checks the error never quotes it.
func TestParseKeepalivedJSONErrors(t *testing.T) {
	base := readFixture(t, "keepalived", "backup.json")
	edit := func(old, new string) string {
		if !strings.Contains(base, old) {
			t.Fatalf("fixture has no %q", old)
		}
		return strings.Replace(base, old, new, 1)
	}
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "empty"},
		{"object", `{"data":{}}`, "not a JSON array"},
		{"truncated", base[:len(base)/2], "JSON syntax error"},
		{"password is a number", edit(`"auth_data": "s3cr3t"`, `"auth_data": 12345`), ""}, // ignored field: no error
		{"password breaks syntax", edit(`"auth_data": "s3cr3t"`, `"auth_data": "s3cr3t`), "JSON syntax error"},
		{"state is the password", edit(`"state": 1`, `"state": "s3cr3t"`), `field "data.state": JSON string where int`},
		{"vrid string", edit(`"vrid": 51`, `"vrid": "s3cr3t"`), "JSON string where int"},
		{"no data", `[{"stats":{}}]`, `instance 1: invalid: no "data" object`},
		{"no name", edit(`"iname": "VI_LVS"`, `"iname": ""`), "no instance name"},
		{"vrid 0", edit(`"vrid": 51`, `"vrid": 0`), `instance 1 ("VI_LVS"): invalid: vrid 0, want 1..255`},
		{"vrid 256", edit(`"vrid": 51`, `"vrid": 256`), "vrid 256"},
		{"no vrid", edit(`"vrid": 51,`, ``), "vrid missing"},
		{"no state", edit(`"state": 1,`, ``), "no state"},
		{"priority", edit(`"effective_priority": 100`, `"effective_priority": 300`), "effective_priority 300"},
		{"version", edit(`"version": 2`, `"version": 4`), "VRRP version 4"},
		{"vip", edit(`"198.51.100.100/24 dev`, `"198.51.100.300/24 dev`), `vips[0] "198.51.100.300/24 dev eth0 scope global label eth0:vip": not an address/length`},
		{"float vrid", edit(`"vrid": 51`, `"vrid": 51.5`), "JSON number where int"},
		{"duplicate", "[" + strings.Trim(strings.TrimSpace(base), "[]") + "," + strings.Trim(strings.TrimSpace(base), "[]") + "]", "duplicate instance name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKeepalivedJSON(strings.NewReader(tt.in))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				if s := fmt.Sprintf("%+v", got); strings.Contains(s, fixturePassword) || strings.Contains(s, "12345") {
					t.Errorf("auth_data in the result: %s", s)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, got %+v", got)
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want ErrInvalid and %q", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "ha: keepalived.json: ") {
				t.Errorf("error %q does not name its source", err)
			}
			if strings.Contains(err.Error(), fixturePassword) || strings.Contains(fmt.Sprintf("%+v", err), fixturePassword) {
				t.Errorf("the password is in the error: %v", err)
			}
		})
	}
}

func TestParseNotifyLineFixtures(t *testing.T) {
	want := map[string][]string{
		"fifo-a.txt": {
			"INSTANCE VI_LVS BACKUP BACKUP 150", "INSTANCE VI_LVS MASTER MASTER 150",
			"INSTANCE VI_LVS MASTER MASTER_RX_LOWER_PRI 150", "INSTANCE VI_LVS MASTER MASTER_RX_LOWER_PRI 150",
			"INSTANCE VI_LVS MASTER MASTER_RX_LOWER_PRI 150", "INSTANCE VI_LVS FAULT FAULT 100",
			"INSTANCE VI_V3 BACKUP BACKUP 100", "GROUP VG_LVS MASTER MASTER -",
			"INSTANCE LVS web pool STOP STOP 150",
		},
		"fifo-b.txt": {"INSTANCE VI_LVS BACKUP BACKUP 100", "INSTANCE VI_LVS MASTER MASTER 100", "INSTANCE VI_LVS BACKUP BACKUP 100"},
	}
	for file, w := range want {
		var got []string
		for line := range strings.Lines(readFixture(t, "notify", file)) {
			n, err := ParseNotifyLine(line)
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			p := "-"
			if n.HasPriority {
				p = fmt.Sprint(n.Priority)
			}
			got = append(got, fmt.Sprintf("%v %s %v %s %s", n.Kind, n.Name, n.State, n.Event, p))
			if n.String() != strings.TrimSuffix(line, "\n") {
				t.Errorf("String() = %q, want %q", n.String(), line)
			}
		}
		if !reflect.DeepEqual(got, w) {
			t.Errorf("%s:\ngot  %q\nwant %q", file, got, w)
		}
	}
}

func TestParseNotifyLine(t *testing.T) {
	tests := []struct {
		line string
		want Notification
		err  string
	}{
		{line: "INSTANCE \"VI_1\" MASTER 150\r\n", want: Notification{NotifyInstance, "VI_1", StateMaster, "MASTER", 150, true}},
		{line: `INSTANCE "VI 1 "quoted"" BACKUP 0`, want: Notification{NotifyInstance, `VI 1 "quoted"`, StateBackup, "BACKUP", 0, true}},
		{line: `GROUP "VG_1" FAULT 255`, want: Notification{NotifyGroup, "VG_1", StateFault, "FAULT", 255, true}},
		{line: `INSTANCE "VI_1" DELETED 100`, want: Notification{NotifyInstance, "VI_1", StateStop, "DELETED", 100, true}},
		{line: `INSTANCE "VI_1" MASTER_PRIORITY 90`, want: Notification{NotifyInstance, "VI_1", StateMaster, "MASTER_PRIORITY", 90, true}},
		{line: "", err: "not a VRRP notification"},
		{line: `VS [10.0.0.1]:tcp:80 UP`, err: `type "VS", want INSTANCE or GROUP`},
		{line: `INSTANCE VI_1 MASTER 150`, err: "name is not quoted"},
		{line: `INSTANCE "VI_1 MASTER 150`, err: "no closing quote"},
		{line: `INSTANCE "" MASTER 150`, err: "empty name"},
		{line: `INSTANCE "VI_1"MASTER 150`, err: "no state after the name"},
		{line: `INSTANCE "VI_1" MASTER`, err: "no priority"},
		{line: `INSTANCE "VI_1" MASTER 256`, err: `priority "256"`},
		{line: `INSTANCE "VI_1" MASTER 015`, err: `priority "015"`},
		{line: `INSTANCE "VI_1" MASTER -1`, err: `priority "-1"`},
		{line: `INSTANCE "VI_1" MASTER  150`, err: "want STATE [PRIORITY]"},
		{line: `INSTANCE "VI_1" MASTER 150 extra`, err: "want STATE [PRIORITY]"},
		{line: `INSTANCE "VI_1" master 150`, err: `unknown state "master"`},
		{line: "INSTANCE \"VI_1\" MASTER 150\n\n", err: "control character"},
		{line: "INSTANCE \"VI\t1\" MASTER 150", err: "control character"},
		{line: "INSTANCE \"VI\xff\" MASTER 150", err: "not UTF-8"},
	}
	for _, tt := range tests {
		got, err := ParseNotifyLine(tt.line)
		if tt.err == "" {
			if err != nil || got != tt.want {
				t.Errorf("%q: got %+v, %v; want %+v", tt.line, got, err, tt.want)
			}
			continue
		}
		if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%q: error %v, want ErrInvalid and %q", tt.line, err, tt.err)
		}
	}
}
