#!/bin/sh
# Runs before removal (deb: "remove" or "upgrade"; rpm: $1 = 0 on erase,
# 1 on upgrade). Stops and disables the agent only when the package goes
# away, not on upgrade.
set -e

case "$1" in
remove | 0)
	if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
		systemctl disable --now havip-agent.service || true
	fi
	;;
esac
exit 0
