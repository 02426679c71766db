package main

import "github.com/poolsuite/poolsuite/internal/testenv"

// syncBuffer collects log output written from many goroutines.
type syncBuffer = testenv.SyncBuffer
