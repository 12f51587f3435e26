complete -c mirror-copy -l to -d 'Destination: a local directory, or an rclone remote like `gdrive:Backups/lab`' -r
complete -c mirror-copy -l from -d 'What to copy: the working tree, or the tree of the committed HEAD' -r -f -a "worktree\t'The checkout\'s working tree, local files included'
commit\t'The tree of the committed HEAD: exactly what is in git'"
complete -c mirror-copy -l exclude -d 'Also exclude paths matching GLOB (repeatable; rclone filter syntax)' -r
complete -c mirror-copy -l max-delete -d 'With --delete: abort, deleting nothing, if more than N files would be deleted' -r -f
complete -c mirror-copy -l modify-window -d 'Take modification times within SECONDS of each other as equal [default: 2 on FAT, exFAT and SMB destinations, which keep coarse times, else 0]' -r
complete -c mirror-copy -l if-older-than -d 'Do nothing if the last successful mirror started less than DURATION ago (e.g. 24h), give or take a tenth of it (at most 5 min): hourly with 24h acts daily, at the same hour' -r -f
complete -c mirror-copy -l wait-lock -d 'Wait up to SECONDS for another run on the same repo instead of exiting with 75' -r -f
complete -c mirror-copy -s j -l jobs -d 'Copy threads for a local destination [default: number of cores]' -r -f
complete -c mirror-copy -l rclone -d 'The rclone program to run for remote destinations' -r
complete -c mirror-copy -l config -d 'Config file [default: /etc/driftless/driftless.yaml; it may be absent]' -r -F
complete -c mirror-copy -l state-dir -d 'State directory [default: $STATE_DIRECTORY, the config\'s state_dir, or /var/lib/driftless]' -r -F
complete -c mirror-copy -l all -d 'Mirror every repo that has a `mirror:` entry in the config'
complete -c mirror-copy -l delete -d 'Delete from the mirror what the source no longer has'
complete -c mirror-copy -l checksum -d 'Compare file content instead of size and modification time'
complete -c mirror-copy -l skip-links -d 'Leave symbolic links out instead of copying them as links'
complete -c mirror-copy -l no-perms -d 'Leave permission bits out of the up-to-date check and go on when setting them fails (the default on FAT, exFAT and SMB destinations, which have none)'
complete -c mirror-copy -s n -l dry-run -d 'Say what would change, change nothing'
complete -c mirror-copy -l json -d 'Print one JSON record per repo on stdout instead of the summary'
complete -c mirror-copy -l print-config -d 'Print the effective config (the file with every default filled in) as YAML, and exit'
complete -c mirror-copy -s v -l verbose -d 'Every item on stdout, and more log detail on stderr (-v info, -vv debug, -vvv trace); DRIFTLESS_LOG overrides the log level'
complete -c mirror-copy -s q -l quiet -d 'Only failures and refusals on stdout (nothing on success, so cron mails only on trouble), and only errors on stderr'
complete -c mirror-copy -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mirror-copy -s V -l version -d 'Print version'
