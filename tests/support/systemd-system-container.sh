#!/bin/sh
# A real systemd *system* manager (PID 1 of its own PID namespace) for unit tests, via
# systemd-nspawn (Debian package systemd-container). Validated by hand on this machine
# (Debian 12, systemd 252, PID 1 not systemd, cgroup v1 hybrid).
#
#   systemd-system-container.sh start DIR [EXTRA_NSPAWN_ARGS...]   boot; return once running
#   systemd-system-container.sh run   DIR CMD [ARGS...]            CMD inside (systemctl, journalctl)
#   systemd-system-container.sh leader DIR                         host PID of the container's systemd
#   systemd-system-container.sh stop  DIR                          poweroff, rmdir cgroups
#
# DIR (absolute, must not exist or be empty) holds: units/ = the container's /etc/systemd/system
# (write unit files there, then `run DIR systemctl daemon-reload`), console.log, nspawn.pid, cgroups.
# Other files go in through /proc/$(leader DIR)/root/PATH; they land in the overlay's tmpfs.
#
# Safety, all checked before systemd starts:
# - root file system = overlayfs (lower: host /, upper: tmpfs) in a private mount namespace:
#   nothing the container writes reaches the host, except what EXTRA_NSPAWN_ARGS --bind=... in;
# - host /etc/systemd/system is hidden (DIR/units over it): none of the host's enabled units
#   (docker, ssh, postgres, apt timers...) can start; boot goes to test-boot.target = basic.target;
# - /run is a private tmpfs for nspawn's own state (it would otherwise mkdir /run/systemd/nspawn-root);
# - HAZARD: never start systemd from the root cgroup. The booting shell moves into a fresh
#   sub-cgroup sysmode-PID in every hierarchy systemd manages (name=systemd and unified, or the
#   single v2 one) and verifies it; nspawn then gives the container a cgroup namespace rooted there;
# - --private-network (loopback only), new PID/UTS/IPC namespaces, nspawn's capability drop,
#   read-only /sys and /proc/sys (so udevd and sysctl cannot act on the host).
set -eu

die() { echo "systemd-system-container: $*" >&2; exit 1; }
SELF=$(readlink -f "$0")
MODE=${1:-}; DIR=${2:-}
[ -n "$MODE" ] && [ -n "$DIR" ] || die "usage: $0 start|run|leader|stop DIR [...]"
case $DIR in /*) ;; *) die "DIR must be absolute" ;; esac
shift 2

nspawn_pid() {
  p=$(cat "$DIR/nspawn.pid" 2>/dev/null) || return 1
  [ "$(cat /proc/"$p"/comm 2>/dev/null)" = systemd-nspawn ] || return 1
  echo "$p"
}
leader() {
  p=$(nspawn_pid) || return 1
  for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do
    [ "$(cat /proc/"$c"/comm 2>/dev/null)" = systemd ] && { echo "$c"; return 0; }
  done
  return 1
}

case $MODE in
start)
  [ "$(id -u)" = 0 ] || die "needs root"
  command -v systemd-nspawn >/dev/null || die "systemd-nspawn missing: apt-get install --no-install-recommends systemd-container"
  [ ! -e "$DIR" ] || [ -z "$(ls -A "$DIR")" ] || die "$DIR is not empty"
  mkdir -p "$DIR/units" "$DIR/rw" "$DIR/root"
  cat > "$DIR/units/test-boot.target" <<'EOF'
[Unit]
Description=Test boot: basic.target and nothing else
Requires=basic.target
After=basic.target
AllowIsolate=yes
EOF
  # setsid: own session, no controlling tty; unshare: the private mount namespace `boot` needs.
  setsid unshare --mount --propagation private "$SELF" boot "$DIR" "$@" \
    </dev/null >"$DIR/console.log" 2>&1 &
  echo $! > "$DIR/nspawn.pid"   # unshare and boot exec in place: this becomes nspawn's PID
  # Ready = `systemctl is-system-running` says running (or degraded): boot job queue is empty.
  i=0
  while [ $i -lt 300 ]; do
    if L=$(leader) && [ -S /proc/"$L"/root/run/systemd/private ]; then
      s=$(nsenter -t "$L" -a systemctl is-system-running 2>/dev/null || true)
      case $s in running|degraded) echo "$L"; exit 0 ;; esac
    fi
    kill -0 "$(cat "$DIR/nspawn.pid")" 2>/dev/null || { cat "$DIR/console.log" >&2; die "nspawn exited"; }
    sleep 0.1; i=$((i + 1))
  done
  die "manager not running after 30 s (state: ${s:-none}); see $DIR/console.log"
  ;;
boot)
  # Internal: runs as `unshare --mount --propagation private $0 boot DIR ...`.
  [ "$(readlink /proc/self/ns/mnt)" != "$(readlink /proc/1/ns/mnt)" ] || die "not in a private mount namespace"
  CG=sysmode-$$
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then HIER=/sys/fs/cgroup      # pure cgroup v2
  else HIER="/sys/fs/cgroup/systemd /sys/fs/cgroup/unified"; fi             # v1 hybrid
  : > "$DIR/cgroups"
  for h in $HIER; do
    [ -d "$h" ] || continue
    mkdir "$h/$CG"; echo "$h/$CG" >> "$DIR/cgroups"
    echo $$ > "$h/$CG/cgroup.procs"
  done
  # Verify: in name=systemd and in the v2 hierarchy we are in $CG, not in the root cgroup.
  grep -E '^[0-9]+:(name=systemd)?:' /proc/self/cgroup | grep -qv ":/$CG\$" \
    && die "still outside $CG: $(cat /proc/self/cgroup | tr '\n' ' ')"
  mount -t tmpfs -o mode=0755 tmpfs "$DIR/rw"
  mkdir "$DIR/rw/upper" "$DIR/rw/work"
  mount -t overlay overlay -o "lowerdir=/,upperdir=$DIR/rw/upper,workdir=$DIR/rw/work" "$DIR/root"
  mount -t tmpfs -o mode=0755 tmpfs /run
  # --keep-unit + --register=no: no host systemd/machined needed; nspawn makes payload/ and
  # supervisor/ below $CG and a cgroup namespace for the container.
  exec systemd-nspawn --quiet --directory="$DIR/root" --boot --register=no --keep-unit \
    --private-network --console=read-only \
    --bind="$DIR/units:/etc/systemd/system" "$@" \
    -- --unit=test-boot.target
  ;;
leader)
  leader || die "no running container in $DIR"
  ;;
run)
  L=$(leader) || die "no running container in $DIR"
  exec nsenter -t "$L" -a "$@"
  ;;
stop)
  if P=$(nspawn_pid); then
    kill -TERM "$P"    # nspawn turns SIGTERM into a clean poweroff of the container
    i=0; while [ -d /proc/"$P" ] && [ $i -lt 150 ]; do sleep 0.1; i=$((i + 1)); done
    # Last resort: killing nspawn kills the container's PID 1, so the kernel kills the rest.
    [ -d /proc/"$P" ] && kill -KILL "$P" && sleep 0.5
  fi
  # Remove the cgroups depth-first (nspawn leaves payload/, payload/init.scope, supervisor/).
  if [ -f "$DIR/cgroups" ]; then
    while read -r cg; do
      case $cg in /sys/fs/cgroup/*/sysmode-*|/sys/fs/cgroup/sysmode-*) ;; *) continue ;; esac
      [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} \;
      [ ! -d "$cg" ] || die "could not remove $cg (processes left: $(find "$cg" -name cgroup.procs -exec cat {} +))"
    done < "$DIR/cgroups"
  fi
  rmdir "$DIR/rw" "$DIR/root" 2>/dev/null || true
  ;;
*) die "unknown mode $MODE" ;;
esac
