complete -c driftless-notify -l lines -d 'How many journal lines to include' -r -f
complete -c driftless-notify -l exit-status -d 'UNIT\'s exit status (a number, or the signal that killed it); systemd passes it to the handler. With it (or --result) the alert policy applies; without, a report is always sent' -r -f
complete -c driftless-notify -l result -d 'UNIT\'s result as systemd names it: exit-code, timeout, signal, core-dump...' -r -f
complete -c driftless-notify -l invocation -d 'The failed run\'s invocation ID: only its journal lines are sent' -r -f
complete -c driftless-notify -l config -d 'Config file [default: /etc/driftless/driftless.yaml; it may be absent]' -r -F
complete -c driftless-notify -l state-dir -d 'State directory [default: $STATE_DIRECTORY, the config\'s state_dir, or /var/lib/driftless]' -r -F
complete -c driftless-notify -l user -d 'The unit belongs to the calling user\'s manager (`systemctl --user`): read its journal with `journalctl --user-unit`'
complete -c driftless-notify -l resolved -d 'UNIT succeeded (`OnSuccess=`): end its failure streak, and post "recovered" if a failure was alerted'
complete -c driftless-notify -s n -l dry-run -d 'Say what would change, change nothing'
complete -c driftless-notify -l json -d 'Print one JSON record per repo on stdout instead of the summary'
complete -c driftless-notify -l print-config -d 'Print the effective config (the file with every default filled in) as YAML, and exit'
complete -c driftless-notify -s v -l verbose -d 'Every item on stdout, and more log detail on stderr (-v info, -vv debug, -vvv trace); DRIFTLESS_LOG overrides the log level'
complete -c driftless-notify -s q -l quiet -d 'Only failures and refusals on stdout (nothing on success, so cron mails only on trouble), and only errors on stderr'
complete -c driftless-notify -s h -l help -d 'Print help'
complete -c driftless-notify -s V -l version -d 'Print version'
