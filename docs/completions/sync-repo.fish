complete --keep-order --exclusive --command sync-repo --arguments "(DRIFTLESS_COMPLETE=fish sync-repo -- (commandline --current-process --tokenize --cut-at-cursor) (commandline --current-token))"
