package importer

import (
	"fmt"
	"strings"
)

// Rule is one row of a mapping table: a source directive, what usually
// becomes of it, the lvsmon setting it maps to and why. The importers
// report from these rows and the README's tables are generated from
// them, so the two cannot drift (a test compares them).
type Rule struct {
	Directive string
	Status    Status
	Maps      string
	Note      string
}

// Rules returns the mapping table of a format.
func Rules(format string) []Rule {
	switch format {
	case FormatKeepalived:
		return keepalivedRules
	case FormatLdirectord:
		return ldirectordRules
	case FormatPiranha:
		return piranhaRules
	}
	return nil
}

// MarkdownTable is the mapping table of a format as the README shows it.
func MarkdownTable(format string) string {
	var b strings.Builder
	b.WriteString("| directive | usually | lvsmon | note |\n|---|---|---|---|\n")
	for _, r := range Rules(format) {
		maps := r.Maps
		if maps != "" {
			maps = "`" + strings.ReplaceAll(maps, ", ", "`, `") + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", r.Directive, r.Status, maps, strings.ReplaceAll(r.Note, "|", `\|`))
	}
	return b.String()
}

const (
	noScripts = "lvsmon runs no notify scripts: the change is an event (log, /api/v1/events, mail)"
	inBlock   = "a block: its directives are reported one by one"
)

var keepalivedRules = []Rule{
	{"include", Mapped, "", "the files it names (a glob, relative to the including file) are read in its place"},
	{"@id", Ignored, "", "a line for another keepalived -i id than the one imported (--config-id); keepalived would skip it too"},
	{"$NAME=value", Mapped, "", "a parameter: substituted where $NAME or ${NAME} is used"},
	{"global_defs", Mapped, "", inBlock},
	{"notification_email", Mapped, "alerting.to", "each mail address becomes a recipient; a bare name (root) that keepalived hands to its relay is not a mail address lvsmon can send to, and is reported"},
	{"notification_email_from", Mapped, "alerting.from", ""},
	{"smtp_server", Mapped, "alerting.smtp.host, alerting.smtp.port", "with tls: none, the plain SMTP keepalived speaks (lvsmon can also do STARTTLS and AUTH)"},
	{"smtp_connect_timeout", Mapped, "alerting.smtp.timeout", ""},
	{"smtp_helo_name", Mapped, "alerting.smtp.helo", ""},
	{"router_id", Mapped, "director", "the name in mail subjects, the UI and metrics"},
	{"smtp_alert", Changed, "alerting", "lvsmon mails about every service once alerting is set (alerting.services and kinds narrow it), grouped and rate-limited rather than one mail per event"},
	{"vrrp_notify_fifo", Mapped, "ha.keepalived.notify_fifo", "role changes reach lvsmon at once"},
	{"global_defs.*", Ignored, "", "keepalived's own process settings (VRRP, scripts, namespaces, SNMP, D-Bus): keepalived keeps them"},
	{"lvs_sync_daemon", Unsupported, "", "lvsmon runs no IPVS sync daemon; start it with ipvsadm --start-daemon"},
	{"lvs_timeouts", Unsupported, "", "lvsmon sets no IPVS connection timeouts; set them with ipvsadm --set"},
	{"lvs_flush", Unsupported, "", "lvsmon never flushes the IPVS table; it removes what it manages and leaves the rest"},
	{"vrrp_instance", Mapped, "ha.keepalived", "keepalived keeps running VRRP; lvsmon reads each instance's role from keepalived's JSON dump and notify FIFO, and shows it and acts on it (ha.act_only_on)"},
	{"vrrp_sync_group", Ignored, "", "VRRP: stays with keepalived"},
	{"vrrp_script", Ignored, "", "VRRP: stays with keepalived"},
	{"vrrp_track_file", Ignored, "", "VRRP: stays with keepalived (a track_file no FILE_CHECK names)"},
	{"track_file", Mapped, "check.file, check.weight, check.reverse", "a track_file (or vrrp_track_file) that a FILE_CHECK names: its file, weight (default 1) and reverse go into that file check; a vrrp_instance's use of it stays with keepalived"},
	{"track_file.init_file", Unsupported, "", "lvsmon does not create or write the file: until it exists the file check is inconclusive (it changes nothing)"},
	{"static_ipaddress", Ignored, "", "addresses keepalived sets up: stays with keepalived"},
	{"static_routes", Ignored, "", "routes keepalived sets up: stays with keepalived"},
	{"static_rules", Ignored, "", "rules keepalived sets up: stays with keepalived"},
	{"SSL", Unsupported, "", "lvsmon's https check presents no client certificate; it verifies the server only with tls_verify"},
	{"virtual_server_group", Changed, "virtual_services[]", "each member (address and port, range, fwmark) becomes a service of its own with the group's real servers; keepalived checks each real server once for the whole group, lvsmon once per service"},
	{"virtual_server", Mapped, "virtual_services[]", "an address and port, a fwmark, or a group"},
	{"ip_family", Mapped, "family", ""},
	{"snmp_name", Mapped, "name", ""},
	{"lb_algo", Mapped, "scheduler", "keepalived's default, wlc, is lvsmon's"},
	{"lvs_sched", Mapped, "scheduler", "keepalived's default, wlc, is lvsmon's"},
	{"lb_kind", Mapped, "forward", "NAT, DR, TUN become nat, dr, tun; without it keepalived uses NAT, and so does the import"},
	{"lvs_method", Mapped, "forward", "NAT, DR, TUN become nat, dr, tun; without it keepalived uses NAT, and so does the import"},
	{"persistence_timeout", Mapped, "persistence", "without a value 6m, as keepalived"},
	{"persistence_granularity", Mapped, "persistence_netmask", ""},
	{"persistence_engine", Unsupported, "", "lvsmon sets no persistence engine (sip)"},
	{"protocol", Mapped, "protocol", ""},
	{"ha_suspend", Changed, "ha.act_only_on: master", "keepalived stops checking while the VIP is not here; lvsmon keeps checking (warm at failover) and writes IPVS only while MASTER. It is director-wide, so it is set only when every virtual_server has ha_suspend"},
	{"alpha", Mapped, "startup: down", "a server counts as down until its first check passes"},
	{"omega", Unsupported, "", "lvsmon runs no scripts and leaves IPVS as it is when it stops"},
	{"quorum", Mapped, "quorum", ""},
	{"hysteresis", Mapped, "hysteresis", ""},
	{"quorum_up", Unsupported, "", noScripts + " (sorry_off)"},
	{"quorum_down", Unsupported, "", noScripts + " (sorry_on)"},
	{"sorry_server", Mapped, "sorry_server", "in while the live weight is below the quorum, as keepalived"},
	{"sorry_server_lvs_method", Mapped, "sorry_server.forward", ""},
	{"sorry_server_inhibit", Unsupported, "", "lvsmon adds and removes the sorry server; it does not keep it at weight 0"},
	{"inhibit_on_failure", Mapped, "on_failure: quiescent", "without it on_failure: remove, keepalived's default; lvsmon sets it per service, so real servers that differ are reported"},
	{"virtualhost", Mapped, "check.host", ""},
	{"weight", Mapped, "weight", ""},
	{"real_server", Mapped, "real_servers[]", "its checkers become the service's checks: lvsmon checks every server of a service alike, so servers whose checkers differ are reported"},
	{"uthreshold", Mapped, "upper_threshold", ""},
	{"lthreshold", Mapped, "lower_threshold", ""},
	{"notify_up", Unsupported, "", noScripts + " (server_up)"},
	{"notify_down", Unsupported, "", noScripts + " (server_down)"},
	{"scheduler flags", Unsupported, "", "ops, hashed, flag-1..3, sh-port, sh-fallback, mh-port, mh-fallback: lvsmon sets no scheduler flags"},
	{"delay_loop", Mapped, "check.interval", "default 60s"},
	{"connect_timeout", Mapped, "check.timeout", "default 5s"},
	{"retry", Changed, "check.retries", "extra attempts before a server is down (default 1, 3 for DNS_CHECK, 0 for MISC_CHECK; at most 10); lvsmon makes them at once, keepalived delay_before_retry apart"},
	{"nb_get_retry", Changed, "check.retries", "the old name of retry"},
	{"delay_before_retry", Changed, "", "lvsmon makes its retries at once"},
	{"warmup", Changed, "", "lvsmon checks from the start, without keepalived's random delay"},
	{"log_all_failures", Ignored, "", "lvsmon logs every check failure at debug level and every state change"},
	{"connect_ip", Mapped, "check.address", "left out when it is the real server's address"},
	{"connect_port", Mapped, "check.port", "left out when it is the real server's port"},
	{"bindto", Unsupported, "", "lvsmon's checks leave from the address the system chooses"},
	{"bind_port", Unsupported, "", "lvsmon's checks leave from the port the system chooses"},
	{"bind_if", Unsupported, "", "lvsmon's checks leave through the interface the system chooses"},
	{"checker fwmark", Unsupported, "", "lvsmon's checks carry no firewall mark"},
	{"HTTP_GET", Mapped, "check type http", "one http check per url; a server is up while all pass, as keepalived"},
	{"SSL_GET", Mapped, "check type https", "one https check per url, the certificate not verified, as keepalived"},
	{"url", Mapped, "check", inBlock},
	{"url.path", Mapped, "path", ""},
	{"url.status_code", Mapped, "status", "default 200-299, as keepalived"},
	{"url.digest", Unsupported, "", "lvsmon does not hash the page: the check keeps path and status, so a server whose page changed stays up"},
	{"url.virtualhost", Mapped, "host", ""},
	{"url.regex", Mapped, "expect", "a Go (RE2) regular expression; one that is not is reported"},
	{"url.regex options", Unsupported, "", "regex_no_match, regex_options, regex_stack, regex_min_offset, regex_max_offset: lvsmon searches expect in the whole body"},
	{"http_protocol", Ignored, "", "lvsmon sends HTTP/1.1 with a Host header and Connection: close"},
	{"fast_recovery", Unsupported, "", "lvsmon's rise counts checks at the interval"},
	{"enable_sni", Mapped, "sni", "the virtualhost, or sni_name"},
	{"sni_name", Mapped, "sni", ""},
	{"tls_compliant", Ignored, "", "lvsmon closes TLS properly"},
	{"TCP_CHECK", Mapped, "check type tcp", ""},
	{"SMTP_CHECK", Mapped, "check type smtp", "lvsmon reads the 220 greeting, greets with EHLO and quits"},
	{"helo_name", Mapped, "ehlo", ""},
	{"host", Mapped, "check", "an SMTP_CHECK host block: one smtp check each, with its address and port"},
	{"DNS_CHECK", Changed, "check type dns", "keepalived takes any NOERROR answer; lvsmon also needs a record of the type asked"},
	{"type", Mapped, "query_type", "default SOA, as keepalived"},
	{"name", Mapped, "query_name", "default the root, as keepalived"},
	{"UDP_CHECK", Changed, "check type udp", "without require_reply keepalived counts a server up unless an ICMP unreachable comes back; lvsmon always waits for a reply"},
	{"payload", Mapped, "send", "hex bytes, written with \\xHH escapes"},
	{"require_reply", Mapped, "expect", "bare: any reply, as lvsmon always wants; with data only printable text can be matched"},
	{"reply length", Unsupported, "", "min_reply_length, max_reply_length: lvsmon matches the reply with expect only"},
	{"PING_CHECK", Mapped, "check type ping", ""},
	{"MISC_CHECK", Changed, "check type external", "lvsmon appends VIP VPORT RIP RPORT to the command's arguments, as ldirectord does"},
	{"misc_path", Mapped, "command, args", "split into words as keepalived does, run without a shell"},
	{"misc_timeout", Mapped, "timeout", "default the delay_loop, as keepalived"},
	{"misc_dynamic", Mapped, "dynamic: true", "as keepalived: exit 0 up at the configured weight (a weight set before is undone), 1 down, 2-255 up with weight exit−2; several checks' weights add up as keepalived's do"},
	{"user", Unsupported, "", "lvsmon runs its checks as itself"},
	{"FILE_CHECK", Changed, "check type file", "read every second (keepalived: when inotify says it changed). As keepalived: the value times the weight is added to the configured weight (below 0 it is 0, the server still up), at or below −2^31 the server is down; with weight 0 a value but 0 is down (0 is, with reverse). Unlike keepalived, which reads a missing, unreadable or empty file, or text that is no number, as 0 (which can take a healthy server out or move its weight), lvsmon is inconclusive then: the last verdict and weight stand, and it says so (lvsmon_checks_inconclusive_total{reason=\"check_input\"}, the status page). lvsmon checks every server of a service alike: servers that track different files are reported"},
	{"FILE_CHECK.track_file", Mapped, "file", "the file of the track_file it names"},
	{"FILE_CHECK.weight", Mapped, "weight, reverse", "default the track_file's weight and reverse, as keepalived; lvsmon's range is −65535..65535"},
	{"FILE_CHECK.dynamic", Ignored, "", "keepalived documents it but does not read it: the file's value always changes the weight, in keepalived and in lvsmon"},
	{"BFD_CHECK", Unsupported, "", "lvsmon speaks no BFD. The server keeps its other checks"},
	{"unknown", Unsupported, "", "not a directive the importer knows here"},
}

var ldirectordRules = []Rule{
	{"virtual", Mapped, "virtual_services[]", "an address and port (port 53: udp, as ldirectord) or a fwmark"},
	{"virtual6", Mapped, "virtual_services[]", ""},
	{"real", Mapped, "real_servers[]", "gate, masq, ipip become dr, nat, tun; the weight and the l:/u: thresholds; an a->b range becomes one server each. Host names are not resolved: write addresses"},
	{"real6", Mapped, "real_servers[]", ""},
	{"real request/receive", Unsupported, "", "lvsmon checks every server of a service alike: a real server's own request and receive are dropped"},
	{"checktype", Mapped, "check.type", "negotiate (the default): by service; connect: tcp (ping on udp services); ping; external; on: none; off: no real servers, as ldirectord adds none"},
	{"checktype=N", Changed, "check.type", "ldirectord makes N connect checks, then one negotiate check; lvsmon makes the negotiate check every time"},
	{"checktype=external-perl", Changed, "check.type: external", "run as perl SCRIPT in a process of its own rather than inside ldirectord"},
	{"service", Mapped, "check.type", "http, https, ftp, smtp, submission (smtp), pop (pop3), pops (pop3s), imap, imaps, dns, sip (over the service's protocol; tcp for a fwmark service, as ldirectord), simpletcp, ldap, ldaps, radius, mysql, pgsql, none; without it, by the virtual port as ldirectord"},
	{"service unsupported", Unsupported, "check.type: tcp", "lvsmon has no such check (http_proxy, nntp, oracle): the servers get a tcp connect check (ping on udp), weaker than ldirectord's"},
	{"request", Mapped, "check.path", "http(s): the path; dns: query_name; simpletcp: send; ldap(s): base_dn; mysql, pgsql: query"},
	{"receive", Mapped, "check.expect", "a Go (RE2) regular expression; a Perl one that is not is reported"},
	{"httpmethod", Mapped, "check.method", ""},
	{"virtualhost", Mapped, "check.host", ""},
	{"checkport", Mapped, "check.port", ""},
	{"checkcommand", Mapped, "check.command", "a command with arguments is split into words"},
	{"checktimeout", Mapped, "check.timeout", "for connect, ping and external checks; default negotiatetimeout, then 5s"},
	{"negotiatetimeout", Mapped, "check.timeout", "for negotiate checks; default checktimeout, then 30s"},
	{"connecttimeout", Unsupported, "", "ldirectord itself refuses it (deprecated)"},
	{"timeout", Unsupported, "", "ldirectord itself refuses it (deprecated)"},
	{"checkinterval", Mapped, "check.interval", "default 10s; a virtual's own only with fork=yes, as ldirectord"},
	{"checkcount", Changed, "check.retries", "checkcount−1 extra attempts"},
	{"failurecount", Mapped, "check.fall", ""},
	{"login, passwd", Mapped, "check.username, check.password", "pop, pops, imap, imaps: the check logs in as ldirectord's does (the password inline; move it to a password_file)"},
	{"login (sip)", Mapped, "check.sip_uri", "sip:LOGIN, the URI ldirectord's OPTIONS asks for; without login lvsmon asks for sip:ADDRESS:PORT, the server itself (ldirectord: sip:ldirectord@its host)"},
	{"login, passwd, secret (ldap, radius)", Mapped, "check.username, check.password, check.secret", "ldap, ldaps: the bind, anonymous unless both login and passwd are set, as ldirectord; radius: the Access-Request's user and password and the shared secret (without all three ldirectord's check cannot pass, and the servers get a ping check)"},
	{"login, passwd, database (mysql, pgsql)", Mapped, "check.username, check.password, check.database", "passwd is written inline, as ldirectord.cf holds it; password_file keeps it out of the config"},
	{"login, passwd, database, secret", Changed, "", "credentials the imported check does not read (ftp reads the greeting; no check for the service): not kept"},
	{"scheduler", Mapped, "scheduler", "default wrr, as ldirectord"},
	{"persistent", Mapped, "persistence", ""},
	{"netmask", Mapped, "persistence_netmask", ""},
	{"protocol", Mapped, "protocol", "tcp, udp; fwm for fwmark services"},
	{"schedflags", Unsupported, "", "lvsmon sets no scheduler flags"},
	{"ops", Unsupported, "", "lvsmon sets no one-packet scheduling"},
	{"fallback", Mapped, "sorry_server", "in while no real server is up, as ldirectord (quorum 1)"},
	{"fallback6", Mapped, "sorry_server", ""},
	{"fallbackcommand", Unsupported, "", noScripts + " (sorry_on, sorry_off)"},
	{"quiescent", Mapped, "on_failure", "yes: quiescent, no: remove; ldirectord's default is no (its manual says yes, its code no), so is the import's"},
	{"readdquiescent", Ignored, "", "lvsmon writes the table it is configured for: a missing server is added back"},
	{"cleanstop", Changed, "", "lvsmon leaves the IPVS table as it is when it stops; ldirectord (yes, the default) deletes its services"},
	{"emailalert", Mapped, "alerting.to", "a virtual's own recipients are reported: lvsmon has one list"},
	{"emailalertfrom", Mapped, "alerting.from", ""},
	{"emailalertfreq", Mapped, "alerting.reminder", "at least 1m"},
	{"emailalertstatus", Mapped, "alerting.daemon_states", ""},
	{"smtp", Mapped, "alerting.smtp.host", "port 25, tls: none, as ldirectord speaks; without it ldirectord hands mail to the local MTA, lvsmon sends to localhost:25"},
	{"servicename", Mapped, "name", ""},
	{"comment", Ignored, "", "a note for humans"},
	{"monitorfile", Unsupported, "", "lvsmon's event log and /api/v1/events keep every state change"},
	{"load", Ignored, "", "ldirectord stores it and never uses it"},
	{"logfile", Ignored, "", "lvsmon logs to stderr (the journal) and keeps its event log"},
	{"autoreload", Changed, "", "lvsmon reloads on SIGHUP or the reload API, not when the file changes"},
	{"callback", Unsupported, "", "lvsmon runs no script when its config changes"},
	{"execute", Unsupported, "", "import the other config by itself"},
	{"supervised", Ignored, "", "lvsmon runs in the foreground under systemd"},
	{"fork", Ignored, "", "lvsmon checks every server on a timer of its own"},
	{"maintenancedir", Unsupported, "", "use lvsmon's drain and disable API (persisted overrides)"},
	{"unknown", Unsupported, "", "not a directive the importer knows here"},
}
