//go:build !unix

package main

// openFileLimit is unknown here: maxConnections uses its own bound.
func openFileLimit() (int, bool) { return 0, false }
