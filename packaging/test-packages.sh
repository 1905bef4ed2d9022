#!/bin/sh
# Inspects the packages packaging/build.sh left in dist/: file lists,
# modes, conffiles, metadata and scripts; then unpacks the .deb into a
# scratch directory and runs the binary against the shipped configuration.
# Needs dpkg-deb; checks the .rpm too when rpm is installed.
set -eu

cd "$(dirname "$0")/.."

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

deb=$(ls dist/havip-agent_*.deb 2>/dev/null | tail -n 1)
[ -n "$deb" ] || fail "no .deb in dist/ (run packaging/build.sh)"
echo "== $deb"
dpkg-deb -I "$deb"
list=$(dpkg-deb -c "$deb")
echo "$list"

for want in \
	'-rwxr-xr-x root/root .* ./usr/bin/havip-agent$' \
	'-rw-r--r-- root/root .* ./usr/lib/systemd/system/havip-agent.service$' \
	'-rw-r--r-- root/root .* ./etc/havip-agent/havip-agent.toml$' \
	'drwx------ havip-agent/havip-agent .* ./var/lib/havip-agent/$' \
	'-rw------- havip-agent/havip-agent .* ./etc/havip-agent/credentials.toml.example$' \
	'-rw-r--r-- root/root .* ./usr/lib/tmpfiles.d/havip-agent.conf$' \
	'./usr/share/doc/havip-agent/examples/keepalived/sync-group.conf$' \
	'./usr/share/doc/havip-agent/examples/keepalived/keepalived-node-a.conf$' \
	'./usr/share/doc/havip-agent/examples/keepalived/keepalived-vrrp2-agent-owned.conf$' \
	'./usr/share/doc/havip-agent/examples/prometheus/havip-agent.rules.yml$' \
	'./usr/share/doc/havip-agent/examples/grafana/havip-agent.json$'; do
	echo "$list" | grep -Eq -- "$want" || fail "$deb lacks $want"
done
echo "$list" | grep -q 'bce-emulator' && fail "$deb ships the emulator"

ctl=$(mktemp -d)
root=$(mktemp -d)
trap 'rm -rf "$ctl" "$root"' EXIT
dpkg-deb -e "$deb" "$ctl"
grep -qx '/etc/havip-agent/havip-agent.toml' "$ctl/conffiles" || fail "havip-agent.toml is not a conffile"
grep -q '^Recommends: .*keepalived' "$ctl/control" || fail "no Recommends: keepalived"
grep -qx '/etc/havip-agent/credentials.toml.example' "$ctl/conffiles" || fail "credentials.toml.example is not a conffile"
for s in preinst postinst prerm postrm; do
	[ -x "$ctl/$s" ] || fail "no $s script"
	sh -n "$ctl/$s" || fail "$s does not parse"
done
grep -q 'daemon-reload' "$ctl/postinst" || fail "postinst does not reload systemd"
grep -q 'useradd --system' "$ctl/preinst" || fail "preinst does not create the service user"
grep -Eq '^[[:space:]]*systemctl (enable|start|restart) ' "$ctl/postinst" && fail "postinst starts or enables the service"

# Run the packaged binary on the packaged configuration.
dpkg-deb -x "$deb" "$root"
"$root/usr/bin/havip-agent" version
"$root/usr/bin/havip-agent" config check -config "$root/etc/havip-agent/havip-agent.toml"
if command -v systemd-analyze >/dev/null 2>&1; then
	sed "s#/usr/bin/havip-agent#$root/usr/bin/havip-agent#" \
		"$root/usr/lib/systemd/system/havip-agent.service" >"$ctl/havip-agent.service"
	systemd-analyze verify "$ctl/havip-agent.service"
fi

rpm=$(ls dist/havip-agent-*.rpm 2>/dev/null | tail -n 1)
if [ -n "$rpm" ] && command -v rpm >/dev/null 2>&1; then
	echo "== $rpm"
	rpm -qip "$rpm"
	rlist=$(rpm -qlp "$rpm")
	echo "$rlist"
	for want in /usr/bin/havip-agent /usr/lib/systemd/system/havip-agent.service \
		/etc/havip-agent/havip-agent.toml /var/lib/havip-agent; do
		echo "$rlist" | grep -qx "$want" || fail "$rpm lacks $want"
	done
	rpm -qp --configfiles "$rpm" | grep -qx /etc/havip-agent/havip-agent.toml || fail "rpm: config file not marked"
	rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' "$rpm" | grep -q '^cn /etc/havip-agent/havip-agent.toml$' ||
		fail "rpm: havip-agent.toml is not %config(noreplace)"
	rpm -qp --recommends "$rpm" | grep -q keepalived || fail "rpm: no Recommends: keepalived"
	rpm -qp --scripts "$rpm" | grep -q daemon-reload || fail "rpm: no daemon-reload in scripts"
else
	echo "rpm not installed or no .rpm: skipping rpm checks"
fi
echo "packages OK"
