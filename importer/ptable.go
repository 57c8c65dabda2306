package importer

// piranhaRules is piranha's lvs.cf mapping table (piranha 0.5's code:
// lvsconfig.c reads the file, lvs.c runs ipvsadm and a nanny per real
// server, nanny.c checks).
var piranhaRules = []Rule{
	{"service", Mapped, "", "lvs: the virtual servers are imported; fos (failover services) is not supported"},
	{"network", Mapped, "forward", "nat, direct, tunnel become nat, dr, tun for every real server; default nat, as piranha"},
	{"pulse", Unsupported, "", "primary, backup, backup_active, heartbeat, heartbeat_port, keepalive, deadtime, nat_router, nat_nmask: pulse's heartbeat and takeover of the VIPs and NAT router address between the two routers; lvsmon does no router failover (keep pulse for it, or move to keepalived's VRRP, which lvsmon reads)"},
	{"rsh_command, sync", Unsupported, "", "lvsmon copies no files between the routers and runs nothing over rsh"},
	{"debug_level, ipvsadm", Ignored, "", "piranha's logging and its ipvsadm path: lvsmon writes IPVS over netlink and logs to the journal"},
	{"later", Unsupported, "", "a directive of a later piranha (RHEL 4-6) whose code the import does not have: its meaning is not guessed, check by hand what the service does without it"},
	{"failover", Unsupported, "", "a failover service (start_cmd, stop_cmd on the routers themselves): lvsmon runs no failover services"},
	{"virtual", Mapped, "virtual_services[]", "active = 0 leaves it out, as lvs does"},
	{"active", Mapped, "", "0 leaves the virtual or server out, as lvs adds no nanny for it"},
	{"address", Mapped, "address", "an IPv4 address; the device after a virtual's address is pulse's (it brings the VIP up): left out. Host names are not resolved: write addresses"},
	{"vip_nmask", Ignored, "", "the VIP's netmask on its device: pulse's"},
	{"port", Mapped, "port", "default 80; a common service name (http, smtp, ...) becomes its number"},
	{"protocol", Mapped, "protocol", "default tcp"},
	{"scheduler", Mapped, "scheduler", "default wlc, as piranha"},
	{"persistent", Mapped, "persistence", "seconds; 0 or none: no persistence"},
	{"pmask", Mapped, "persistence_netmask", "with persistent only"},
	{"timeout", Mapped, "check.interval, check.timeout", "nanny checks every timeout seconds and waits as long for a connection and a reply (default 10); one failure removes the server (on_failure: remove, fall 1), as nanny runs ipvsadm -d"},
	{"reentry", Mapped, "check.rise", "reentry/timeout passing checks before a removed server is added back (default 180, so 18)"},
	{"send", Mapped, "check.send", "simpletcp: sent after the connect (\\n, \\r, \\t and \\-escapes decoded); without send and expect a tcp connect check"},
	{"expect", Mapped, "check.expect", "the reply must start with it (nanny compares its first read with expect's length): ^ and the text quoted; * is any reply"},
	{"load_monitor", Unsupported, "", "uptime (the default), rup, ruptime: nanny scales each server's weight by its load read over rsh; lvsmon keeps the configured weights (none: the same)"},
	{"client_monitor, master, dirs, start_cmd, stop_cmd", Unsupported, "", "another monitor program than nanny, the routers' file mirroring, a failover service's commands: lvsmon has none of them"},
	{"server", Mapped, "real_servers[]", "at the virtual's port; active = 0 leaves it out"},
	{"weight", Mapped, "weight", "default 1"},
}
