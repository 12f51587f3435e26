#!/bin/sh
# Validated by hand on this machine: starts a real `systemd --user` for user sdtest inside the
# private mount namespace this script runs in (setsid unshare --mount --propagation private).
# HAZARD: never run systemd from the root cgroup; this moves the shell into a delegated
# sub-cgroup first. Stop the manager and journald by PID, then rmdir the cgroups.
# Inside a private mount namespace: tmpfs /run, journald, delegated cgroups, then systemd --user.
set -e
U=$(id -u sdtest)
mount -t tmpfs tmpfs /run
mkdir -p /run/systemd/system /run/systemd/journal
# A private, persistent journal: only there does journald split a user's lines into
# user-UID.journal with an ACL that lets that user read them (volatile storage keeps one file
# that only root and systemd-journal may read), so the notifier's journalctl sees its unit.
mount -t tmpfs tmpfs /var/log
mkdir -p /var/log/journal
/lib/systemd/systemd-journald &
JOURNALD=$!
i=0; while [ ! -S /run/systemd/journal/socket ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
# What `journalctl --flush` does at boot: from now on, write to /var/log/journal.
kill -USR1 $JOURNALD
for h in systemd unified; do
  d=/sys/fs/cgroup/$h/user.slice/user-$U.slice/user@$U.service
  mkdir -p $d; chown -R sdtest: $d; echo $$ > $d/cgroup.procs
done
mkdir -m700 -p /run/user/$U; chown sdtest: /run/user/$U
exec setpriv --reuid=sdtest --regid=sdtest --init-groups env -i HOME=/home/sdtest XDG_RUNTIME_DIR=/run/user/$U PATH=/usr/local/bin:/usr/bin:/bin /lib/systemd/systemd --user
