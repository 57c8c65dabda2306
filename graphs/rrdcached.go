package graphs

/*
#cgo pkg-config: librrd
#include <stdlib.h>
#include <rrd.h>
#include <rrd_client.h>

// Each helper returns a copy of librrd's thread-local error message on
// failure, NULL on success.
static char *lvsmon_err(const char *fallback) {
	const char *e = rrd_get_error();
	return strdup(e && *e ? e : fallback);
}

static char *lvsmon_rrdc_connect(const char *addr) {
	rrd_clear_error();
	if (rrdc_connect(addr) != 0) return lvsmon_err("cannot connect to rrdcached");
	return NULL;
}

static char *lvsmon_rrdc_update(const char *file, const char *value) {
	const char *vals[1] = { value };
	rrd_clear_error();
	if (rrdc_update(file, 1, vals) != 0) return lvsmon_err("rrdcached update failed");
	return NULL;
}

static char *lvsmon_rrdc_flush(const char *file) {
	rrd_clear_error();
	if (rrdc_flush(file) != 0) return lvsmon_err("rrdcached flush failed");
	return NULL;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"
)

// rrdcachedClient sends updates to rrdcached through librrd's own client
// (rrdc_*), so lvsmon speaks the daemon's protocol exactly as rrdtool
// does. librrd 1.7 keeps one process-wide daemon connection behind those
// calls, so every use is serialized by rrdcMu; for the same reason graphs
// are drawn from the files after an explicit flush rather than with
// rrd_graph's --daemon (which would share that connection unlocked).
type rrdcachedClient struct {
	addr string
}

var rrdcMu sync.Mutex

func cError(p *C.char) error {
	if p == nil {
		return nil
	}
	defer C.free(unsafe.Pointer(p))
	return errors.New(C.GoString(p))
}

func dialRrdcached(addr string) (*rrdcachedClient, error) {
	r := &rrdcachedClient{addr: addr}
	rrdcMu.Lock()
	defer rrdcMu.Unlock()
	if err := r.connect(); err != nil {
		return nil, fmt.Errorf("graphs: %w", err)
	}
	return r, nil
}

// connect (re)connects; librrd keeps the connection if it is to the same
// address already. Called with rrdcMu held.
func (r *rrdcachedClient) connect() error {
	ca := C.CString(r.addr)
	defer C.free(unsafe.Pointer(ca))
	if err := cError(C.lvsmon_rrdc_connect(ca)); err != nil {
		return fmt.Errorf("rrdcached %s: %w", r.addr, err)
	}
	return nil
}

// update sends one update line for file.
func (r *rrdcachedClient) update(file, value string) error {
	cf, cv := C.CString(file), C.CString(value)
	defer C.free(unsafe.Pointer(cf))
	defer C.free(unsafe.Pointer(cv))
	rrdcMu.Lock()
	defer rrdcMu.Unlock()
	if C.rrdc_is_connected(nil) == 0 {
		if err := r.connect(); err != nil {
			return err
		}
	}
	if err := cError(C.lvsmon_rrdc_update(cf, cv)); err != nil {
		return fmt.Errorf("rrdcached %s: %w", r.addr, err)
	}
	return nil
}

// flush makes rrdcached write a file's pending updates, so that a read of
// the file itself (graph, fetch) sees them.
func (r *rrdcachedClient) flush(file string) error {
	cf := C.CString(file)
	defer C.free(unsafe.Pointer(cf))
	rrdcMu.Lock()
	defer rrdcMu.Unlock()
	if C.rrdc_is_connected(nil) == 0 {
		if err := r.connect(); err != nil {
			return err
		}
	}
	if err := cError(C.lvsmon_rrdc_flush(cf)); err != nil {
		return fmt.Errorf("rrdcached %s: flush %s: %w", r.addr, file, err)
	}
	return nil
}

func (r *rrdcachedClient) close() error {
	rrdcMu.Lock()
	defer rrdcMu.Unlock()
	C.rrdc_disconnect()
	return nil
}
