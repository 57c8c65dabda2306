// Package sidebyside holds no code: its tests run Debian's keepalived and
// ldirectord and lvsmon's import of the same config through the same
// failures, and compare the IPVS tables they leave.
package sidebyside
