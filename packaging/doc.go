// Package packaging holds what makes lvsmon installable the way Debian's
// daemons arrive (the systemd unit, the shipped config, the man page, the
// maintainer scripts and nfpm's recipe for `make deb` and `make rpm`) and,
// in the lab tier, the tests of the packages: the unit verified and scored
// by systemd-analyze, the packages' file lists, and the .deb installed into
// a debootstrapped Debian 12.
package packaging
