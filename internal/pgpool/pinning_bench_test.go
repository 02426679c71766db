package pgpool
