complete --keep-order --exclusive --command drift-check --arguments "(DRIFTLESS_COMPLETE=fish drift-check -- (commandline --current-process --tokenize --cut-at-cursor) (commandline --current-token))"
