#!/bin/sh
# Entry point of the lvsmon container image: run lvsmon on the mounted
# config, or the demo director when there is none, so that
# `docker compose up` shows something even on a machine without IPVS.
# Arguments are flags both commands take (--web.listen-address, --data-dir,
# --log.level, --log.format, --web.telemetry-path,
# --metrics.node-exporter-compatible, or the older spellings).
set -eu
config=${LVSMON_CONFIG:-/etc/lvsmon/lvsmon.yaml}
bin=${LVSMON_BIN:-/usr/local/bin/lvsmon}
if [ -f "$config" ]; then
	exec "$bin" run --config "$config" "$@"
fi
echo "lvsmon: no config at $config; running the demo director (mount a config there to watch this host's IPVS)" >&2
exec "$bin" demo "$@"
