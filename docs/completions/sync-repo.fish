complete -c sync-repo -s j -l jobs -d 'With --all, how many repos to sync at once [default: number of cores]' -r -f
complete -c sync-repo -l wait-lock -d 'Wait up to SECONDS for another run on the same repo instead of exiting with 75' -r -f
complete -c sync-repo -l remote -d 'Fetch from URL instead of the config\'s remote or the checkout\'s origin' -r -f
complete -c sync-repo -l branch -d 'Follow BRANCH instead of the config\'s branch (default: main)' -r -f
complete -c sync-repo -l config -d 'Config file [default: /etc/driftless/driftless.yaml; it may be absent]' -r -F
complete -c sync-repo -l state-dir -d 'State directory [default: $STATE_DIRECTORY, the config\'s state_dir, or /var/lib/driftless]' -r -F
complete -c sync-repo -l all -d 'Sync every repo in the config'
complete -c sync-repo -l force -d 'Take the remote state even when refused, after preserving local commits and changes under refs/driftless/preserved/<time>'
complete -c sync-repo -l recurse-submodules -d 'Also check out the new commit in populated submodules whose recorded commit moved (detached, recursively), as `git pull --recurse-submodules` does; the config\'s `submodules: recurse` does the same for a repo on every run'
complete -c sync-repo -s n -l dry-run -d 'Say what would change, change nothing'
complete -c sync-repo -l json -d 'Print one JSON record per repo on stdout instead of the summary'
complete -c sync-repo -l print-config -d 'Print the effective config (the file with every default filled in) as YAML, and exit'
complete -c sync-repo -s v -l verbose -d 'Every item on stdout, and more log detail on stderr (-v info, -vv debug, -vvv trace); DRIFTLESS_LOG overrides the log level'
complete -c sync-repo -s q -l quiet -d 'Only failures and refusals on stdout (nothing on success, so cron mails only on trouble), and only errors on stderr'
complete -c sync-repo -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sync-repo -s V -l version -d 'Print version'
