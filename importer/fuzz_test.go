package importer

import (
	"testing"

	"github.com/lvsmon/lvsmon/config"
)

// FuzzKeepalived: any input is imported or refused with an *Error,
// never a panic or a hang, and what is imported validates (finish
// re-parses it; an invalid result is an error, which must not happen).
func FuzzKeepalived(f *testing.F) {
	for _, s := range []string{
		"virtual_server 192.0.2.1 80 {\n  real_server 10.0.0.1 80 {\n    TCP_CHECK {\n    }\n  }\n}\n",
		"virtual_server_group G {\n 192.0.2.1-3 80\n fwmark 3\n}\nvirtual_server group G {\n lb_kind DR\n real_server 10.0.0.1 80 {\n }\n}\n",
		"global_defs {\n notification_email {\n a@b.c\n }\n smtp_server 192.0.2.9\n}\n",
		"virtual_server fwmark 1 {\n ip_family inet6\n real_server 2001:db8::1 80 {\n  HTTP_GET {\n   url {\n    path /x\n    status_code 200-299 404\n   }\n  }\n }\n}\n",
		"$A=1\n@x a {\n}\n\"q\" { } }\n",
		"virtual_server 192.0.2.1 0 {\n persistence_timeout\n sorry_server 192.0.2.2 80\n real_server 192.0.2.2 80 {\n  MISC_CHECK {\n   misc_path \"/bin/x 'a b'\"\n  }\n }\n}\n",
		"track_file t {\n file /run/w\n weight -3 reverse\n}\nvirtual_server 192.0.2.1 80 {\n real_server 192.0.2.2 80 {\n  FILE_CHECK {\n   track_file t\n   weight 70000 noreverse\n   dynamic\n  }\n  MISC_CHECK {\n   misc_path /bin/w\n   misc_dynamic\n  }\n }\n}\n",
		"include *.conf\n",
	} {
		f.Add(s)
	}
	fuzzImport(f, func(s string) (*Result, error) {
		return importKeepalived("k.conf", []byte(s), mapSource{"k.conf": s, "a.conf": "include k.conf\n"}, Options{ConfigID: "x"})
	})
}

// FuzzLdirectord is FuzzKeepalived for ldirectord.cf.
func FuzzLdirectord(f *testing.F) {
	for _, s := range []string{
		"checktimeout=3\nvirtual=192.0.2.1:80\n\treal=10.0.0.1:80 gate\n\tservice=http\n\trequest=\"x\"\n\treceive=\"y\"\n",
		"fallback=127.0.0.1:80\nvirtual=5\n\treal=10.0.0.1->10.0.0.9:8080 masq 3 \"a\",\"b\" l:1 u:2\n\tprotocol=fwm\n",
		"emailalert=a@b.c\nemailalertstatus=none\nvirtual6=[2001:db8::1]:53\n\treal6=[2001:db8::2]:53 gate\n\tchecktype=4\n",
		"virtual=192.0.2.1:25\n    real=10.0.0.1:25 gate\n    checktype=external-perl\n    checkcommand=/x.pl\n\nquiescent=yes\n",
	} {
		f.Add(s)
	}
	fuzzImport(f, func(s string) (*Result, error) {
		return Ldirectord("l.cf", []byte(s))
	})
}

// fuzzImport runs an importer on fuzzed files: an input is imported or
// refused with an *Error, never a panic or a hang, and what is imported
// validates.
func fuzzImport(f *testing.F, imp func(s string) (*Result, error)) {
	f.Fuzz(func(t *testing.T, s string) {
		r, err := imp(s)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("not an *Error: %v", err)
			}
			return
		}
		if _, err := config.Parse("again", r.YAML); err != nil {
			t.Fatalf("the output does not validate: %v", err)
		}
	})
}
