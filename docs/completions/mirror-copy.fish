complete --keep-order --exclusive --command mirror-copy --arguments "(DRIFTLESS_COMPLETE=fish mirror-copy -- (commandline --current-process --tokenize --cut-at-cursor) (commandline --current-token))"
