complete -c apply-compose -l stack -d 'Only this stack (project name or directory; repeatable)' -r -f
complete -c apply-compose -l compose-command -d 'The compose command [default: from the config, else `docker compose`]' -r
complete -c apply-compose -l wait-lock -d 'Wait up to SECONDS for another run on the same repo instead of exiting with 75' -r -f
complete -c apply-compose -l config -d 'Config file [default: /etc/driftless/driftless.yaml; it may be absent]' -r -F
complete -c apply-compose -l state-dir -d 'State directory [default: $STATE_DIRECTORY, the config\'s state_dir, or /var/lib/driftless]' -r -F
complete -c apply-compose -l validate -d 'Check the stacks and change nothing, for the config repo\'s CI and pre-commit hook: each model parses, every input exists inside the repo, project names are unique, `compose config` passes (when compose is installed), `validate.max_depth` holds. Prints `FILE:LINE: message` per problem and a count; exits 1 on any problem. Without REPO|PATH: the configured repos, or the current directory when none has stacks. Needs no state directory, root or engine'
complete -c apply-compose -l all -d 'Apply the stacks of every configured repo'
complete -c apply-compose -l force -d 'Apply even stacks whose inputs did not change'
complete -c apply-compose -l recreate -d 'Re-create the containers of the stacks applied (`up --force-recreate`), as drift-check suggests for containers started by hand from other files or another directory; implies --force'
complete -c apply-compose -l allow-dirty -d 'Apply stacks whose tracked inputs are modified in the checkout (one-off manual runs)'
complete -c apply-compose -s n -l dry-run -d 'Say what would change, change nothing'
complete -c apply-compose -l json -d 'Print one JSON record per repo on stdout instead of the summary'
complete -c apply-compose -l print-config -d 'Print the effective config (the file with every default filled in) as YAML, and exit'
complete -c apply-compose -s v -l verbose -d 'Every item on stdout, and more log detail on stderr (-v info, -vv debug, -vvv trace); DRIFTLESS_LOG overrides the log level'
complete -c apply-compose -s q -l quiet -d 'Only failures and refusals on stdout (nothing on success, so cron mails only on trouble), and only errors on stderr'
complete -c apply-compose -s h -l help -d 'Print help (see more with \'--help\')'
complete -c apply-compose -s V -l version -d 'Print version'
