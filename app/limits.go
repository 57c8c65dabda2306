package app

import (
	"log/slog"
	"syscall"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/web"
)

// The web port's share of the file descriptors. What is not the web's is
// the health checks' (a socket per check in flight), the RRD files, the
// event log, the role sources and rrdcached: fdReserve, or a quarter of
// the limit if that is more, stays theirs, and the web port gets at most
// half of the rest, so that even a port at its cap leaves room. The cap
// is then min(web.max_connections, (soft limit - reserve) / 2), and never
// below minWebConns.
const (
	fdReserve   = 1024
	minWebConns = 16
)

// raiseNofile makes RLIMIT_NOFILE's soft limit its hard limit and returns
// the soft limit in force. Go's runtime already does this at start on
// Linux (and gives child processes, such as external checks, the
// original limit back); this only acts when that did not happen, and
// says what the process has.
func raiseNofile(log *slog.Logger) uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		log.Warn("reading RLIMIT_NOFILE failed; assuming 1024 open files", "err", err)
		return 1024
	}
	if lim.Cur < lim.Max {
		before := lim.Cur
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			log.Warn("raising the open file limit to its hard limit failed", "soft", before, "hard", lim.Max, "err", err)
			lim.Cur = before
		} else {
			log.Info("raised the open file limit to its hard limit", "from", before, "to", lim.Cur)
		}
	}
	return lim.Cur
}

// webConnCap derives the web port's connection cap from the configured
// one and the soft open file limit (see fdReserve).
func webConnCap(configured int, soft uint64) int {
	reserve := max(uint64(fdReserve), soft/4)
	room := 0
	if soft > reserve {
		room = int(min((soft-reserve)/2, 1<<30))
	}
	return max(min(configured, room), minWebConns)
}

// webLimits are the web's limits for cfg under the open file limit soft,
// logged.
func webLimits(cfg *config.Config, soft uint64, log *slog.Logger) web.Limits {
	lim := web.Limits{
		MaxConnections: webConnCap(cfg.Web.MaxConnections, soft),
		MaxConcurrent:  cfg.Web.MaxConcurrentRequests,
		IdleTimeout:    cfg.Web.IdleTimeout.D(),
	}
	if lim.MaxConnections < cfg.Web.MaxConnections {
		log.Warn("web.max_connections lowered to keep file descriptors for the health checks; raise the hard open file limit (LimitNOFILE=) to allow more",
			"configured", cfg.Web.MaxConnections, "cap", lim.MaxConnections, "open_file_limit", soft)
	}
	log.Info("web limits", "max_connections", lim.MaxConnections, "max_concurrent_requests", lim.MaxConcurrent,
		"idle_timeout", lim.IdleTimeout, "open_file_limit", soft, "graph_cache_mb", cfg.Web.GraphCacheMB)
	return lim
}
