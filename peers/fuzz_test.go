package peers

import (
	"encoding/json"
	"testing"
)

// FuzzStatusPage feeds a peer's status page, whatever it holds, to the
// decoding and the comparison: nothing a peer answers may panic lvsmon.
func FuzzStatusPage(f *testing.F) {
	for _, p := range pages {
		f.Add([]byte(p))
	}
	f.Add([]byte(`{"virtual_services":[{"id":"x","configured":true,"in_kernel":true,"real_servers":[{"id":"y","configured":true,"in_kernel":true}]}]}`))
	f.Add([]byte(`{"role":{"instances":[{"vips":[{}]}]},"virtual_services":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var pg statusPage
		if json.Unmarshal(b, &pg) != nil {
			return
		}
		r := &Remote{Side: Side{Config: map[string]*Service{}, Kernel: map[string]*Service{}}}
		r.add(&pg)
		r.add(&pg) // a second page with the same services
		for _, d := range Compare(side(nil), r.Side) {
			if d.Table == "" || d.Kind == "" || d.Service == "" || (d.Kind == KindWeight || d.Kind == KindRealServer) && d.Server == "" {
				t.Fatalf("drift %+v", d)
			}
		}
	})
}
