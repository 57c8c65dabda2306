package importer

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func TestDetect(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		want       string // a format, or "error: " and a part of the message
	}{
		{"lvsmon", "ipvs: {backend: fake}\nlisten: 127.0.0.1:0\nvirtual_services:\n  - {name: web, address: 192.0.2.10, port: 80, real_servers: [{address: 10.0.1.1}]}\n", FormatLvsmon},
		{"lvsmon document start", "---\n# the director\ndirector: lvs1\n", FormatLvsmon},
		{"lvsmon unknown keys only", "virtual_service:\n  - address: 192.0.2.1\n", FormatLvsmon}, // config.Parse names the typo
		{"lvsmon broken YAML", "virtual_services:\n  - name: web\n   address: x: y\n", FormatLvsmon},
		{"lvsmon flow braces", "virtual_services: [{name: a, address: 192.0.2.1, port: 80}]\n", FormatLvsmon},
		{"keepalived", "! comment\nglobal_defs {\n  router_id lvs1\n}\nvirtual_server 192.0.2.1 80 {\n  real_server 10.0.0.1 80 {\n    TCP_CHECK {\n    }\n  }\n}\n", FormatKeepalived},
		{"keepalived include only", "include /etc/keepalived/conf.d/*.conf\n", FormatKeepalived},
		{"keepalived brace next line", "virtual_server fwmark 1\n{\n  lb_kind DR\n}\n", FormatKeepalived},
		{"keepalived @id and params", "$VIP=192.0.2.1\n@lvs1 virtual_server $VIP 80 {\n}\n", FormatKeepalived},
		{"keepalived IPv6", "virtual_server 2001:db8::1 80 {\n  real_server 2001:db8::2 80 {\n  }\n}\n", FormatKeepalived},
		{"keepalived vrrp only", "vrrp_instance VI_1 {\n  state MASTER\n  virtual_ipaddress {\n    192.0.2.1\n  }\n}\n", FormatKeepalived},
		{"ldirectord", "# global\nchecktimeout=3\nquiescent=no\n\nvirtual=192.0.2.1:80\n\treal=10.0.0.1:80 gate\n\tservice=http\n\trequest=\"index.html\"\n\treceive=\"Test Page\"\n", FormatLdirectord},
		{"ldirectord spaces", "virtual = 192.0.2.1:80\n    real = 10.0.0.1:80 masq\n", FormatLdirectord},
		{"ldirectord colon in a value", "comment=a: b\n", "error: cannot tell"},
		{"ldirectord globals only", "checkinterval=5\nemailalert=root@example.org\n", FormatLdirectord},

		{"empty", "", "error: neither"},
		{"comments only", "# nothing\n! at all\n\n", "error: neither"},
		{"prose", "hello world\nthis is not a config\n", "error: neither"},
		{"YAML list", "- a\n- b\n", "error: neither"},
		{"keepalived and ldirectord", "virtual=192.0.2.1:80\n\treal=10.0.0.1:80 gate\nvirtual_server 192.0.2.1 80 {\n}\n", "error: line 1 looks like ldirectord.cf (virtual=), line 3 looks like keepalived.conf (virtual_server)"},
		{"lvsmon and keepalived", "director: lvs1\nglobal_defs {\n}\n", "error: cannot tell"},
		{"piranha", "serial_no = 12\nprimary = 192.0.2.1\nservice = lvs\nvirtual web {\n  active = 1\n  address = 192.0.2.10 eth0:1\n  server one {\n    address = 10.0.0.1\n  }\n}\n", FormatPiranha},
		{"piranha sample style", "# generated\nservice = lvs\nnetwork = nat\nvirtual server1 {\n\taddress = 192.0.2.1 eth0:1\n\tserver Real1 {\n\t\taddress = 10.0.0.1\n\t}\n}\n", FormatPiranha},
		{"piranha and ldirectord", "primary = 192.0.2.1\nvirtual=192.0.2.1:80\n", "error: line 1 looks like piranha's lvs.cf (primary =), line 2 looks like ldirectord.cf (virtual=)"},
		{"binary", "virtual=1\x00\n", "error: NUL"},
		{"not UTF-8", "virtual_server \xff 80 {\n}\n", "error: not UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Detect("cfg", []byte(tc.data))
			if want, ok := strings.CutPrefix(tc.want, "error: "); ok {
				var ie *Error
				if err == nil || !errors.As(err, &ie) || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "cfg") {
					t.Fatalf("Detect = %q, %v; want an *Error naming cfg with %q", got, err, want)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Detect = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// A large lvsmon config (over the imports' 4 MiB) is still lvsmon's:
// only its head is read.
func TestDetectLargeYAML(t *testing.T) {
	var b strings.Builder
	b.WriteString("virtual_services:\n")
	for b.Len() < MaxFileSize+1<<20 {
		b.WriteString("  - {name: web, address: 192.0.2.10, port: 80, real_servers: [{address: 10.0.1.1}]}\n")
	}
	if got, err := Detect("big.yaml", []byte(b.String())); err != nil || got != FormatLvsmon {
		t.Fatalf("Detect = %q, %v", got, err)
	}
}

// The shipped example config is lvsmon's (the samples of keepalived and
// ldirectord are detected in TestDetectSamples, a lab test).
func TestDetectExample(t *testing.T) {
	b, err := os.ReadFile("../etc/lvsmon.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Detect("lvsmon.example.yaml", b); err != nil || got != FormatLvsmon {
		t.Fatalf("Detect = %q, %v", got, err)
	}
}

// FuzzDetect: any input gets a format or an *Error, and a format that
// is not lvsmon's is one its reader accepts or refuses with an *Error
// (never a panic).
func FuzzDetect(f *testing.F) {
	for _, s := range []string{
		"director: x\n", "virtual_server 192.0.2.1 80 {\n}\n", "virtual=192.0.2.1:80\n\treal=10.0.0.1:80 gate\n",
		"serial_no = 1\nvirtual a {\n}\n", "comment=a: b\n", "- a\n", "{}", "include x\n@a $B=1\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		format, err := Detect("f", []byte(s))
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("not an *Error: %v", err)
			}
			return
		}
		switch format {
		case FormatLvsmon:
		case FormatKeepalived:
			_, err = importKeepalived("f", []byte(s), mapSource{"f": s}, Options{ConfigID: "x"})
		case FormatLdirectord:
			_, err = Ldirectord("f", []byte(s))
		case FormatPiranha:
			_, err = Piranha("f", []byte(s))
		default:
			t.Fatalf("format %q", format)
		}
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("%s: not an *Error: %v", format, err)
			}
		}
	})
}
