complete -c drift-check -l metrics-dir -d 'Write one Prometheus textfile per checked repo, driftless-REPO.prom, into DIR, and remove those of repos no longer configured [default: the config\'s metrics_dir]' -r -F
complete -c drift-check -l compose-command -d 'The compose command [default: from the config, else `docker compose`]' -r
complete -c drift-check -l rclone -d 'The rclone program, for --deep on a remote mirror' -r
complete -c drift-check -l config -d 'Config file [default: /etc/driftless/driftless.yaml; it may be absent]' -r -F
complete -c drift-check -l state-dir -d 'State directory [default: $STATE_DIRECTORY, the config\'s state_dir, or /var/lib/driftless]' -r -F
complete -c drift-check -l no-fetch -d 'Use the last fetched refs instead of asking the remote'
complete -c drift-check -l deep -d 'Also compare the mirror\'s content (file list and sizes, or `rclone check --one-way`)'
complete -c drift-check -l all-items -d 'List every check in the table, not only what drifted'
complete -c drift-check -s n -l dry-run -d 'Say what would change, change nothing'
complete -c drift-check -l json -d 'Print one JSON record per repo on stdout instead of the summary'
complete -c drift-check -l print-config -d 'Print the effective config (the file with every default filled in) as YAML, and exit'
complete -c drift-check -s v -l verbose -d 'Every item on stdout, and more log detail on stderr (-v info, -vv debug, -vvv trace); DRIFTLESS_LOG overrides the log level'
complete -c drift-check -s q -l quiet -d 'Only failures and refusals on stdout (nothing on success, so cron mails only on trouble), and only errors on stderr'
complete -c drift-check -s h -l help -d 'Print help'
complete -c drift-check -s V -l version -d 'Print version'
