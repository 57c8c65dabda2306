package config_test

// config knows no check type by itself: the probes register theirs. The
// package's tests validate configs with checks, so they link the probes.
import _ "github.com/lvsmon/lvsmon/probe"
