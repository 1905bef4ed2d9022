#!/bin/sh
# Runs before install and upgrade: the service user must exist before the
# package's files are given to it.
set -e
if ! getent group havip-agent >/dev/null 2>&1; then
	groupadd --system havip-agent
fi
if ! getent passwd havip-agent >/dev/null 2>&1; then
	useradd --system --gid havip-agent --home-dir /var/lib/havip-agent \
		--no-create-home --shell /usr/sbin/nologin \
		--comment "havip-agent failover agent" havip-agent
fi
exit 0
