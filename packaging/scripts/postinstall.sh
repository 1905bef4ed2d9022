#!/bin/sh
# Runs after install and upgrade (deb: "configure" [old-version]; rpm: $1 =
# number of installed versions, 1 on install, 2 or more on upgrade).
# The service is neither enabled nor started: the shipped configuration
# names an example VIP, and a wrong VIP on a live node is worse than none.
set -e

systemd_running() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }

upgrade=no
case "$1" in
configure) [ -n "$2" ] && upgrade=yes ;;
[2-9] | [1-9][0-9]*) upgrade=yes ;;
esac

if command -v systemd-tmpfiles >/dev/null 2>&1; then
	# The FIFO for keepalived, owned by the service user.
	systemd-tmpfiles --create havip-agent.conf || true
fi
if systemd_running; then
	systemctl daemon-reload || true
	if [ "$upgrade" = yes ]; then
		# Restarts only an agent that is running, with the new binary.
		systemctl try-restart havip-agent.service || true
	fi
fi

if [ "$upgrade" = no ]; then
	cat <<'MSG'
havip-agent installed. Edit /etc/havip-agent/havip-agent.toml and, for the
cloud side, copy credentials.toml.example to credentials.toml (keep it 0600
and owned by havip-agent); check both with
  havip-agent config check -cloud -keepalived /etc/keepalived/keepalived.conf
then: systemctl enable --now havip-agent
keepalived examples: /usr/share/doc/havip-agent/examples/keepalived/
MSG
fi
exit 0
