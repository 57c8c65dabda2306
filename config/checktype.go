package config

// The registry of check types. config knows no check type by itself: each
// type's package (the probes, in package probe) registers its name and
// the keys it reads from an init function, and validation checks against
// what was registered. A program that validates configs with checks must
// therefore link the probes (lvsmon does; a test can import the probe
// package for its side effect).

import (
	"fmt"
	"slices"
	"sync"
)

// CheckType is what config knows of one check type.
type CheckType struct {
	// Name is the check's type: as written in the config.
	Name string
	// Keys are the type-specific keys it reads (the keys every type has
	// — type, interval, timeout, rise, fall, retries, address, port —
	// are not listed). A key of another type on a check of this one is
	// an error, because it would silently do nothing. What is validated
	// and defaulted follows the keys: a type that reads send has it
	// parsed, one that reads max_body has it bounded, and so on.
	Keys []string
	// ExpectRegexp: expect is a regular expression, compiled at load (dns
	// compares values instead).
	ExpectRegexp bool
	// NoPort: the type connects to no port (ping, external, none), so it
	// needs none on an all-ports service.
	NoPort bool
	// MaxSend bounds the bytes of send (a datagram's payload); 0: no
	// bound.
	MaxSend int
}

var checkTypes struct {
	sync.RWMutex
	byName map[string]CheckType
	names  []string // sorted
}

// RegisterCheckType makes a check type known to validation. It is called
// from init functions; registering a name twice panics.
func RegisterCheckType(t CheckType) {
	checkTypes.Lock()
	defer checkTypes.Unlock()
	if t.Name == "" {
		panic("config: a check type needs a name")
	}
	if _, dup := checkTypes.byName[t.Name]; dup {
		panic(fmt.Sprintf("config: check type %q registered twice", t.Name))
	}
	if checkTypes.byName == nil {
		checkTypes.byName = map[string]CheckType{}
	}
	t.Keys = slices.Clone(t.Keys)
	checkTypes.byName[t.Name] = t
	i, _ := slices.BinarySearch(checkTypes.names, t.Name)
	checkTypes.names = slices.Insert(checkTypes.names, i, t.Name)
}

// CheckTypes lists the registered check types, sorted.
func CheckTypes() []string {
	checkTypes.RLock()
	defer checkTypes.RUnlock()
	return slices.Clone(checkTypes.names)
}

// LookupCheckType returns the check type registered as name.
func LookupCheckType(name string) (CheckType, bool) {
	checkTypes.RLock()
	defer checkTypes.RUnlock()
	t, ok := checkTypes.byName[name]
	return t, ok
}

// CheckKeys lists, per registered check type, the type-specific keys it
// reads.
func CheckKeys() map[string][]string {
	checkTypes.RLock()
	defer checkTypes.RUnlock()
	out := make(map[string][]string, len(checkTypes.byName))
	for n, t := range checkTypes.byName {
		out[n] = slices.Clone(t.Keys)
	}
	return out
}

// reads reports whether check type t reads key.
func (t CheckType) reads(key string) bool { return slices.Contains(t.Keys, key) }
